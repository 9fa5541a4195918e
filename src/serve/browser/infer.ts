/**
 * Plain packages in a page or a worker: `openPlainModelFromFiles` opens one already in memory on
 * onnxruntime-web (the same batcher as the server), and `infer` runs it on typed arrays, checked
 * against its signature as the server checks a /v2 request.
 */
import { FerryError } from '../../errors.ts';
import { ApiError } from '../openai-error.ts';
import { checkModelSize, type OpenFilesOptions } from './model.ts';
import type { Runtime } from '../runtime/types.ts';
import type { NamedTensors, Tensor } from '../../package/session.ts';
import { V2_DATATYPES, v2DatatypeOf, type V2Datatype } from '../v2/datatypes.ts';
import type { InferenceModel } from '../v2/model.ts';
import { openPlainModel } from '../v2/open.ts';
import type { PlainModelSpec } from '../v2/plain-model.ts';
import { checkSignature } from '../v2/request.ts';
import { decodeJsonTensor } from '../v2/json-tensors.ts';
import { elementCount } from '../v2/shape.ts';

export interface PlainPackageFiles {
  /** Where the files came from, for messages (a URL or a bundle path). */
  source: string;
  /** ferry.json of a plain package, parsed. */
  manifest: PlainModelSpec & { cpuOnlyNodes?: readonly string[] };
  /** The ONNX model file of the chosen precision. */
  model: Uint8Array;
}

export async function openPlainModelFromFiles(files: PlainPackageFiles, options: { runtime: Runtime; maxBatch?: number; maxQueue?: number; delayMs?: number } & Pick<OpenFilesOptions, 'maxModelBytes' | 'limitReason'>) {
  checkModelSize(files.manifest.name, [files.model], options);
  return openPlainModel(files.model, files.manifest, {
    runtime: options.runtime, cpuOnlyNodes: files.manifest.cpuOnlyNodes,
    maxBatch: options.maxBatch ?? 8, maxQueue: options.maxQueue ?? 64, delayMs: options.delayMs ?? 0, timeoutMs: 600_000,
  });
}

/** An input as a page holds it: a typed array (or plain numbers, strings, booleans) and its shape. */
export interface InferInput {
  shape: readonly number[];
  data: Tensor['data'] | readonly (number | string | boolean)[];
}

export interface InferOutput {
  datatype: V2Datatype;
  shape: number[];
  data: Tensor['data'];
}

/**
 * Runs the model once. Plain arrays are converted to the input's element type (FP16 takes the
 * 16-bit patterns in a Uint16Array); outputs default to all. Bad inputs are FerryErrors (status 400).
 */
export async function infer(model: InferenceModel, inputs: Record<string, InferInput>, outputs?: readonly string[]): Promise<Record<string, InferOutput>> {
  try {
    const feeds: NamedTensors = {};
    for (const signature of model.inputs) {
      const input = inputs[signature.name];
      if (!input) throw new FerryError('missing_input', `${model.name} needs input "${signature.name}"`, { hint: `its inputs: ${model.inputs.map((i) => i.name).join(', ')}` });
      checkSignature({ name: signature.name, datatype: signature.datatype, shape: input.shape }, signature, model);
      feeds[signature.name] = toTensor(signature.name, signature.datatype, input);
    }
    const unknown = Object.keys(inputs).find((name) => !model.inputs.some((i) => i.name === name));
    if (unknown) throw new FerryError('unknown_input', `${model.name} has no input "${unknown}"`, { hint: `its inputs: ${model.inputs.map((i) => i.name).join(', ')}` });
    const wanted = outputs ?? model.outputs.map((o) => o.name);
    const missing = wanted.find((name) => !model.outputs.some((o) => o.name === name));
    if (missing) throw new FerryError('unknown_output', `${model.name} has no output "${missing}"`, { hint: `its outputs: ${model.outputs.map((o) => o.name).join(', ')}` });
    const results = await model.infer(feeds, { outputs: wanted, parameters: {}, signal: new AbortController().signal });
    return Object.fromEntries(wanted.map((name) => {
      const tensor = results[name]!;
      return [name, { datatype: v2DatatypeOf(tensor.dtype), shape: [...tensor.dims], data: tensor.data }];
    }));
  } catch (error) {
    if (error instanceof ApiError) throw new FerryError('bad_input', error.message, { status: error.status });
    throw error;
  }
}

const TYPED: Record<Exclude<V2Datatype, 'BYTES'>, { new (n: number): Tensor['data']; readonly name: string }> = {
  BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
  INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array, FP16: Uint16Array, FP32: Float32Array, FP64: Float64Array,
};

function toTensor(name: string, datatype: V2Datatype, input: InferInput): Tensor {
  const Typed = TYPED[datatype as Exclude<V2Datatype, 'BYTES'>];
  if (Typed && input.data instanceof Typed) {
    const count = elementCount(input.shape);
    if (input.data.length !== count) throw new FerryError('bad_input', `input "${name}": shape [${input.shape.join(', ')}] holds ${count} elements but data has ${input.data.length}`);
    return { dtype: V2_DATATYPES[datatype], dims: [...input.shape], data: input.data } as Tensor;
  }
  if (!Array.isArray(input.data)) throw new FerryError('bad_input', `input "${name}" is ${datatype}: pass ${Typed ? `a ${Typed.name} or ` : ''}an array of values`);
  // Plain arrays are checked element by element as a /v2 request's JSON data is.
  return decodeJsonTensor(name, datatype, input.shape, input.data);
}
