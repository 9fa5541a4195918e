/**
 * BatchMatMul for wasm that always reaches XNNPACK. The wasm backend runs its fast XNNPACK
 * kernel only for one matrix product without transposes; every gradient matMul (x^T dy, dy w^T)
 * and every batched attention product fell to a naive loop at about 1 GFLOP/s. Here:
 * - a transposed operand is transposed first (a JavaScript loop over the heap), or, when that
 *   moves fewer numbers, the product is computed transposed, C^T = op(B)^T op(A)^T, and C
 *   transposed back (for x^T dy with x [768, 512] that transposes dy [768, 128] instead of x);
 * - batches run one XNNPACK product per matrix on views into the operands' and the output's
 *   memory (no copies in or out), and a batch against one shared right-hand matrix is a single
 *   product over all the rows.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { transposeInto } from './transpose.ts';
import { wasmHeap } from './wasm-heap.ts';

type MatMulAttrs = { transposeA: boolean; transposeB: boolean };
type KernelArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; attrs: MatMulAttrs; backend: BackendWasm };

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/** Wraps the wasm backend's own BatchMatMul (which must be registered already). */
export function fastBatchMatMulConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (original === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');

  const batchMatMul = (args: KernelArgs): tf.TensorInfo => {
    const { inputs: { a, b }, attrs: { transposeA, transposeB }, backend } = args;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = sizeOf(outerA);
    const batchB = sizeOf(outerB);
    const sameBatch = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    if (!(sameBatch || batchA === 1 || batchB === 1) || a.dtype !== 'float32' || b.dtype !== 'float32') {
      return original.kernelFunc(args as never) as tf.TensorInfo;
    }
    const [aRows, aCols] = a.shape.slice(-2) as [number, number];
    const [bRows, bCols] = b.shape.slice(-2) as [number, number];
    const m = transposeA ? aCols : aRows;
    const k = transposeA ? aRows : aCols;
    const n = transposeB ? bRows : bCols;
    const kB = transposeB ? bCols : bRows;
    if (k !== kB) {
      throw new Error(`Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${a.shape} and ${b.shape} `
        + `and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
    }
    const batch = Math.max(batchA, batchB);
    const out = backend.makeOutput([...tf.backend_util.assertAndGetBroadcastShape(outerA, outerB), m, n], 'float32');
    if (m * n * batch === 0) return out;
    if (k === 0) {
      backend.typedArrayFromHeap(out).fill(0);
      return out;
    }

    // Numbers each way moves: op(A) and op(B) laid out plainly, or C^T = op(B)^T op(A)^T plus C^T -> C.
    const direct = (transposeA ? batchA * k * m : 0) + (transposeB ? batchB * k * n : 0);
    const swapped = (transposeA ? 0 : batchA * k * m) + (transposeB ? 0 : batchB * k * n) + batch * m * n;
    const swap = swapped < direct;
    // left [rows, k] @ right [k, cols] = product [rows, cols], each plain row-major.
    const [left, leftBatch, leftTransposed, rows] = swap ? [b, batchB, !transposeB, n] : [a, batchA, transposeA, m];
    const [right, rightBatch, rightTransposed, cols] = swap ? [a, batchA, !transposeA, m] : [b, batchB, transposeB, n];

    const temporaries: tf.TensorInfo[] = [];
    const plain = (info: tf.TensorInfo, count: number, transposed: boolean, r: number, c: number): tf.TensorInfo => {
      if (!transposed) return info;
      const copy = backend.makeOutput([count, r, c], 'float32');
      temporaries.push(copy);
      transposeInto(backend.typedArrayFromHeap(info), [count, c, r], [0, 2, 1], backend.typedArrayFromHeap(copy));
      return copy;
    };
    const leftPlain = plain(left, leftBatch, leftTransposed, rows, k);
    const rightPlain = plain(right, rightBatch, rightTransposed, k, cols);
    const product = swap ? backend.makeOutput([batch, n, m], 'float32') : out;
    if (swap) temporaries.push(product);

    // Matrix `index` of a batch as a view; a whole tensor keeps its own id, so XNNPACK's cache
    // of packed right-hand matrices (by id) serves an LSTM's recurrent kernel, multiplied at
    // every time step, from one packing.
    const heap = wasmHeap(backend);
    const matrix = (info: tf.TensorInfo, index: number, size: number): number =>
      (index === 0 && size === sizeOf(info.shape) ? heap.id(info) : heap.view(info, index * size, size));
    if (rightBatch === 1 && leftBatch === batch) {
      // One shared right-hand matrix: all left matrices stacked are one [batch * rows, k] matrix.
      heap.gemm(matrix(leftPlain, 0, batch * rows * k), batch * rows, k, matrix(rightPlain, 0, k * cols), cols, matrix(product, 0, batch * rows * cols));
    } else {
      const shared = leftBatch === 1 ? matrix(leftPlain, 0, rows * k) : null;
      for (let i = 0; i < batch; i++) {
        heap.gemm(shared ?? matrix(leftPlain, i, rows * k), rows, k, matrix(rightPlain, i, k * cols), cols, matrix(product, i, rows * cols));
      }
    }
    heap.release();
    if (swap) transposeInto(backend.typedArrayFromHeap(product), [batch, n, m], [0, 2, 1], backend.typedArrayFromHeap(out));
    for (const info of temporaries) backend.disposeData(info.dataId);
    return out;
  };

  return { ...original, kernelFunc: batchMatMul as unknown as tf.KernelFunc };
}
