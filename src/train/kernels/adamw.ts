/**
 * One AdamW update of a parameter in one pass, for the wasm backend. optimizer.ts writes the
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

export const ADAMW_KERNEL = 'FerryAdamW';

export type AdamWStepAttrs = {
  beta1: number;
  beta2: number;
  epsilon: number;
  stepSize: number;
  secondCorrection: number;
  decayFactor: number;
};

function adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, scale: number,
  nextP: Float32Array, nextM: Float32Array, nextV: Float32Array, { beta1, beta2, epsilon, stepSize, secondCorrection, decayFactor }: AdamWStepAttrs): void {
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  for (let i = 0; i < p.length; i++) {
    const gradient = g[i]! * scale;
    const first = beta1 * m[i]! + oneMinusBeta1 * gradient;
    const second = beta2 * v[i]! + oneMinusBeta2 * gradient * gradient;
    nextM[i] = first;
    nextV[i] = second;
    nextP[i] = p[i]! * decayFactor - (stepSize * first) / (Math.sqrt(second) / secondCorrection + epsilon);
  }
}

/** Inputs param, grad, m, v (one shape) and scale []; outputs param, m, v after the step. */
export const adamwKernel: HeapKernel<AdamWStepAttrs> = {
  kernelName: ADAMW_KERNEL,
  inputNames: ['param', 'grad', 'm', 'v', 'scale'],
  outputShapes: ([param]) => [param!.shape, param!.shape, param!.shape],
  compute: ([p, g, m, v, scale], [nextP, nextM, nextV], _shapes, attrs) =>
    adamwStep(p as Float32Array, g as Float32Array, m as Float32Array, v as Float32Array, scale![0]!, nextP!, nextM!, nextV!, attrs),
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
