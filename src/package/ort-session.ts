/**
 * The `Session` interface over an InferenceSession of either onnxruntime package (node or web),
 * typed structurally so that this module imports neither: the Node server, the browser, the
 * edge worker and export's verification wrap their sessions with it.
 */
import type { NamedTensors, RunOptions, Session, Tensor, TensorData, TensorDType } from './session.ts';

/** The part of `ort.Tensor` both onnxruntime packages share, so one converter serves both. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export type OrtTensorConstructor<T> = new (type: TensorDType, data: TensorData, dims: readonly number[]) => T;

/** The part of `ort.InferenceSession` both packages share. */
export interface OrtSessionLike<T> {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Record<string, OrtTensorLike>>;
  run(feeds: Record<string, T>, fetches: string[]): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** A Session that runs in the calling thread: feeds are converted, never moved. */
export function wrapOrtSession<T>(Tensor: OrtTensorConstructor<T>, session: OrtSessionLike<T>, provider: string): Session {
  return {
    provider,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, options) {
      const ortFeeds = toOrtFeeds(Tensor, feeds);
      const results = options?.fetch ? await session.run(ortFeeds, [...options.fetch]) : await session.run(ortFeeds);
      return withLentFeeds(fromOrtResults(results), feeds, options);
    },
    release: () => session.release(),
  };
}

export function toOrtFeeds<T>(Tensor: OrtTensorConstructor<T>, feeds: NamedTensors): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, tensor] of Object.entries(feeds)) out[name] = new Tensor(tensor.dtype, tensor.data, tensor.dims);
  return out;
}

/** What a runtime in the calling thread returns for `lendFeeds`: the feeds themselves, never moved. */
export function withLentFeeds(outputs: NamedTensors, feeds: NamedTensors, options: RunOptions | undefined): NamedTensors {
  for (const name of options?.lendFeeds ?? []) outputs[name] = feeds[name]!;
  return outputs;
}

export function fromOrtResults(results: Record<string, OrtTensorLike>): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, value] of Object.entries(results)) out[name] = fromOrtTensor(name, value);
  return out;
}

const ARRAY_OF: Record<TensorDType, (data: unknown) => boolean> = {
  float32: (d) => d instanceof Float32Array,
  float64: (d) => d instanceof Float64Array,
  float16: (d) => d instanceof Uint16Array,
  int8: (d) => d instanceof Int8Array,
  int16: (d) => d instanceof Int16Array,
  int32: (d) => d instanceof Int32Array,
  int64: (d) => d instanceof BigInt64Array,
  uint8: (d) => d instanceof Uint8Array,
  uint16: (d) => d instanceof Uint16Array,
  uint32: (d) => d instanceof Uint32Array,
  uint64: (d) => d instanceof BigUint64Array,
  bool: (d) => d instanceof Uint8Array,
  string: (d) => Array.isArray(d),
};

function fromOrtTensor(name: string, value: OrtTensorLike): Tensor {
  const dtype = value.type as TensorDType;
  if (Object.hasOwn(ARRAY_OF, dtype) && ARRAY_OF[dtype](value.data)) return { dtype, dims: [...value.dims], data: value.data } as Tensor;
  throw new Error(`output ${name} has type ${value.type}, which ferry does not read (a GPU-resident or int4 tensor)`);
}
