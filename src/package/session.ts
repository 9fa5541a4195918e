/**
 * The one narrow interface between ferry's decoders and an ONNX runtime. Everything above it
 * (decoders, scheduler, HTTP, export's verification) sees named tensors only and never learns
 * whether onnxruntime-node or onnxruntime-web runs them, nor on which device.
 */

export type TensorData = Float32Array | BigInt64Array;

export interface Tensor {
  readonly dtype: 'float32' | 'int64';
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export type NamedTensors = Record<string, Tensor>;

export interface RunOptions {
  /** The outputs to compute and return; all when left out. */
  fetch?: readonly string[];
  /**
   * The caller never reads the feeds again, so a runtime in another thread may move their
   * buffers there instead of copying them (they are left detached). A KV cache is megabytes
   * per step.
   */
  giveUpFeeds?: boolean;
  /**
   * Feeds whose buffers a runtime in another thread may move there and back instead of copying:
   * the result holds them again under their input names, and the arrays passed in may be left
   * detached.
   */
  lendFeeds?: readonly string[];
}

export interface Session {
  /** Where it actually runs, after any fallback: e.g. `onnxruntime-node cpu`. */
  readonly provider: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: NamedTensors, options?: RunOptions): Promise<NamedTensors>;
  release(): Promise<void>;
}

export function float32(dims: readonly number[], data: Float32Array): Tensor {
  return { dtype: 'float32', dims, data };
}

export function int64(dims: readonly number[], values: ArrayLike<number>): Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return { dtype: 'int64', dims, data };
}
