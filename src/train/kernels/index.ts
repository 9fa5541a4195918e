/** Kernels and gradients ferry adds to tfjs so that its models train fast on wasm. */
import * as tf from '@tensorflow/tfjs';
import { adamwKernel } from './adamw.ts';
import { attentionGradKernel, attentionKernel, biasedAttentionGradKernel, biasedAttentionKernel } from './attention.ts';
import { crossEntropyGradKernel, crossEntropyKernel } from './cross-entropy.ts';
import { rowGatherConfig } from './gather.ts';
import { geluKernel, geluTanhKernel } from './gelu.ts';
import { heapKernelConfig } from './heap-kernel.ts';
import { sharingIdentityConfigs } from './identity.ts';
import { fastBatchMatMulConfig, fastFusedMatMulConfig } from './matmul.ts';
import { fastSlicingConfigs } from './slicing.ts';
import { squaredNormConfig } from './squared-norm.ts';
import { layerNormGradKernel, layerNormKernel, rmsNormGradKernel, rmsNormKernel } from './layer-norm.ts';
import { lstmSequenceConfigs } from './lstm-sequence.ts';
import { leadingAxesSumConfig } from './sum.ts';
import { tileGradConfig } from './tile-grad.ts';
import { fastTransposeConfig } from './transpose.ts';
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
  const heapKernels = [
    geluKernel, geluTanhKernel, layerNormKernel, layerNormGradKernel, rmsNormKernel, rmsNormGradKernel, crossEntropyKernel, crossEntropyGradKernel,
    adamwKernel, attentionKernel, attentionGradKernel, biasedAttentionKernel, biasedAttentionGradKernel,
  ];
  for (const kernel of heapKernels) tf.registerKernel(heapKernelConfig(kernel as never));
  for (const config of lstmSequenceConfigs) tf.registerKernel(config);
  tf.registerKernel(squaredNormConfig);
  const replacements = [
    fastBatchMatMulConfig(), fastFusedMatMulConfig(), fastTransposeConfig(), leadingAxesSumConfig(), rowGatherConfig(), ...sharingIdentityConfigs(), ...fastSlicingConfigs(),
  ];
  for (const config of replacements) {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  tf.registerGradient(tileGradConfig);
}
