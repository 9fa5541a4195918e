/**
 * GELU with the exact erf, y = x Phi(x), and its derivative Phi(x) + x phi(x), in one pass
 * (native/gelu.c, four values at a time). tfjs computes it as five kernels forward (erf among
 * them, 1.3 ms for [12, 64, 512] on wasm) and its gradient as eight, with an exp (2.4 ms); the
 * saved derivative makes the backward pass one multiply.
 */
import type { HeapKernel } from './heap-kernel.ts';
import { nativeKernels } from './native.ts';

export const GELU_KERNEL = 'FerryGelu';

export const geluKernel: HeapKernel<Record<string, never>> = {
  kernelName: GELU_KERNEL,
  inputNames: ['x'],
  outputShapes: ([x]) => [x!.shape, x!.shape],
  compute: ([x], [y, slope], _shapes, _attrs, backend) =>
    nativeKernels(backend).exports.gelu_with_slope(x!.byteOffset, y!.byteOffset, slope!.byteOffset, x!.length),
};

export const GELU_TANH_KERNEL = 'FerryGeluTanh';

/** GELU with the tanh approximation (T5's gated GELU) and its derivative, the same way (native/gelu.c). */
export const geluTanhKernel: HeapKernel<Record<string, never>> = {
  kernelName: GELU_TANH_KERNEL,
  inputNames: ['x'],
  outputShapes: ([x]) => [x!.shape, x!.shape],
  compute: ([x], [y, slope], _shapes, _attrs, backend) =>
    nativeKernels(backend).exports.gelu_tanh_with_slope(x!.byteOffset, y!.byteOffset, slope!.byteOffset, x!.length),
};
