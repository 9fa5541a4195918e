/** `ferry infer DIR --input NAME=FILE...`: one run of a plain package here, no HTTP. */
import { FerryError } from '../../errors.ts';
import { isLanguageModel, type Precision } from '../../package/index.ts';
import { ApiError } from '../openai-error.ts';
import { openRuntime } from '../runtime/index.ts';
import { v2DatatypeOf } from './datatypes.ts';
import { jsonDataText } from './json-tensors.ts';
import { readInputs, writeOutputs } from './local-io.ts';
import { readManifest } from '../package.ts';
import { openPlainPackage } from './plain-package.ts';
import { checkSignature } from './request.ts';

export interface InferCommandOptions {
  inputs: string[];
  /** Writes each output as DIR/<name>.npy; without it the outputs are printed as a v2 response. */
  outputDir?: string;
  device: string;
  precision?: Precision;
  log: (message: string) => void;
}

/** Returns what to print: the v2 response JSON, or the .npy files written. */
export async function inferCommand(dir: string, options: InferCommandOptions): Promise<string> {
  const manifest = await readManifest(dir);
  if (manifest.arch === 't5') {
    throw new FerryError('not_plain', `${dir} is a T5 encoder-decoder; ferry infer runs plain models`, { hint: `generate its target text with \`ferry generate ${dir} --prompt SOURCE\`` });
  }
  if (isLanguageModel(manifest)) {
    throw new FerryError('not_plain', `${dir} is a ${manifest.arch} language model; ferry infer runs plain models`, { hint: `generate text with \`ferry generate ${dir} --prompt TEXT\`` });
  }
  const runtime = await openRuntime(options.device, options.log);
  const model = await openPlainPackage(dir, manifest, { runtime, precision: options.precision, maxBatch: Number.MAX_SAFE_INTEGER, maxQueue: 1, delayMs: 0, timeoutMs: 86_400_000 });
  try {
    const feeds = await readInputs(options.inputs, model.inputs);
    const outputs = await (async () => {
      try {
        for (const signature of model.inputs) {
          const tensor = feeds[signature.name]!;
          checkSignature({ name: signature.name, datatype: v2DatatypeOf(tensor.dtype), shape: tensor.dims }, signature, model);
        }
        return await model.infer(feeds, { outputs: model.outputs.map((o) => o.name), parameters: {}, signal: new AbortController().signal });
      } catch (error) {
        if (error instanceof ApiError) throw new FerryError('bad_input', error.message, { hint: `${model.name} takes ${model.inputs.map((i) => `${i.name} ${i.datatype} [${i.shape.join(', ')}]`).join(', ')} (-1: any size)` });
        throw error;
      }
    })();
    if (options.outputDir !== undefined) return (await writeOutputs(outputs, options.outputDir)).join('\n');
    const parts = Object.entries(outputs).map(([name, t]) => `{"name":${JSON.stringify(name)},"datatype":"${v2DatatypeOf(t.dtype)}","shape":[${t.dims.join(',')}],"data":${jsonDataText(t)}}`);
    return `{"model_name":${JSON.stringify(model.name)},"model_version":"1","outputs":[${parts.join(',')}]}`;
  } finally {
    await model.close();
  }
}
