/**
 * Constant folding of the small integer arithmetic graph models do on shapes (Shape -> StridedSlice
 * -> Mul -> Pack -> Reshape): where every input is known, the result is computed at export time
 * and later ops see a constant (a Reshape gets a fixed shape, a Slice fixed bounds).
 */
import type { DType } from '../graph.ts';
import type { Tensor } from './format.ts';
import { elementCount } from './shapes.ts';

/** Folding stops at this many elements: weights are not recomputed, only shape-sized values. */
const MAX_FOLDED = 4096;

export function numbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

export function tensorOf(dtype: DType, dims: number[], values: number[]): Tensor {
  switch (dtype) {
    case 'float32': return { dtype, dims, data: Float32Array.from(values) };
    case 'int64': return { dtype, dims, data: BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v)))) };
    case 'bool': case 'uint8': return { dtype, dims, data: Uint8Array.from(values) };
    default: return { dtype: 'int32', dims, data: Int32Array.from(values) };
  }
}

/** Elementwise `fn` over broadcast constant inputs, or undefined when any is unknown or too big. */
export function foldElementwise(inputs: (Tensor | undefined)[], dtype: DType, fn: (...x: number[]) => number): Tensor | undefined {
  if (inputs.some((t) => !t || elementCount(t.dims) > MAX_FOLDED)) return undefined;
  const tensors = inputs as Tensor[];
  const rank = Math.max(...tensors.map((t) => t.dims.length));
  const padded = tensors.map((t) => [...new Array<number>(rank - t.dims.length).fill(1), ...t.dims]);
  const dims = Array.from({ length: rank }, (_, i) => Math.max(...padded.map((d) => d[i]!)));
  if (padded.some((d) => d.some((n, i) => n !== 1 && n !== dims[i]))) return undefined;
  const values = tensors.map(numbers);
  const out: number[] = new Array(elementCount(dims));
  const index = new Array<number>(rank).fill(0);
  for (let k = 0; k < out.length; k++) {
    out[k] = fn(...values.map((v, j) => {
      let offset = 0;
      for (let i = 0; i < rank; i++) offset = offset * padded[j]![i]! + (padded[j]![i] === 1 ? 0 : index[i]!);
      return v[offset]!;
    }));
    for (let i = rank - 1; i >= 0 && ++index[i]! === dims[i]; i--) index[i] = 0;
  }
  return tensorOf(dtype, dims, out);
}

type Indexable = { [i: number]: number | bigint; length: number };

/** out[k] in output order = source[offset], the offset kept incrementally (no per-element index math). */
function permuteInto<T extends Indexable>(source: T, out: T, dims: number[], step: number[]): void {
  const rank = dims.length;
  const index = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const innerDim = dims[last] ?? 1;
  const innerStep = step[last] ?? 0;
  let offset = 0;
  for (let k = 0; k < source.length; k += innerDim) {
    for (let j = 0; j < innerDim; j++) out[k + j] = source[offset + j * innerStep]!;
    for (let i = last - 1; i >= 0; i--) {
      offset += step[i]!;
      if (++index[i]! < dims[i]!) break;
      offset -= step[i]! * dims[i]!;
      index[i] = 0;
    }
  }
}

/** A constant transposed at export time (conv filters into ONNX's layout). */
export function permuteTensor(t: Tensor, perm: number[]): Tensor {
  const dims = perm.map((p) => t.dims[p]!);
  const strides = t.dims.map((_, i) => elementCount(t.dims.slice(i + 1)));
  const step = perm.map((p) => strides[p]!);
  if (t.data instanceof Float32Array) {
    // The common case (every conv filter) gets its own monomorphic call.
    const out = new Float32Array(t.data.length);
    permuteInto(t.data, out, dims, step);
    return { dtype: t.dtype, dims, data: out };
  }
  const source = t.data as unknown as Indexable;
  const out = new (t.data.constructor as new (n: number) => Indexable)(source.length);
  permuteInto(source, out, dims, step);
  return { dtype: t.dtype, dims, data: out as unknown as Tensor['data'] };
}
