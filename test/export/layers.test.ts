/**
 * The converter matrix: each tfjs layer configuration exported, run in onnxruntime-node and
 * compared with tfjs on random inputs (batch 1 and 3, two lengths): max |diff| <= 1e-4.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { convertModel } from '../../src/export/convert.ts';
import { SUPPORTED_ACTIVATIONS } from '../../src/export/converters/support.ts';
import { checkModels } from './checker.ts';
import { expectParity, exported } from './parity.ts';

function sequence(features: number, ...layers: tf.layers.Layer[]): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.inputLayer({ inputShape: [null, features] }));
  for (const layer of layers) model.add(layer);
  return model;
}

const rnnCases: [string, () => tf.layers.Layer[]][] = [
  ['lstm sequences hardSigmoid', () => [tf.layers.lstm({ units: 5, returnSequences: true })]],
  ['lstm last sigmoid', () => [tf.layers.lstm({ units: 5, recurrentActivation: 'sigmoid' })]],
  ['lstm relu no bias', () => [tf.layers.lstm({ units: 4, activation: 'relu', useBias: false, returnSequences: true })]],
  ['lstm goBackwards sequences', () => [tf.layers.lstm({ units: 4, goBackwards: true, returnSequences: true })]],
  ['lstm goBackwards last', () => [tf.layers.lstm({ units: 4, goBackwards: true })]],
  ['lstm stacked', () => [tf.layers.lstm({ units: 6, returnSequences: true }), tf.layers.lstm({ units: 3, returnSequences: true })]],
  ['gru sequences', () => [tf.layers.gru({ units: 5, returnSequences: true })]],
  ['gru sigmoid last', () => [tf.layers.gru({ units: 5, recurrentActivation: 'sigmoid' })]],
  ['gru goBackwards', () => [tf.layers.gru({ units: 4, goBackwards: true, returnSequences: true })]],
  ['simpleRNN tanh', () => [tf.layers.simpleRNN({ units: 5, returnSequences: true })]],
  ['simpleRNN relu last', () => [tf.layers.simpleRNN({ units: 5, activation: 'relu' })]],
  ['simpleRNN linear', () => [tf.layers.simpleRNN({ units: 3, activation: 'linear', returnSequences: true })]],
];
for (const [name, layers] of rnnCases) test(name, async () => void await expectParity(name, sequence(7, ...layers())));

for (const mergeMode of ['concat', 'sum', 'mul', 'ave'] as const) {
  for (const returnSequences of [true, false]) {
    const name = `bidirectional lstm ${mergeMode} ${returnSequences ? 'sequences' : 'last'}`;
    test(name, async () => void await expectParity(name, sequence(6, tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 4, returnSequences }) as tf.RNN, mergeMode }))));
  }
}

test('bidirectional merge null (explicit) and GRU with returnState', async () => {
  const x = tf.input({ shape: [null, 5] });
  const both = tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3, returnSequences: true }) as tf.RNN, mergeMode: null as unknown as 'concat' }).apply(x) as tf.SymbolicTensor[];
  assert.equal(both.length, 2);
  await expectParity('bidirectional null', tf.model({ inputs: x, outputs: both }));
  const y = tf.input({ shape: [null, 4] });
  const gru = tf.layers.bidirectional({ layer: tf.layers.gru({ units: 3, returnState: true }) as tf.RNN, mergeMode: 'sum' }).apply(y) as tf.SymbolicTensor[];
  assert.equal(gru.length, 3);
  await expectParity('bidirectional gru returnState', tf.model({ inputs: y, outputs: gru }));
});

test('LSTM returnState and initial state inputs', async () => {
  const x = tf.input({ shape: [null, 4] });
  const [seq, h, c] = tf.layers.lstm({ units: 5, returnSequences: true, returnState: true }).apply(x) as tf.SymbolicTensor[];
  const next = tf.layers.lstm({ units: 5, returnSequences: true }).apply(seq!, { initialState: [h!, c!] }) as tf.SymbolicTensor;
  await expectParity('lstm returnState + initialState', tf.model({ inputs: x, outputs: [next, h!, c!] }));
});

test('Embedding -> LSTM -> TimeDistributed(Dense softmax), ids as float input', async () => {
  const model = tf.sequential();
  model.add(tf.layers.embedding({ inputDim: 20, outputDim: 6, inputShape: [null] }));
  model.add(tf.layers.lstm({ units: 8, returnSequences: true }));
  model.add(tf.layers.dropout({ rate: 0.3 }));
  model.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 20, activation: 'softmax' }) }));
  await expectParity('embedding lstm timedistributed', model);
});

test('a functional model with int32 ids (Embedding -> GRU -> Dense) keeps int32 input', async () => {
  const ids = tf.input({ shape: [null], dtype: 'int32', name: 'ids' });
  const embedded = tf.layers.embedding({ inputDim: 15, outputDim: 6 }).apply(ids) as tf.SymbolicTensor;
  const encoded = tf.layers.gru({ units: 5 }).apply(embedded) as tf.SymbolicTensor;
  const model = tf.model({ inputs: ids, outputs: tf.layers.dense({ units: 3, name: 'scores' }).apply(encoded) as tf.SymbolicTensor });
  await expectParity('int32 ids gru', model);
  const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
  assert.deepEqual(graph.inputs.map((i) => [i.name, i.dtype, i.shape]), [['ids', 'int32', ['batch_size', 'sequence_length']]]);
  assert.deepEqual(graph.outputs.map((o) => [o.name, o.shape]), [['scores', ['batch_size', 3]]]);
  assert.ok(!graph.nodes.some((n) => n.opType === 'Loop' || n.opType === 'Scan'), 'recurrence is one GRU op, never a loop');
});

test('every supported Dense activation', async () => {
  for (const activation of SUPPORTED_ACTIVATIONS) {
    const model = sequence(6, tf.layers.dense({ units: 5, activation: activation as 'relu' }));
    await expectParity(`dense ${activation}`, model);
  }
});

test('norms, pooling and shape layers', async () => {
  const bn = tf.layers.batchNormalization({ epsilon: 0.01 });
  const bnModel = sequence(6, bn);
  bn.setWeights([tf.randomUniform([6], 0.5, 2), tf.randomNormal([6]), tf.randomNormal([6]), tf.randomUniform([6], 0.2, 3)]);
  await expectParity('batchnorm', bnModel);
  await expectParity('layernorm', sequence(6, tf.layers.dense({ units: 6 }), tf.layers.layerNormalization({ epsilon: 1e-5 })));
  await expectParity('global average', sequence(6, tf.layers.globalAveragePooling1d()));
  await expectParity('global max', sequence(6, tf.layers.globalMaxPooling1d()));
  await expectParity('permute', sequence(6, tf.layers.permute({ dims: [2, 1] })));
  const fixed = (...layers: tf.layers.Layer[]) => {
    const model = tf.sequential();
    model.add(tf.layers.inputLayer({ inputShape: [4, 6] }));
    layers.forEach((l) => model.add(l));
    return model;
  };
  await expectParity('flatten dense', fixed(tf.layers.flatten(), tf.layers.dense({ units: 3 })));
  await expectParity('reshape', fixed(tf.layers.reshape({ targetShape: [8, 3] })));
  await expectParity('reshape -1', fixed(tf.layers.reshape({ targetShape: [-1, 12] })));
  await expectParity('repeat vector', fixed(tf.layers.flatten(), tf.layers.repeatVector({ n: 3 })));
  await expectParity('advanced activations', fixed(tf.layers.reLU({ maxValue: 0.5 }), tf.layers.dense({ units: 4 }), tf.layers.leakyReLU({ alpha: 0.1 }), tf.layers.elu(), tf.layers.softmax({ axis: -1 })));
});

test('Conv1D (valid, same, strided, dilated) and 1-D pooling', async () => {
  await expectParity('conv1d valid relu', sequence(5, tf.layers.conv1d({ filters: 4, kernelSize: 3, activation: 'relu' })));
  await expectParity('conv1d same strided', sequence(5, tf.layers.conv1d({ filters: 3, kernelSize: 4, strides: 2, padding: 'same' })));
  await expectParity('conv1d dilated', sequence(5, tf.layers.conv1d({ filters: 3, kernelSize: 2, dilationRate: 2, useBias: false })));
  await expectParity('max pooling 1d', sequence(5, tf.layers.maxPooling1d({ poolSize: 2 })));
  await expectParity('average pooling 1d same', sequence(5, tf.layers.averagePooling1d({ poolSize: 3, strides: 2, padding: 'same' })));
  await expectParity('text cnn', sequence(5, tf.layers.conv1d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }), tf.layers.globalMaxPooling1d(), tf.layers.dense({ units: 2, activation: 'softmax' })));
});

test('opsets 18 and 21: reductions take axes as an input, GELU becomes one op', async () => {
  for (const opset of [18, 21]) {
    await expectParity(`global average opset ${opset}`, sequence(6, tf.layers.globalAveragePooling1d()), opset);
    await expectParity(`bidirectional ave opset ${opset}`, sequence(6, tf.layers.bidirectional({ layer: tf.layers.gru({ units: 3, returnSequences: true }) as tf.RNN, mergeMode: 'ave' })), opset);
    await expectParity(`dense gelu opset ${opset}`, sequence(6, tf.layers.dense({ units: 4, activation: 'gelu' as 'relu' }), tf.layers.dense({ units: 4, activation: 'gelu_new' as 'relu' })), opset);
  }
});

test('functional merges and a layer shared by two calls', async () => {
  const a = tf.input({ shape: [null, 5] });
  const b = tf.input({ shape: [null, 5] });
  const shared = tf.layers.dense({ units: 4, activation: 'tanh' });
  const sa = shared.apply(a) as tf.SymbolicTensor;
  const sb = shared.apply(b) as tf.SymbolicTensor;
  const outputs = [
    tf.layers.add().apply([sa, sb]),
    tf.layers.multiply().apply([sa, sb]),
    tf.layers.average().apply([sa, sb]),
    tf.layers.maximum().apply([sa, sb]),
    tf.layers.minimum().apply([sa, sb]),
    tf.layers.concatenate().apply([sa, sb]),
  ] as tf.SymbolicTensor[];
  const model = tf.model({ inputs: [a, b], outputs });
  await expectParity('merges', model);
  const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
  assert.equal(graph.initializers.filter((i) => i.name.endsWith('kernel')).length, 1, 'the shared kernel is stored once');
  assert.deepEqual(graph.inputs.map((i) => i.name), [a.name.split('/')[0], b.name.split('/')[0]].map((n) => n!));
});

test('every export above passes the ONNX checker with full shape inference', async () => {
  assert.ok(exported.length > 40);
  await checkModels(exported);
});
