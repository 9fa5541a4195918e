/**
 * BatchMatMul for wasm that reaches XNNPACK more often. The wasm backend runs its fast XNNPACK
 * kernel only for one matrix product without transposes; every gradient matMul (x^T dy, dy w^T)
 * and every batched attention product fell to a naive loop at about 1 GFLOP/s. Here transposed
 * operands are transposed first (a cheap copy) and batches run one matrix at a time.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { copyBlock } from './slicing.ts';

type MatMulAttrs = { transposeA: boolean; transposeB: boolean };
type KernelArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; attrs: MatMulAttrs; backend: BackendWasm };

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/** Wraps the wasm backend's own BatchMatMul (which must be registered already). */
export function fastBatchMatMulConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  const transpose = tf.getKernel(tf.Transpose, 'wasm');
  if (original === undefined || transpose === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  const multiply = (a: tf.TensorInfo, b: tf.TensorInfo, backend: BackendWasm): tf.TensorInfo =>
    original.kernelFunc({ inputs: { a, b }, attrs: { transposeA: false, transposeB: false }, backend } as never) as tf.TensorInfo;

  const swapLastAxes = (info: tf.TensorInfo, backend: BackendWasm): tf.TensorInfo => {
    const perm = info.shape.map((_, axis) => axis);
    perm.splice(-2, 2, perm.length - 1, perm.length - 2);
    return transpose.kernelFunc({ inputs: { x: info }, attrs: { perm }, backend } as never) as tf.TensorInfo;
  };

  /** Matrix `index` of a [..., rows, cols] tensor as its own [rows, cols] tensor. */
  const matrix = (info: tf.TensorInfo, index: number, backend: BackendWasm): tf.TensorInfo => {
    const [rows, cols] = info.shape.slice(-2) as [number, number];
    const out = backend.makeOutput([rows, cols], 'float32');
    copyBlock(backend.typedArrayFromHeap(info), [sizeOf(info.shape.slice(0, -2)), rows, cols], [index, 0, 0], [1, rows, cols], backend.typedArrayFromHeap(out));
    return out;
  };

  const batchMatMul = (args: KernelArgs): tf.TensorInfo => {
    const { inputs: { a, b }, attrs, backend } = args;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = sizeOf(outerA);
    const batchB = sizeOf(outerB);
    const sameBatch = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    const plain = !attrs.transposeA && !attrs.transposeB;
    if ((plain && batchA === 1 && batchB === 1) || !(sameBatch || batchA === 1 || batchB === 1) || a.dtype !== 'float32' || b.dtype !== 'float32') {
      return original.kernelFunc(args as never) as tf.TensorInfo;
    }
    const temporaries: tf.TensorInfo[] = [];
    const a2 = attrs.transposeA ? swapLastAxes(a, backend) : a;
    const b2 = attrs.transposeB ? swapLastAxes(b, backend) : b;
    if (a2 !== a) temporaries.push(a2);
    if (b2 !== b) temporaries.push(b2);
    let out: tf.TensorInfo;
    if (batchA === 1 && batchB === 1) {
      out = multiply(a2, b2, backend);
    } else {
      const [rows, inner] = a2.shape.slice(-2) as [number, number];
      const cols = b2.shape.at(-1)!;
      const batch = Math.max(batchA, batchB);
      out = backend.makeOutput([...(batchA >= batchB ? outerA : outerB), rows, cols], 'float32');
      const lhs = batchA === 1 ? { ...a2, shape: [rows, inner] } : null;
      const rhs = batchB === 1 ? { ...b2, shape: [inner, cols] } : null;
      for (let i = 0; i < batch; i++) {
        const ai = lhs ?? matrix(a2, i, backend);
        const bi = rhs ?? matrix(b2, i, backend);
        const product = multiply(ai, bi, backend);
        backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(product), i * rows * cols);
        backend.disposeData(product.dataId);
        if (ai !== lhs) backend.disposeData(ai.dataId);
        if (bi !== rhs) backend.disposeData(bi.dataId);
      }
    }
    for (const info of temporaries) backend.disposeData(info.dataId);
    return out;
  };

  return { ...original, kernelFunc: batchMatMul as unknown as tf.KernelFunc };
}
