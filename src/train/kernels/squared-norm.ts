/**
 * The sum of squares of any number of float32 tensors, as one kernel: gradient clipping's global
 * norm over a model's 52 gradients was 52 Square and 52 Sum kernels plus an AddN (about 7 ms a
 * nanogpt-cpu step, mostly kernel launches). Summed in float64 (native/squared_norm.c).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { hasFusedKernel, runFused } from './heap-kernel.ts';
import { nativeKernels } from './native.ts';
import { wasmHeap } from './wasm-heap.ts';

export const SQUARED_NORM_KERNEL = 'FerrySquaredNorm';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: BackendWasm };

export const squaredNormConfig: tf.KernelConfig = {
  kernelName: SQUARED_NORM_KERNEL,
  backendName: 'wasm',
  kernelFunc: (({ inputs, backend }: KernelArgs): tf.TensorInfo => {
    const { sum_of_squares: sumOfSquares } = nativeKernels(backend).exports;
    const heap = wasmHeap(backend);
    let total = 0;
    for (const info of Object.values(inputs)) {
      if (info.dtype !== 'float32') throw new Error(`${SQUARED_NORM_KERNEL} takes float32 tensors, got ${info.dtype}`);
      total += sumOfSquares(heap.address(info), tf.util.sizeFromShape(info.shape));
    }
    const out = backend.makeOutput([], 'float32');
    backend.typedArrayFromHeap(out)[0] = total;
    return out;
  }) as unknown as tf.KernelFunc,
};

/** sum over tensors of sum(x^2), as a scalar: one kernel on wasm, tfjs ops elsewhere. */
export function squaredNorm(tensors: readonly tf.Tensor[]): tf.Scalar {
  if (hasFusedKernel(SQUARED_NORM_KERNEL) && tensors.every((tensor) => tensor.dtype === 'float32')) {
    return runFused(SQUARED_NORM_KERNEL, Object.fromEntries(tensors.map((tensor, index) => [String(index), tensor])))[0] as tf.Scalar;
  }
  return tf.tidy(() => tf.addN(tensors.map((tensor) => tf.sum(tf.square(tensor)))) as tf.Scalar);
}
