/**
 * The LSTM language model: Embedding -> LSTM x numLayers -> Dropout -> Dense(vocab), as a tfjs
 * functional model (docs/FORMATS.md). The LSTMs use a sigmoid recurrent activation (not tfjs's
 * hardSigmoid default) because ONNX Runtime's WebGPU LSTM supports only sigmoid.
 */
import * as tf from '@tensorflow/tfjs';
import type { LstmConfig } from './config.ts';
import { FerryTiedEmbedding } from './layers.ts';
import { FerryLSTM } from './lstm-layer.ts';

const INIT_STD = 0.02;

export function createLstmLM(config: LstmConfig): tf.LayersModel {
  const inputIds = tf.input({ shape: [null], dtype: 'int32', name: 'input_ids' });

  const tied = config.tieWeights
    ? new FerryTiedEmbedding({ inputDim: config.vocabSize, outputDim: config.embeddingDim, name: 'token_embedding' })
    : null;
  const embedding = tied ?? tf.layers.embedding({
    inputDim: config.vocabSize, outputDim: config.embeddingDim, name: 'token_embedding',
    embeddingsInitializer: tf.initializers.randomNormal({ mean: 0, stddev: INIT_STD }),
  });
  let x = embedding.apply(inputIds) as tf.SymbolicTensor;

  for (let layer = 0; layer < config.numLayers; layer++) {
    x = new FerryLSTM({
      units: config.hiddenSize, returnSequences: true, recurrentActivation: 'sigmoid', name: `lstm_${layer}`,
    }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.dropout({ rate: config.dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;

  const head = tied ?? tf.layers.dense({
    units: config.vocabSize, name: 'lm_head',
    kernelInitializer: tf.initializers.randomNormal({ mean: 0, stddev: INIT_STD }),
  });
  const logits = head.apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: inputIds, outputs: logits, name: 'ferry_lstm_lm' });
}
