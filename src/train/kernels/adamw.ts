/**
 * One AdamW update of a parameter in one pass, for the wasm backend (native/adamw.c). optimizer.ts writes the
 * update as eleven tfjs ops per parameter (~600 kernels a nanogpt-cpu step, 13-24 ms); this
 * kernel reads param, grad, m, v once and writes the three new tensors, with the same formula:
 *   g = grad * scale (the gradient-clipping coefficient, a scalar tensor, so no sync)
 *   m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2
 *   p' = p * decayFactor - stepSize * m' / (sqrt(v') / secondCorrection + epsilon)
 * where stepSize = lr / (1 - b1^t), secondCorrection = sqrt(1 - b2^t), decayFactor = 1 - lr wd
 * (1 for parameters that do not decay). Numbers are computed in float64 and stored as float32,
 * so a result can differ from the op-by-op float32 version in the last bit.
 */
import type * as tf from '@tensorflow/tfjs';
import { hasFusedKernel, runFused, type HeapKernel } from './heap-kernel.ts';
import { nativeKernels } from './native.ts';

export const ADAMW_KERNEL = 'FerryAdamW';

export type AdamWStepAttrs = {
  beta1: number;
  beta2: number;
  epsilon: number;
  stepSize: number;
  secondCorrection: number;
  decayFactor: number;
};

/** Inputs param, grad, m, v (one shape) and scale []; outputs param, m, v after the step. */
export const adamwKernel: HeapKernel<AdamWStepAttrs> = {
  kernelName: ADAMW_KERNEL,
  inputNames: ['param', 'grad', 'm', 'v', 'scale'],
  outputShapes: ([param]) => [param!.shape, param!.shape, param!.shape],
  compute: ([p, g, m, v, scale], [nextP, nextM, nextV], _shapes, { beta1, beta2, epsilon, stepSize, secondCorrection, decayFactor }, backend) =>
    nativeKernels(backend).exports.adamw_step(p!.byteOffset, g!.byteOffset, m!.byteOffset, v!.byteOffset, scale![0]!,
      nextP!.byteOffset, nextM!.byteOffset, nextV!.byteOffset, p!.length, beta1, beta2, epsilon, stepSize, secondCorrection, decayFactor),
};

/** Whether the active backend has the fused AdamW step. */
export function hasFusedAdamW(): boolean {
  return hasFusedKernel(ADAMW_KERNEL);
}

/**
 * [param, m, v] after one AdamW step on the active backend (check hasFusedAdamW first). `scale`
 * multiplies the gradient: pass the clipping coefficient, or tf.scalar(1).
 */
export function fusedAdamWStep(param: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, v: tf.Tensor, scale: tf.Tensor, attrs: AdamWStepAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const [nextParam, nextM, nextV] = runFused(ADAMW_KERNEL, { param, grad, m, v, scale }, attrs);
  return [nextParam!, nextM!, nextV!];
}
