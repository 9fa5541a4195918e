/** Kernels ferry adds to tfjs backends so that its models train there. */
import * as tf from '@tensorflow/tfjs';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.ts';

const WASM_KERNELS: readonly tf.KernelConfig[] = [unsortedSegmentSumConfig];

/** Registers ferry's wasm kernels (once; call before the wasm backend runs anything). */
export function registerWasmKernels(): void {
  for (const config of WASM_KERNELS) {
    if (tf.getKernel(config.kernelName, config.backendName) === undefined) tf.registerKernel(config);
  }
}
