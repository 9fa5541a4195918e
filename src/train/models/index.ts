/** ferry's models. Importing this module registers the custom layers with tfjs. */
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';
import { createLstmLM } from './lstm.ts';
import { createTransformerLM } from './transformer.ts';

export * from './config.ts';
export * from './layers.ts';
export { FerryLSTM } from './lstm-layer.ts';
export { FerryLayerNormalization } from './layer-norm.ts';
export { gelu, layerNorm } from './fused.ts';
export { crossEntropy } from './loss.ts';
export { FerryOrthogonal, orthogonalMatrix } from './init.ts';
export { createLstmLM } from './lstm.ts';
export { createTransformerLM } from './transformer.ts';

/** A fresh, randomly initialised model for a (validated) config; the same seed gives the same weights. */
export function createModel(config: ModelConfig, options: { seed?: number } = {}): tf.LayersModel {
  return config.arch === 'lstm' ? createLstmLM(config, options) : createTransformerLM(config, options);
}
