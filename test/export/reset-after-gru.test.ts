/**
 * Keras 2's GRU default, reset_after: true, which tfjs refuses to build. A model.json as
 * tensorflowjs_converter writes it from Keras (snake_case config, `gru/gru_cell/*` weights)
 * exports; its ONNX GRU is checked against a hand-written reference of the Keras formula, and
 * export verification runs against ferry's tfjs version of the layer.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../src/export/index.ts';
import type { ParityReport } from '../../src/export/verify.ts';
import { mulberry32 } from '../../src/random.ts';
import { tempDir } from './fixtures.ts';

const UNITS = 4;
const FEATURES = 3;

function gruConfig(name: string, extra: Record<string, unknown>) {
  return {
    name, trainable: true, dtype: 'float32', return_state: false, go_backwards: false, stateful: false, unroll: false, time_major: false,
    units: UNITS, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true,
    kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
    recurrent_initializer: { class_name: 'Orthogonal', config: { gain: 1, seed: null } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null, recurrent_regularizer: null, bias_regularizer: null, activity_regularizer: null,
    kernel_constraint: null, recurrent_constraint: null, bias_constraint: null, dropout: 0, recurrent_dropout: 0, implementation: 2, reset_after: true,
    ...extra,
  };
}

interface Weights { kernel: Float32Array; recurrent: Float32Array; bias: Float32Array }

function seeded(seed: number): Weights {
  const random = mulberry32(seed);
  const values = (n: number) => Float32Array.from({ length: n }, () => random() * 1.2 - 0.6);
  return { kernel: values(FEATURES * 3 * UNITS), recurrent: values(UNITS * 3 * UNITS), bias: values(2 * 3 * UNITS) };
}

/** A Keras-converted model.json and its weights file; `layer` is the recurrent layer's JSON. */
async function kerasModel(layer: Record<string, unknown>, manifest: { name: string; shape: number[] }[], data: Float32Array[]): Promise<string> {
  const dir = await tempDir();
  const json = {
    format: 'layers-model', generatedBy: 'keras v2.13.1', convertedBy: 'TensorFlow.js Converter v4.11.0',
    modelTopology: {
      keras_version: '2.13.1', backend: 'tensorflow',
      model_config: { class_name: 'Sequential', config: { name: 'sequential', layers: [
        { class_name: 'InputLayer', config: { batch_input_shape: [null, null, FEATURES], dtype: 'float32', sparse: false, ragged: false, name: 'input_1' } },
        layer,
      ] } },
    },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: manifest.map((w) => ({ ...w, dtype: 'float32' })) }],
  };
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  const bytes = new Uint8Array(data.reduce((n, d) => n + d.byteLength, 0));
  let offset = 0;
  for (const d of data) {
    bytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), offset);
    offset += d.byteLength;
  }
  await writeFile(path.join(dir, 'group1-shard1of1.bin'), bytes);
  return path.join(dir, 'model.json');
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Keras's reset_after GRU, step by step in plain loops: every output step, [B, T, H]. */
function referenceGru(w: Weights, x: number[][][]): number[][][] {
  const width = 3 * UNITS;
  return x.map((row) => {
    let h = new Array<number>(UNITS).fill(0);
    return row.map((step) => {
      const xm = Array.from({ length: width }, (_, j) => step.reduce((s, v, i) => s + v * w.kernel[i * width + j]!, w.bias[j]!));
      const hm = Array.from({ length: width }, (_, j) => h.reduce((s, v, i) => s + v * w.recurrent[i * width + j]!, w.bias[width + j]!));
      h = h.map((previous, u) => {
        const z = sigmoid(xm[u]! + hm[u]!);
        const r = sigmoid(xm[UNITS + u]! + hm[UNITS + u]!);
        const candidate = Math.tanh(xm[2 * UNITS + u]! + r * hm[2 * UNITS + u]!);
        return z * previous + (1 - z) * candidate;
      });
      return h;
    });
  });
}

test('a reset_after GRU exports (ONNX linear_before_reset) and matches the Keras formula and ferry\'s tfjs version', async () => {
  const w = seeded(5);
  const source = await kerasModel(
    { class_name: 'GRU', config: gruConfig('gru', { return_sequences: true }) },
    [{ name: 'gru/gru_cell/kernel', shape: [FEATURES, 3 * UNITS] }, { name: 'gru/gru_cell/recurrent_kernel', shape: [UNITS, 3 * UNITS] }, { name: 'gru/gru_cell/bias', shape: [2, 3 * UNITS] }],
    [w.kernel, w.recurrent, w.bias],
  );
  const lines: string[] = [];
  const outDir = path.join(path.dirname(source), 'pkg');
  const report = await exportModel({ source, outDir, log: (line) => lines.push(line) });
  assert.ok((report.parity.fp32 as ParityReport).maxRelativeDiff <= 1e-4);
  assert.ok(lines.some((l) => /layer gru: a GRU with reset_after .*which tfjs cannot run/.test(l)), lines.join('\n'));

  const random = mulberry32(9);
  const x = Array.from({ length: 2 }, () => Array.from({ length: 6 }, () => Array.from({ length: FEATURES }, () => random() * 2 - 1)));
  const session = await ort.InferenceSession.create(path.join(outDir, 'onnx/model.onnx'));
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(x.flat(2)), [2, 6, FEATURES]) });
  const actual = out[session.outputNames[0]!]!.data as Float32Array;
  const expected = referenceGru(w, x).flat(2);
  assert.equal(actual.length, expected.length);
  const worst = Math.max(...expected.map((v, i) => Math.abs(v - actual[i]!)));
  assert.ok(worst <= 1e-5, `ONNX vs the hand-written reference: max |diff| ${worst}`);
  await session.release();
});

test('a Bidirectional reset_after GRU exports and verifies', async () => {
  const [forward, backward] = [seeded(6), seeded(7)];
  const inner = { class_name: 'GRU', config: gruConfig('gru', { return_sequences: false }) };
  const shapes = (direction: string) => [
    { name: `bidirectional/${direction}_gru/gru_cell/kernel`, shape: [FEATURES, 3 * UNITS] },
    { name: `bidirectional/${direction}_gru/gru_cell/recurrent_kernel`, shape: [UNITS, 3 * UNITS] },
    { name: `bidirectional/${direction}_gru/gru_cell/bias`, shape: [2, 3 * UNITS] },
  ];
  const source = await kerasModel(
    { class_name: 'Bidirectional', config: { name: 'bidirectional', trainable: true, dtype: 'float32', layer: inner, merge_mode: 'concat' } },
    [...shapes('forward'), ...shapes('backward')],
    [forward.kernel, forward.recurrent, forward.bias, backward.kernel, backward.recurrent, backward.bias],
  );
  const report = await exportModel({ source, outDir: path.join(path.dirname(source), 'pkg') });
  assert.ok((report.parity.fp32 as ParityReport).maxRelativeDiff <= 1e-4);
});
