/**
 * The one narrow interface between ferry's decoders and an ONNX runtime. Everything above it
 * (decoders, scheduler, HTTP, export's verification) sees named tensors only and never learns
 * whether onnxruntime-node or onnxruntime-web runs them, nor on which device.
 */

/** The element types of ONNX tensors that onnxruntime takes from JavaScript, with their arrays. */
export interface TensorArrays {
  float32: Float32Array;
  float64: Float64Array;
  /** IEEE 754 binary16 bits (src/float16.ts). */
  float16: Uint16Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  /** One byte per element, 0 or 1. */
  bool: Uint8Array;
  string: string[];
}

export type TensorDType = keyof TensorArrays;
export type TensorData = TensorArrays[TensorDType];

/** A tensor of one element type; `Tensor` is any of them, told apart by `dtype`. */
export type TypedTensor<T extends TensorDType> = { readonly dtype: T; readonly dims: readonly number[]; readonly data: TensorArrays[T] };
export type Tensor = { [T in TensorDType]: TypedTensor<T> }[TensorDType];

/** The buffer behind a tensor's elements, which a worker thread can move; strings have none. */
export function bufferOf(tensor: Tensor): ArrayBuffer | undefined {
  return tensor.dtype === 'string' ? undefined : (tensor.data.buffer as ArrayBuffer);
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
