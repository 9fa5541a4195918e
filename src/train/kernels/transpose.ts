/**
 * Transpose for wasm as a JavaScript loop over the heap. The wasm backend's own kernel moves
 * one element at a time through a generic index computation (about 4 ns an element here, 1.7 ms
 * for a [768, 512] matrix); a blocked loop is 2-3x faster. Other permutations (such as the
 * [0, 2, 1, 3] of attention heads, which the backend does well) run the backend's kernel.
 * Its helpers also serve ferry's MatMul, which transposes operands.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TransposeArgs = { inputs: { x: tf.TensorInfo }; attrs: { perm: number[] }; backend: BackendWasm };

const BLOCK = 16;

/**
 * dst[c * rows + r] = src[r * cols + c] for one [rows, cols] matrix at the given offsets, in
 * 16x16 blocks with the writes contiguous (strided writes to a [1024, 2048] matrix thrash the
 * TLB: 14 ms against 4.4 ms this way).
 */
export function transposeMatrix(src: tf.TypedArray, srcOffset: number, rows: number, cols: number, dst: tf.TypedArray, dstOffset: number): void {
  for (let r0 = 0; r0 < rows; r0 += BLOCK) {
    const rowEnd = Math.min(rows, r0 + BLOCK);
    for (let c0 = 0; c0 < cols; c0 += BLOCK) {
      const colEnd = Math.min(cols, c0 + BLOCK);
      for (let c = c0; c < colEnd; c++) {
        const to = dstOffset + c * rows;
        for (let r = r0; r < rowEnd; r++) dst[to + r] = src[srcOffset + r * cols + c]!;
      }
    }
  }
}

/**
 * The shape and permutation with size-1 axes dropped and runs of axes that stay neighbours
 * merged: [12, 64, 4, 32] by [0, 2, 1, 3] stays as it is, [768, 512] by [1, 0] too, and
 * [2, 3, 4] by [0, 1, 2] becomes [24] by [0].
 */
function collapse(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const sizes = shape.filter((size) => size !== 1);
  // Input axis -> its number once the size-1 axes are gone.
  let next = 0;
  const compact = shape.map((size) => (size === 1 ? -1 : next++));
  const groups: number[][] = [];
  for (const axis of perm.filter((a) => shape[a] !== 1).map((a) => compact[a]!)) {
    const last = groups.at(-1);
    if (last !== undefined && last.at(-1)! + 1 === axis) last.push(axis);
    else groups.push([axis]);
  }
  // Groups in input order get new axis numbers; the permutation lists them in output order.
  const byInputOrder = [...groups].sort((g, h) => g[0]! - h[0]!);
  const newShape = byInputOrder.map((group) => group.reduce((size, axis) => size * sizes[axis]!, 1));
  return { shape: newShape, perm: groups.map((group) => byInputOrder.indexOf(group)) };
}

/** Writes x (row-major `shape`) permuted by `perm` into dst. */
export function transposeInto(src: tf.TypedArray, shape: readonly number[], perm: readonly number[], dst: tf.TypedArray): void {
  const { shape: dims, perm: order } = collapse(shape, perm);
  const rank = dims.length;
  const size = dims.reduce((a, b) => a * b, 1);
  if (size === 0) return;
  if (rank <= 1) {
    dst.set(src.subarray(0, size));
    return;
  }
  if (rank === 2) {
    transposeMatrix(src, 0, dims[0]!, dims[1]!, dst, 0);
    return;
  }
  if (rank === 3 && order[0] === 0 && order[1] === 2) {
    const matrix = dims[1]! * dims[2]!;
    for (let b = 0; b < dims[0]!; b++) transposeMatrix(src, b * matrix, dims[1]!, dims[2]!, dst, b * matrix);
    return;
  }
  throw new Error(`transposeInto handles matrices and batches of matrices, not [${shape}] by [${perm}]`);
}

/** Whether transposeInto handles this permutation (a matrix or batched-matrix transpose once collapsed). */
export function isMatrixTranspose(shape: readonly number[], perm: readonly number[]): boolean {
  const { shape: dims, perm: order } = collapse(shape, perm);
  return dims.length <= 2 || (dims.length === 3 && order[0] === 0 && order[1] === 2);
}

export function fastTransposeConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf.Transpose, 'wasm');
  if (original === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  const transpose = ({ inputs: { x }, attrs: { perm }, backend }: TransposeArgs): tf.TensorInfo => {
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || !isMatrixTranspose(x.shape, perm)) return original.kernelFunc({ inputs: { x }, attrs: { perm }, backend } as never) as tf.TensorInfo;
    const out = backend.makeOutput(perm.map((axis) => x.shape[axis]!), x.dtype);
    transposeInto(backend.typedArrayFromHeap(x), x.shape, perm, backend.typedArrayFromHeap(out));
    return out;
  };
  return { ...original, kernelFunc: transpose as unknown as tf.KernelFunc };
}
