/**
 * LayerNormalization over the last axis and its gradient, each one pass per row (native/layer_norm.c). tfjs builds the
 * forward pass from eight kernels (moments, subtract, rsqrt, scale, shift) and autodiff walks
 * about twenty back, with two sums over all rows for the gamma and beta gradients; a step of
 * nanogpt-cpu has nine of them. The forward pass saves the normalized input and 1/std per row,
 * which is all the backward pass needs:
 *   dxhat = dy gamma;  dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat));
 *   dgamma = sum over rows of dy xhat;  dbeta = sum over rows of dy.
 */
import type { HeapKernel } from './heap-kernel.ts';
import { nativeKernels } from './native.ts';

export const LAYER_NORM_KERNEL = 'FerryLayerNorm';
export const LAYER_NORM_GRAD_KERNEL = 'FerryLayerNormGrad';

export type LayerNormAttrs = { epsilon: number };

const rowsOf = (shape: readonly number[]) => shape.slice(0, -1).reduce((a, b) => a * b, 1);

/** Outputs y, xhat (both x's shape) and rstd [rows]. Variance is the biased one, as tfjs's. */
export const layerNormKernel: HeapKernel<LayerNormAttrs> = {
  kernelName: LAYER_NORM_KERNEL,
  inputNames: ['x', 'gamma', 'beta'],
  outputShapes: ([x]) => [x!.shape, x!.shape, [rowsOf(x!.shape)]],
  compute: ([x, gamma, beta], [y, xhat, rstd], [shape], { epsilon }, backend) => nativeKernels(backend).exports.layer_norm(
    x!.byteOffset, gamma!.byteOffset, beta!.byteOffset, y!.byteOffset, xhat!.byteOffset, rstd!.byteOffset, rowsOf(shape!), shape!.at(-1)!, epsilon),
};

/** Outputs dx (x's shape), dgamma and dbeta ([width]). */
export const layerNormGradKernel: HeapKernel<Record<string, never>> = {
  kernelName: LAYER_NORM_GRAD_KERNEL,
  inputNames: ['dy', 'xhat', 'rstd', 'gamma'],
  outputShapes: ([dy]) => [dy!.shape, [dy!.shape.at(-1)!], [dy!.shape.at(-1)!]],
  // Scratch for the float64 sums of dgamma and dbeta: 2 * width doubles.
  scratchFloats: ([shape]) => 4 * shape!.at(-1)!,
  compute: ([dy, xhat, rstd, gamma], [dx, dgamma, dbeta], [shape], _attrs, backend, sums) => {
    nativeKernels(backend).exports.layer_norm_grad(dy!.byteOffset, xhat!.byteOffset, rstd!.byteOffset, gamma!.byteOffset,
      dx!.byteOffset, dgamma!.byteOffset, dbeta!.byteOffset, rowsOf(shape!), shape!.at(-1)!, sums);
  },
};

export const RMS_NORM_KERNEL = 'FerryRmsNorm';
export const RMS_NORM_GRAD_KERNEL = 'FerryRmsNormGrad';

/**
 * T5's RMS norm, y = x rstd gamma with rstd = 1 / sqrt(mean(x^2) + epsilon) (no mean, no beta),
 * the same way: outputs y, xhat = x rstd and rstd [rows]. Its gradient is LayerNorm's without the
 * mean terms: dx = rstd (dy gamma - xhat mean(dy gamma xhat)); dgamma = sum over rows of dy xhat.
 */
export const rmsNormKernel: HeapKernel<LayerNormAttrs> = {
  kernelName: RMS_NORM_KERNEL,
  inputNames: ['x', 'gamma'],
  outputShapes: ([x]) => [x!.shape, x!.shape, [rowsOf(x!.shape)]],
  compute: ([x, gamma], [y, xhat, rstd], [shape], { epsilon }, backend) => nativeKernels(backend).exports.rms_norm(
    x!.byteOffset, gamma!.byteOffset, y!.byteOffset, xhat!.byteOffset, rstd!.byteOffset, rowsOf(shape!), shape!.at(-1)!, epsilon),
};

/** Outputs dx (x's shape) and dgamma ([width]). */
export const rmsNormGradKernel: HeapKernel<Record<string, never>> = {
  kernelName: RMS_NORM_GRAD_KERNEL,
  inputNames: ['dy', 'xhat', 'rstd', 'gamma'],
  outputShapes: ([dy]) => [dy!.shape, [dy!.shape.at(-1)!]],
  // Scratch for the float64 sums of dgamma: width doubles.
  scratchFloats: ([shape]) => 2 * shape!.at(-1)!,
  compute: ([dy, xhat, rstd, gamma], [dx, dgamma], [shape], _attrs, backend, sums) => {
    nativeKernels(backend).exports.rms_norm_grad(dy!.byteOffset, xhat!.byteOffset, rstd!.byteOffset, gamma!.byteOffset,
      dx!.byteOffset, dgamma!.byteOffset, rowsOf(shape!), shape!.at(-1)!, sums);
  },
};
