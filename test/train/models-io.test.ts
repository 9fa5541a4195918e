import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, rm, readdir, truncate, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createModel, resolveModelConfig } from '../../src/train/models/index.ts';
import { fileSystemIO } from '../../src/train/tfjs-io.ts';
import { FerryError } from '../../src/errors.ts';

await tf.setBackend('cpu');

const root = await mkdtemp(path.join(tmpdir(), 'ferry-io-'));
after(() => rm(root, { recursive: true, force: true }));
const input = tf.tensor2d([[1, 5, 2, 7, 3]], [1, 5], 'int32');
const logitsOf = (model: tf.LayersModel) => Array.from((model.predict(input) as tf.Tensor).dataSync());

async function savedTinyModel(name: string, arch: 'lstm' | 'transformer', overrides: Record<string, unknown> = {}) {
  const model = createModel(resolveModelConfig({ arch, preset: 'tiny', overrides, vocabSize: 9 }));
  const dir = path.join(root, name);
  await model.save(fileSystemIO(dir));
  return { model, dir };
}

function ferryError(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof FerryError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

test('save writes model.json + one weights.bin, and loading gives identical logits', async () => {
  for (const [name, arch, overrides] of [
    ['lstm', 'lstm', {}], ['lstm-tied', 'lstm', { tieWeights: true, hiddenSize: 16 }],
    ['gpt', 'transformer', {}], ['gpt-sin-tied', 'transformer', { positional: 'sinusoidal', tieWeights: true }],
    ['gpt-rope', 'transformer', { positional: 'rope' }], ['gpt-alibi', 'transformer', { positional: 'alibi' }],
  ] as const) {
    const { model, dir } = await savedTinyModel(name, arch, overrides);
    assert.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin']);
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    assert.equal(json.format, 'layers-model');
    const bytes = (await readFile(path.join(dir, 'weights.bin'))).byteLength;
    assert.equal(bytes, model.countParams() * 4);
    const loaded = await tf.loadLayersModel(fileSystemIO(dir));
    assert.deepEqual(logitsOf(loaded), logitsOf(model), name);
    const viaJsonPath = await tf.loadLayersModel(fileSystemIO(path.join(dir, 'model.json')));
    assert.deepEqual(logitsOf(viaJsonPath), logitsOf(model), name);
  }
});

test('loads weights sharded over several files as tensorflowjs_converter writes them', async () => {
  const { model, dir } = await savedTinyModel('sharded', 'transformer');
  const weights = await readFile(path.join(dir, 'weights.bin'));
  const cut = 1000;
  await writeFile(path.join(dir, 'group1-shard1of2.bin'), weights.subarray(0, cut));
  await writeFile(path.join(dir, 'group1-shard2of2.bin'), weights.subarray(cut));
  await rm(path.join(dir, 'weights.bin'));
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  json.weightsManifest[0].paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  const loaded = await tf.loadLayersModel(fileSystemIO(dir));
  assert.deepEqual(logitsOf(loaded), logitsOf(model));
});

test('missing or malformed model.json and missing, short or long weight files are FerryErrors naming the file', async () => {
  await assert.rejects(tf.loadLayersModel(fileSystemIO(path.join(root, 'nowhere'))),
    ferryError('model_not_found', /nowhere\/model\.json: ENOENT/));

  const { dir } = await savedTinyModel('broken', 'lstm');
  const modelJson = path.join(dir, 'model.json');
  const good = await readFile(modelJson, 'utf8');
  await writeFile(modelJson, '{"modelTopology": ');
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)), ferryError('invalid_model_json', /model\.json is not valid JSON/));
  await writeFile(modelJson, '{"weightsManifest": []}');
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)), ferryError('invalid_model_json', /has no modelTopology/));
  await writeFile(modelJson, JSON.stringify({ ...JSON.parse(good), weightsManifest: [{ paths: 'weights.bin' }] }));
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)), ferryError('invalid_model_json', /no valid weightsManifest/));
  await writeFile(modelJson, JSON.stringify({ ...JSON.parse(good), weightsManifest: [{ ...JSON.parse(good).weightsManifest[0], paths: ['../lstm/weights.bin'] }] }));
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)), ferryError('invalid_model_json', /weight file "\.\.\/lstm\/weights\.bin", which is outside/));
  await writeFile(modelJson, good);

  const weights = path.join(dir, 'weights.bin');
  const size = (await readFile(weights)).byteLength;
  await appendFile(weights, new Uint8Array(8));
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)),
    ferryError('weights_size_mismatch', new RegExp(`broken/weights\\.bin \\(${size + 8} bytes\\) holds ${size + 8} bytes, but model\\.json's manifest describes ${size} bytes`)));
  await truncate(weights, size - 4);
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)), ferryError('weights_size_mismatch', new RegExp(`holds ${size - 4} bytes.*describes ${size} bytes`)));
  await rm(weights);
  await assert.rejects(tf.loadLayersModel(fileSystemIO(dir)), ferryError('weights_not_found', /broken\/weights\.bin: ENOENT/));
});
