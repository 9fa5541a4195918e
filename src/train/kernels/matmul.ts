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

type MatMulAttrs = { transposeA: boolean; transposeB: boolean };
type KernelArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; attrs: MatMulAttrs; backend: BackendWasm };
type Gemm = (aId: number, aShape: Uint8Array, aRank: number, bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number) => void;
/** The parts of BackendWasm the views need (public in JavaScript, not in its typings). */
type WasmInternals = {
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: tf.DataId): { id: number } };
  wasm: { cwrap: (name: string, returns: null, args: string[]) => Gemm; tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void } };
};

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);
const shapeBytes = (shape: readonly number[]) => new Uint8Array(new Int32Array(shape).buffer);
const FLOAT_BYTES = 4;

/** Wraps the wasm backend's own BatchMatMul (which must be registered already). */
export function fastBatchMatMulConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (original === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  let gemm: Gemm | null = null;

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
    const internals = backend as unknown as WasmInternals;
    gemm ??= internals.wasm.cwrap(tf.BatchMatMul, null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
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

    // Views: tensor ids registered on a range of an existing buffer, dropped without freeing it.
    // A whole tensor keeps its own id, so XNNPACK's cache of packed right-hand matrices (by id)
    // serves an LSTM's recurrent kernel, multiplied at every time step, from one packing.
    const views: number[] = [];
    const view = (info: tf.TensorInfo, index: number, size: number): number => {
      if (index === 0 && size === sizeOf(info.shape)) return internals.dataIdMap.get(info.dataId).id;
      const id = internals.dataIdNextNumber++;
      internals.wasm.tfjs.registerTensor(id, size, backend.getMemoryOffset(info.dataId) + index * size * FLOAT_BYTES);
      views.push(id);
      return id;
    };
    if (rightBatch === 1 && leftBatch === batch) {
      // One shared right-hand matrix: all left matrices stacked are one [batch * rows, k] matrix.
      gemm(view(leftPlain, 0, batch * rows * k), shapeBytes([1, batch * rows, k]), 3, view(rightPlain, 0, k * cols), shapeBytes([1, k, cols]), 3,
        false, false, view(product, 0, batch * rows * cols));
    } else {
      const leftShape = shapeBytes([1, rows, k]);
      const rightShape = shapeBytes([1, k, cols]);
      const shared = leftBatch === 1 ? view(leftPlain, 0, rows * k) : null;
      for (let i = 0; i < batch; i++) {
        gemm(shared ?? view(leftPlain, i, rows * k), leftShape, 3, view(rightPlain, i, k * cols), rightShape, 3, false, false, view(product, i, rows * cols));
      }
    }
    for (const id of views) internals.wasm.tfjs.disposeData(id);
    if (swap) transposeInto(backend.typedArrayFromHeap(product), [batch, n, m], [0, 2, 1], backend.typedArrayFromHeap(out));
    for (const info of temporaries) backend.disposeData(info.dataId);
    return out;
  };

  return { ...original, kernelFunc: batchMatMul as unknown as tf.KernelFunc };
}
