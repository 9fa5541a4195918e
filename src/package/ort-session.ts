/**
 * The `Session` interface over an InferenceSession of either onnxruntime package (node or web),
 * typed structurally so that this module imports neither: the Node server, the browser, the
 * edge worker and export's verification wrap their sessions with it.
 */
import type { NamedTensors, RunOptions, Session, Tensor } from './session.ts';

/** The part of `ort.Tensor` both onnxruntime packages share, so one converter serves both. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export type OrtTensorConstructor<T> = new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => T;

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

function fromOrtTensor(name: string, value: OrtTensorLike): Tensor {
  if (value.type === 'float32' && value.data instanceof Float32Array) return { dtype: 'float32', dims: [...value.dims], data: value.data };
  if (value.type === 'int64' && value.data instanceof BigInt64Array) return { dtype: 'int64', dims: [...value.dims], data: value.data };
  throw new Error(`output ${name} has type ${value.type}; ferry models produce float32 and int64 only`);
}
