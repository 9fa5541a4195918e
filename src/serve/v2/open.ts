/** Opens a plain package's session and puts it behind the batcher, warmed up with one run. */
import type { Runtime } from '../runtime/types.ts';
import type { NamedTensors, Tensor } from '../../package/session.ts';
import { allocate } from './arrays.ts';
import type { InferenceModel } from './model.ts';
import { createPlainModel, type PlainModelOptions, type PlainModelSpec, type PlainTensorSpec } from './plain-model.ts';
import { elementCount } from './shape.ts';

export interface OpenPlainModelOptions extends PlainModelOptions {
  runtime: Runtime;
  /** Node names that must stay on the CPU EP (ferry.json `cpuOnlyNodes`). */
  cpuOnlyNodes?: readonly string[];
  threads?: number;
}

/** `model` is the ONNX file (a path, or its bytes); `spec` its tensors as ferry.json states them. */
export async function openPlainModel(model: string | Uint8Array, spec: PlainModelSpec, options: OpenPlainModelOptions): Promise<InferenceModel & { provider: string; close(): Promise<void> }> {
  const session = await options.runtime.createSession(model, { cpuOnlyNodes: options.cpuOnlyNodes, intraOpThreads: options.threads });
  // The first run of a session plans its memory; a user's first request should not pay for it.
  await session.run(warmUpFeeds(spec.inputs), { giveUpFeeds: true });
  return { ...createPlainModel(spec, session, options), provider: session.provider, close: () => session.release() };
}

/** Zeros (empty strings) of every input, each dynamic dim 1. */
export function warmUpFeeds(inputs: readonly PlainTensorSpec[]): NamedTensors {
  return Object.fromEntries(inputs.map((input) => {
    const dims = input.shape.map((d) => (typeof d === 'number' ? d : 1));
    return [input.name, { dtype: input.dtype, dims, data: allocate(input.dtype, elementCount(dims)) } as Tensor];
  }));
}
