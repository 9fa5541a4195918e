/**
 * Keras masks through the recurrent layers: Embedding(maskZero) and Masking before LSTM, GRU,
 * SimpleRNN and Bidirectional. Verification's random ids hold zeros anywhere (padding inside a
 * row too); the explicit cases pad rows on the left and on the right, and one row is all padding.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { convertModel } from '../../src/export/convert.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { checkModels } from './checker.ts';
import { expectParity, exported, seedWeights } from './parity.ts';

const VOCAB = 6;

function textModel(seed: number, ...layers: tf.layers.Layer[]): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.embedding({ inputDim: VOCAB, outputDim: 4, maskZero: true, inputShape: [null] }));
  for (const layer of layers) model.add(layer);
  return seedWeights(model, seed);
}

/** Rows of one length: real ids (1..VOCAB-1) with zeros on the left, on the right, and a row of zeros only. */
const PADDED = [
  [3, 1, 4, 1, 5, 2, 2],
  [0, 0, 0, 3, 1, 4, 1],
  [3, 1, 4, 1, 0, 0, 0],
  [0, 0, 0, 0, 0, 0, 0],
  [0, 2, 0, 5, 0, 0, 1],
];

async function expectPaddedRowsMatch(name: string, model: tf.LayersModel): Promise<void> {
  const { graph } = convertModel(model, { opset: 17, target: 'cpu', name });
  const session = await ort.InferenceSession.create(serializeModel(graph));
  const dims = [PADDED.length, PADDED[0]!.length];
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(PADDED.flat()), dims) });
  const expected = tf.tidy(() => (model.predict(tf.tensor2d(PADDED)) as tf.Tensor).arraySync() as number[][]);
  const actual = out[session.outputNames[0]!]!;
  const flat = (expected as unknown as number[]).flat(3) as number[];
  const data = actual.data as Float32Array;
  assert.equal(data.length, flat.length);
  let worst = 0;
  for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(data[i]! - flat[i]!));
  assert.ok(worst <= 1e-4, `${name}: padded rows max |diff| ${worst}`);
  await session.release();
}

const cases: [string, () => tf.layers.Layer[]][] = [
  ['lstm last', () => [tf.layers.lstm({ units: 5 })]],
  ['lstm sequences', () => [tf.layers.lstm({ units: 5, returnSequences: true })]],
  ['lstm goBackwards sequences', () => [tf.layers.lstm({ units: 4, goBackwards: true, returnSequences: true })]],
  ['gru sequences then gru last', () => [tf.layers.gru({ units: 4, returnSequences: true }), tf.layers.gru({ units: 3 })]],
  ['simpleRNN sequences, dense on every step', () => [tf.layers.simpleRNN({ units: 4, returnSequences: true }), tf.layers.dense({ units: 2 })]],
  ['bidirectional lstm concat sequences', () => [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3, returnSequences: true }) as tf.RNN })]],
  ['bidirectional gru sum last', () => [tf.layers.bidirectional({ layer: tf.layers.gru({ units: 3 }) as tf.RNN, mergeMode: 'sum' })]],
  ['bidirectional lstm then lstm', () => [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3, returnSequences: true }) as tf.RNN, mergeMode: 'ave' }), tf.layers.lstm({ units: 2 })]],
];
cases.forEach(([name, layers], i) => {
  test(`maskZero: ${name}`, async () => {
    const model = textModel(100 + i, ...layers());
    await expectParity(`mask ${name}`, model);
    await expectPaddedRowsMatch(name, model);
  });
});

test('a left-padded row gives what the row alone gives (no padding)', async () => {
  const model = textModel(7, tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) as tf.RNN }));
  const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
  const session = await ort.InferenceSession.create(serializeModel(graph));
  const run = async (row: number[]) => (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(row), [1, row.length]) }))[session.outputNames[0]!]!.data as Float32Array;
  const alone = await run([3, 1, 4, 1]);
  for (const padded of [[0, 0, 3, 1, 4, 1], [3, 1, 4, 1, 0, 0]]) {
    const y = await run(padded);
    assert.ok(y.every((v, i) => Math.abs(v - alone[i]!) <= 1e-5), `${padded}: ${y} vs ${alone}`);
  }
  await session.release();
});

test('Masking layer (maskValue) before an LSTM and a GRU', async () => {
  for (const [name, rnn] of [['lstm', tf.layers.lstm({ units: 4, returnSequences: true })], ['gru', tf.layers.gru({ units: 3 })]] as const) {
    const model = tf.sequential();
    model.add(tf.layers.masking({ maskValue: 0.5, inputShape: [null, 3] }));
    model.add(rnn);
    await expectParity(`masking ${name}`, seedWeights(model, 31));
    // Rows whose steps equal maskValue everywhere: on the left, on the right, and inside.
    const x = tf.tensor3d([[[0.5, 0.5, 0.5], [1, 2, 3], [0.1, 0.5, 0.2]], [[1, 2, 3], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], [[0.3, 0.1, 0.5], [0.5, 0.5, 0.5], [-1, 0, 1]]]);
    const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
    const session = await ort.InferenceSession.create(serializeModel(graph));
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
    const expected = (model.predict(x) as tf.Tensor).dataSync();
    const actual = out[session.outputNames[0]!]!.data as Float32Array;
    assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) <= 1e-4), `masking ${name}: ${actual} vs ${expected}`);
    await session.release();
  }
});

test('the masked exports pass the ONNX checker', async () => {
  await checkModels(exported);
});
