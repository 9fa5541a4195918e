/** ferry's models. Importing this module registers the custom layers with tfjs. */
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';
import { createLstmLM } from './lstm.ts';
import { createTransformerLM } from './transformer.ts';

export * from './config.ts';
export * from './layers.ts';
export { FerryLSTM } from './lstm-layer.ts';
export { createLstmLM } from './lstm.ts';
export { createTransformerLM } from './transformer.ts';

/** A fresh, randomly initialised model for a (validated) config. */
export function createModel(config: ModelConfig): tf.LayersModel {
  return config.arch === 'lstm' ? createLstmLM(config) : createTransformerLM(config);
}
