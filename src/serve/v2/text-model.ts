/**
 * A language model behind the Open Inference Protocol, as Triton's LLM backends expose one:
 * prompts in `text_input` (BYTES, one per row), the completions out in `text_output`, sampling
 * settings in the request's `parameters` under their /v1/completions names.
 */
import type { ServedModel } from '../model.ts';
import type { NamedTensors } from '../../package/session.ts';
import { protocolError } from './errors.ts';
import type { InferenceModel } from './model.ts';

const SAMPLING_PARAMETERS = ['max_tokens', 'temperature', 'top_k', 'top_p', 'min_p', 'repetition_penalty', 'seed', 'stop'] as const;

/** Runs one /v1/completions body (the app's own path, limits and metrics included). */
export type Complete = (body: Record<string, unknown>, signal: AbortSignal) => Promise<{ choices: { text: string }[] }>;

export function textModel(model: ServedModel, complete: Complete): InferenceModel {
  return {
    name: model.id,
    versions: ['1'],
    platform: `ferry_${model.arch}`,
    inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [-1] }],
    outputs: [{ name: 'text_output', datatype: 'BYTES', shape: [-1] }],
    maxBatchSize: 0,
    async infer(inputs, { parameters, signal }): Promise<NamedTensors> {
      const prompts = inputs.text_input!.data as string[];
      if (!prompts.length) throw protocolError(400, 'input "text_input" holds no prompt');
      const body: Record<string, unknown> = { model: model.id, prompt: prompts };
      for (const key of SAMPLING_PARAMETERS) if (parameters[key] !== undefined) body[key] = parameters[key];
      const completion = await complete(body, signal);
      return { text_output: { dtype: 'string', dims: [prompts.length], data: completion.choices.map((c) => c.text) } };
    },
  };
}
