/** Kernels and gradients ferry adds to tfjs so that its models train fast on wasm. */
import * as tf from '@tensorflow/tfjs';
import { fastBatchMatMulConfig } from './matmul.ts';
import { fastSlicingConfigs } from './slicing.ts';
import { tileGradConfig } from './tile-grad.ts';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.ts';

let registered = false;

/**
 * Registers ferry's wasm kernels and gradients, once. Call after importing
 * @tensorflow/tfjs-backend-wasm and before the wasm backend runs anything.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel(unsortedSegmentSumConfig);
  for (const config of [fastBatchMatMulConfig(), ...fastSlicingConfigs()]) {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  tf.registerGradient(tileGradConfig);
}
