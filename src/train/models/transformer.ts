/**
 * The GPT-style Transformer language model, as a tfjs functional model (docs/FORMATS.md):
 * token embedding -> position embedding -> dropout -> pre-LN blocks -> final LayerNorm -> head.
 * RoPE and ALiBi have no position embedding: each block applies them in its attention.
 * Initialisation follows GPT-2 / nanoGPT: N(0, 0.02), output projections N(0, 0.02/sqrt(2 * nLayer)).
 */
import * as tf from '@tensorflow/tfjs';
import { INPUT_IDS } from '../../package/io.ts';
import type { TransformerConfig } from './config.ts';
import { seededInitializers } from './init.ts';
import { FerryLayerNormalization } from './layer-norm.ts';
import { FerryPositionEmbedding, FerryTiedEmbedding, FerryTransformerBlock } from './layers.ts';

const INIT_STD = 0.02;
const LAYER_NORM_EPSILON = 1e-5;
/** Seeds a block uses (one per kernel). */
const BLOCK_SEEDS = 4;

export function createTransformerLM(config: TransformerConfig, options: { seed?: number } = {}): tf.LayersModel {
  const { vocabSize, blockSize, nLayer, nHead, nEmbd, dropout } = config;
  const init = seededInitializers(options.seed);
  const inputIds = tf.input({ shape: [null], dtype: 'int32', name: INPUT_IDS });

  const tied = config.tieWeights
    ? new FerryTiedEmbedding({ inputDim: vocabSize, outputDim: nEmbd, initStd: INIT_STD, seed: init.seed(), name: 'token_embedding' })
    : null;
  const tokenEmbedding = tied ?? tf.layers.embedding({
    inputDim: vocabSize, outputDim: nEmbd, embeddingsInitializer: init.normal(INIT_STD), name: 'token_embedding',
  });
  let x = tokenEmbedding.apply(inputIds) as tf.SymbolicTensor;
  const positional = config.positional;
  const inBlocks = positional === 'rope' || positional === 'alibi';
  if (!inBlocks) {
    x = new FerryPositionEmbedding({
      maxLength: blockSize, outputDim: nEmbd, kind: positional, initStd: INIT_STD, seed: init.seed(), name: 'position_embedding',
    }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.dropout({ rate: dropout, seed: init.seed(), name: 'embedding_dropout' }).apply(x) as tf.SymbolicTensor;

  for (let layer = 0; layer < nLayer; layer++) {
    const seed = init.seed();
    x = new FerryTransformerBlock({
      dim: nEmbd, numHeads: nHead, mlpDim: 4 * nEmbd, dropout, epsilon: LAYER_NORM_EPSILON, initStd: INIT_STD,
      projInitStd: INIT_STD / Math.sqrt(2 * nLayer), seed: seed === undefined ? undefined : seed * BLOCK_SEEDS, name: `block_${layer}`,
      ...(inBlocks ? { positional, maxLength: positional === 'rope' ? blockSize : undefined } : {}),
    }).apply(x) as tf.SymbolicTensor;
  }
  x = new FerryLayerNormalization({ axis: -1, epsilon: LAYER_NORM_EPSILON, name: 'final_norm' }).apply(x) as tf.SymbolicTensor;

  const head = tied ?? tf.layers.dense({ units: vocabSize, kernelInitializer: init.normal(INIT_STD), name: 'lm_head' });
  const logits = head.apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: inputIds, outputs: logits, name: 'ferry_transformer_lm' });
}
