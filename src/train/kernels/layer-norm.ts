/**
 * LayerNormalization over the last axis and its gradient, each one pass per row. tfjs builds the
 * forward pass from eight kernels (moments, subtract, rsqrt, scale, shift) and autodiff walks
 * about twenty back, with two sums over all rows for the gamma and beta gradients; a step of
 * nanogpt-cpu has nine of them. The forward pass saves the normalized input and 1/std per row,
 * which is all the backward pass needs:
 *   dxhat = dy gamma;  dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat));
 *   dgamma = sum over rows of dy xhat;  dbeta = sum over rows of dy.
 */
import type { HeapKernel } from './heap-kernel.ts';

export const LAYER_NORM_KERNEL = 'FerryLayerNorm';
export const LAYER_NORM_GRAD_KERNEL = 'FerryLayerNormGrad';

export type LayerNormAttrs = { epsilon: number };

const rowsOf = (shape: readonly number[]) => shape.slice(0, -1).reduce((a, b) => a * b, 1);

function normalizeRows(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, xhat: Float32Array, rstd: Float32Array,
  rows: number, width: number, epsilon: number): void {
  for (let r = 0; r < rows; r++) {
    const from = r * width;
    let sum = 0;
    for (let j = 0; j < width; j++) sum += x[from + j]!;
    const mean = sum / width;
    let squares = 0;
    for (let j = 0; j < width; j++) {
      const d = x[from + j]! - mean;
      squares += d * d;
    }
    const inverse = 1 / Math.sqrt(squares / width + epsilon);
    rstd[r] = inverse;
    for (let j = 0; j < width; j++) {
      const normalized = (x[from + j]! - mean) * inverse;
      xhat[from + j] = normalized;
      y[from + j] = normalized * gamma[j]! + beta[j]!;
    }
  }
}

function normalizeRowsGrad(dy: Float32Array, xhat: Float32Array, rstd: Float32Array, gamma: Float32Array,
  dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, rows: number, width: number): void {
  // Sums over all rows in float64: a float32 running sum over 768 rows drifts by ~1e-6.
  const gammaSums = new Float64Array(width);
  const betaSums = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const from = r * width;
    let sumD = 0;
    let sumDX = 0;
    for (let j = 0; j < width; j++) {
      const g = dy[from + j]!;
      const h = xhat[from + j]!;
      const d = g * gamma[j]!;
      sumD += d;
      sumDX += d * h;
      gammaSums[j]! += g * h;
      betaSums[j]! += g;
    }
    const meanD = sumD / width;
    const meanDX = sumDX / width;
    const inverse = rstd[r]!;
    for (let j = 0; j < width; j++) dx[from + j] = inverse * (dy[from + j]! * gamma[j]! - meanD - xhat[from + j]! * meanDX);
  }
  dgamma.set(gammaSums);
  dbeta.set(betaSums);
}

/** Outputs y, xhat (both x's shape) and rstd [rows]. Variance is the biased one, as tfjs's. */
export const layerNormKernel: HeapKernel<LayerNormAttrs> = {
  kernelName: LAYER_NORM_KERNEL,
  inputNames: ['x', 'gamma', 'beta'],
  outputShapes: ([x]) => [x!.shape, x!.shape, [rowsOf(x!.shape)]],
  compute: ([x, gamma, beta], [y, xhat, rstd], [shape], { epsilon }) =>
    normalizeRows(x as Float32Array, gamma as Float32Array, beta as Float32Array, y!, xhat!, rstd!, rowsOf(shape!), shape!.at(-1)!, epsilon),
};

/** Outputs dx (x's shape), dgamma and dbeta ([width]). */
export const layerNormGradKernel: HeapKernel<Record<string, never>> = {
  kernelName: LAYER_NORM_GRAD_KERNEL,
  inputNames: ['dy', 'xhat', 'rstd', 'gamma'],
  outputShapes: ([dy]) => [dy!.shape, [dy!.shape.at(-1)!], [dy!.shape.at(-1)!]],
  compute: ([dy, xhat, rstd, gamma], [dx, dgamma, dbeta], [shape]) => normalizeRowsGrad(
    dy as Float32Array, xhat as Float32Array, rstd as Float32Array, gamma as Float32Array, dx!, dgamma!, dbeta!, rowsOf(shape!), shape!.at(-1)!),
};
