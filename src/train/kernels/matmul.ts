/**
 * BatchMatMul for wasm on ferry's own matrix product (gemm.ts). The wasm backend runs its fast
 * XNNPACK kernel only for one matrix product without transposes; every gradient matMul (x^T dy,
 * dy w^T) and every batched attention product fell to a naive loop at about 1 GFLOP/s. Here a
 * transpose is only a change of strides and a whole batch is one call; a batch against one shared
 * right-hand matrix is a single product over all the stacked rows.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapGemm, type StridedMatrices } from './gemm.ts';
import { nativeKernels } from './native.ts';
import { wasmHeap } from './wasm-heap.ts';

type MatMulAttrs = { transposeA: boolean; transposeB: boolean };
type KernelArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; attrs: MatMulAttrs; backend: BackendWasm };

const sizeOf = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/**
 * op(a) x op(b) into a new tensor on ferry's gemm, or null for what it leaves to the backend's own
 * kernel (batch shapes that broadcast other than against 1, other dtypes).
 */
function nativeBatchMatMul(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean, backend: BackendWasm): tf.TensorInfo | null {
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const sameBatch = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
  if (!(sameBatch || batchA === 1 || batchB === 1) || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
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

  const heap = wasmHeap(backend);
  const left: StridedMatrices = {
    start: heap.start(a),
    rowStride: transposeA ? 1 : aCols,
    columnStride: transposeA ? aCols : 1,
    batchStride: batchA === 1 ? 0 : aRows * aCols,
  };
  const right: StridedMatrices = {
    start: heap.start(b),
    rowStride: transposeB ? 1 : bCols,
    columnStride: transposeB ? bCols : 1,
    batchStride: batchB === 1 ? 0 : bRows * bCols,
  };
  const product = { start: heap.start(out), rowStride: n, batchStride: m * n };
  if (batchB === 1 && batchA === batch && !transposeA) {
    // Stacked, the left matrices are one [batch * m, k] matrix against the shared right one.
    heapGemm(backend, { ...left, batchStride: 0 }, right, product, 1, batch * m, n, k);
  } else {
    heapGemm(backend, left, right, product, batch, m, n, k);
  }
  return out;
}

/** Wraps the wasm backend's own BatchMatMul (which must be registered already) for the cases it leaves. */
export function fastBatchMatMulConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (original === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  const batchMatMul = (args: KernelArgs): tf.TensorInfo => {
    const { inputs: { a, b }, attrs: { transposeA, transposeB }, backend } = args;
    return nativeBatchMatMul(a, b, transposeA, transposeB, backend) ?? original.kernelFunc(args as never) as tf.TensorInfo;
  };
  return { ...original, kernelFunc: batchMatMul as unknown as tf.KernelFunc };
}

type FusedMatMulArgs = {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
  attrs: MatMulAttrs & { activation?: string };
  backend: BackendWasm;
};

/**
 * _FusedMatMul (a dense layer: matMul plus bias) on ferry's gemm when there is no activation and
 * the bias is a row or one number; the backend's own kernel (XNNPACK, 25 GFLOP/s here) does the
 * rest.
 */
export function fastFusedMatMulConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf._FusedMatMul, 'wasm');
  if (original === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  const fusedMatMul = (args: FusedMatMulArgs): tf.TensorInfo => {
    const { inputs: { a, b, bias, preluActivationWeights }, attrs: { transposeA, transposeB, activation }, backend } = args;
    const n = transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
    // A bias of one number broadcasts (the stock kernel reads it as a row, past its end).
    const plainBias = bias === undefined || (bias.dtype === 'float32' && bias.shape.length === 1 && (bias.shape[0] === n || bias.shape[0] === 1));
    const linear = (activation === undefined || activation === 'linear') && preluActivationWeights === undefined;
    const out = plainBias && linear ? nativeBatchMatMul(a, b, transposeA, transposeB, backend) : null;
    if (out === null) return original.kernelFunc(args as never) as tf.TensorInfo;
    if (bias !== undefined && n > 0) {
      const heap = wasmHeap(backend);
      nativeKernels(backend).exports.add_bias(heap.address(out), sizeOf(out.shape) / n, n, heap.address(bias), bias.shape[0] === n ? 1 : 0);
    }
    return out;
  };
  return { ...original, kernelFunc: fusedMatMul as unknown as tf.KernelFunc };
}
