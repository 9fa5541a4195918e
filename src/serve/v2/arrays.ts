/** Typed arrays for tensors by element type: allocation and concatenation along the first axis. */
import type { Tensor, TensorArrays, TensorDType } from '../../package/session.ts';

const CONSTRUCTORS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array,
} as const;

export function allocate<T extends TensorDType>(dtype: T, length: number): TensorArrays[T] {
  if (dtype === 'string') return new Array<string>(length).fill('') as TensorArrays[T];
  return new CONSTRUCTORS[dtype as Exclude<TensorDType, 'string'>](length) as TensorArrays[T];
}

/** A tensor of raw little-endian bytes (copied, so the result is aligned and owns its buffer). */
export function fromLittleEndian<T extends Exclude<TensorDType, 'string'>>(dtype: T, bytes: Uint8Array): TensorArrays[T] {
  const copy = bytes.slice();
  return new CONSTRUCTORS[dtype](copy.buffer, 0, copy.byteLength / CONSTRUCTORS[dtype].BYTES_PER_ELEMENT) as TensorArrays[T];
}

/** The tensors joined along axis 0; they must share a dtype and all other dims. */
export function concatFirstAxis(tensors: readonly Tensor[]): Tensor {
  const first = tensors[0]!;
  if (tensors.length === 1) return first;
  const rows = tensors.reduce((sum, t) => sum + t.dims[0]!, 0);
  const dims = [rows, ...first.dims.slice(1)];
  if (first.dtype === 'string') return { dtype: 'string', dims, data: tensors.flatMap((t) => t.data as string[]) };
  const length = tensors.reduce((sum, t) => sum + t.data.length, 0);
  const data = allocate(first.dtype, length) as Exclude<TensorArrays[TensorDType], string[]>;
  let offset = 0;
  for (const tensor of tensors) {
    (data as Float32Array).set(tensor.data as Float32Array, offset);
    offset += tensor.data.length;
  }
  return { dtype: first.dtype, dims, data } as Tensor;
}

/** Rows `start` to `start + count` of a tensor along axis 0, as a view where the data allows. */
export function sliceFirstAxis(tensor: Tensor, start: number, count: number): Tensor {
  const rows = tensor.dims[0]!;
  if (start === 0 && count === rows) return tensor;
  const rowSize = rows === 0 ? 0 : tensor.data.length / rows;
  const dims = [count, ...tensor.dims.slice(1)];
  const data = tensor.dtype === 'string'
    ? tensor.data.slice(start * rowSize, (start + count) * rowSize)
    : (tensor.data as Float32Array).subarray(start * rowSize, (start + count) * rowSize);
  return { dtype: tensor.dtype, dims, data } as Tensor;
}
