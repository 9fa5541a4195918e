/**
 * The LSTM language model: Embedding -> LSTM x numLayers -> Dropout -> Dense(vocab), as a tfjs
 * functional model (docs/FORMATS.md). The LSTMs use a sigmoid recurrent activation (not tfjs's
 * hardSigmoid default) because ONNX Runtime's WebGPU LSTM supports only sigmoid. FerryLSTM is
 * tfjs's LSTM (saved as class LSTM) with a fused training pass.
 */
import * as tf from '@tensorflow/tfjs';
import { INPUT_IDS } from '../../package/io.ts';
import type { LstmConfig } from './config.ts';
import { seededInitializers } from './init.ts';
import { FerryTiedEmbedding } from './layers.ts';
import { FerryLSTM } from './lstm-layer.ts';

/**
 * An LSTM has no LayerNorm to rescale its inputs: GPT's N(0, 0.02) embeddings kept a small LSTM
 * at the unigram plateau for hundreds of steps, where PyTorch's N(0, 1) default trains at once
 * (tied or not: measured on a char corpus, val loss 0.54-0.56 vs 2.97 after 300 steps).
 */
const EMBEDDING_STD = 1;

export function createLstmLM(config: LstmConfig, options: { seed?: number } = {}): tf.LayersModel {
  const init = seededInitializers(options.seed);
  const inputIds = tf.input({ shape: [null], dtype: 'int32', name: INPUT_IDS });

  const tied = config.tieWeights
    ? new FerryTiedEmbedding({
      inputDim: config.vocabSize, outputDim: config.embeddingDim, initStd: EMBEDDING_STD, seed: init.seed(), name: 'token_embedding',
    })
    : null;
  const embedding = tied ?? tf.layers.embedding({
    inputDim: config.vocabSize, outputDim: config.embeddingDim, embeddingsInitializer: init.normal(EMBEDDING_STD), name: 'token_embedding',
  });
  let x = embedding.apply(inputIds) as tf.SymbolicTensor;

  for (let layer = 0; layer < config.numLayers; layer++) {
    x = new FerryLSTM({
      units: config.hiddenSize, returnSequences: true, recurrentActivation: 'sigmoid',
      kernelInitializer: init.glorotUniform(), recurrentInitializer: init.orthogonal(), name: `lstm_${layer}`,
    }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.dropout({ rate: config.dropout, seed: init.seed(), name: 'dropout' }).apply(x) as tf.SymbolicTensor;

  const head = tied ?? tf.layers.dense({ units: config.vocabSize, kernelInitializer: init.glorotUniform(), name: 'lm_head' });
  const logits = head.apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: inputIds, outputs: logits, name: 'ferry_lstm_lm' });
}
