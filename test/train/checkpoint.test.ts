import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, cp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { trainTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import { createModel, resolveModelConfig, type ModelConfig } from '../../src/train/models/index.ts';
import {
  inspectDir, loadCheckpoint, readCheckpointManifest, resolveCheckpointDir, saveCheckpoint, type TrainingInfo,
} from '../../src/train/checkpoint.ts';
import { FerryError } from '../../src/errors.ts';

await tf.setBackend('cpu');
const root = await mkdtemp(path.join(tmpdir(), 'ferry-checkpoint-'));
after(() => rm(root, { recursive: true, force: true }));

const tokenizer = await trainTokenizer('char', ['to be or not to be, that is the question']);
const training: TrainingInfo = { step: 12, corpusHash: 'sha256:abc', backend: 'cpu', seed: 1, valLoss: 2.5, seconds: 0.4, hyperparameters: { lr: 0.001 } };
const input = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
const logitsOf = (model: tf.LayersModel) => Array.from((model.predict(input) as tf.Tensor).dataSync());

function tiny(arch: 'lstm' | 'transformer', overrides: Record<string, unknown> = {}): { model: tf.LayersModel; config: ModelConfig } {
  const config = resolveModelConfig({ arch, preset: 'tiny', overrides, vocabSize: tokenizer.vocabSize });
  return { model: createModel(config), config };
}

function ferryError(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof FerryError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

const throwingTokenizer: Tokenizer = { ...tokenizer, kind: tokenizer.kind, vocabSize: tokenizer.vocabSize, toJSON: () => { throw new Error('disk full'); } };

test('a saved checkpoint loads back with identical logits, tokenizer, manifest and extra files', async () => {
  for (const [arch, overrides] of [['lstm', {}], ['transformer', { tieWeights: true, positional: 'sinusoidal' }]] as const) {
    const { model, config } = tiny(arch, overrides);
    const dir = path.join(root, `roundtrip-${arch}`);
    const written = await saveCheckpoint(dir, {
      model, tokenizer, manifest: { model: config, training },
      extraFiles: { 'optimizer.bin': new Uint8Array([1, 2, 3]), 'state.json': '{"step":12}' },
    });
    assert.deepEqual((await readdir(dir)).sort(), ['ferry.json', 'model.json', 'optimizer.bin', 'state.json', 'tokenizer.json', 'weights.bin']);
    const umask = process.umask();
    assert.equal((await stat(dir)).mode & 0o777, 0o777 & ~umask, 'the checkpoint dir gets the usual permissions');
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8')), {
      format: 'ferry-checkpoint', version: 1, model: config, tokenizer: { kind: 'char' }, training,
    });
    assert.deepEqual(written, await readCheckpointManifest(dir));
    const loaded = await loadCheckpoint(dir);
    assert.equal(loaded.dir, dir);
    assert.deepEqual(logitsOf(loaded.model), logitsOf(model));
    assert.deepEqual(loaded.manifest, written);
    assert.deepEqual(loaded.tokenizer.encode('not to be'), tokenizer.encode('not to be'));
    assert.deepEqual(await loaded.extraFiles.names(), ['optimizer.bin', 'state.json']);
    assert.deepEqual(Array.from(await loaded.extraFiles.read('optimizer.bin')), [1, 2, 3]);
    assert.equal(await loaded.extraFiles.readText('state.json'), '{"step":12}');
    assert.equal(await loaded.extraFiles.has('rng.json'), false);
    await assert.rejects(loaded.extraFiles.read('rng.json'), ferryError('checkpoint_file_missing', /has no readable rng\.json/));
  }
  assert.deepEqual((await readdir(root)).filter((name) => name.startsWith('.')), [], 'no temp dirs left');
});

test('saving over a checkpoint replaces it whole; a failure mid-save leaves the previous one intact', async () => {
  const dir = path.join(root, 'replace');
  const first = tiny('transformer');
  await saveCheckpoint(dir, { model: first.model, tokenizer, manifest: { model: first.config, training }, extraFiles: { 'old.bin': 'x' } });
  const second = tiny('transformer');
  await saveCheckpoint(dir, { model: second.model, tokenizer, manifest: { model: second.config, training: { ...training, step: 24 } } });
  assert.equal((await readdir(dir)).includes('old.bin'), false);
  assert.equal((await readCheckpointManifest(dir)).training.step, 24);
  assert.deepEqual(logitsOf((await loadCheckpoint(dir)).model), logitsOf(second.model));

  const third = tiny('transformer');
  await assert.rejects(saveCheckpoint(dir, { model: third.model, tokenizer: throwingTokenizer, manifest: { model: third.config, training: { ...training, step: 36 } } }), /disk full/);
  assert.equal((await readCheckpointManifest(dir)).training.step, 24);
  assert.deepEqual(logitsOf((await loadCheckpoint(dir)).model), logitsOf(second.model));
  assert.deepEqual((await readdir(root)).filter((name) => name.startsWith('.')), []);
});

test('a failed first save leaves no directory at all', async () => {
  const dir = path.join(root, 'never');
  const { model, config } = tiny('lstm');
  await assert.rejects(saveCheckpoint(dir, { model, tokenizer: throwingTokenizer, manifest: { model: config, training } }), /disk full/);
  assert.equal(await inspectDir(dir), 'missing');
  await assert.rejects(saveCheckpoint(dir, { model, tokenizer, manifest: { model: config, training }, extraFiles: { '../escape': 'x' } }),
    ferryError('invalid_checkpoint_file', /"\.\.\/escape" cannot be an extra checkpoint file/));
  await assert.rejects(saveCheckpoint(dir, { model, tokenizer, manifest: { model: { ...config, vocabSize: 99 }, training } }),
    ferryError('inconsistent_checkpoint', new RegExp(`tokenizer has ${tokenizer.vocabSize} tokens but the model config says 99`)));
  assert.equal(await inspectDir(dir), 'missing');
  assert.deepEqual((await readdir(root)).filter((name) => name.startsWith('.')), []);
});

test('a save killed between its two renames is repaired by the next save', async () => {
  const dir = path.join(root, 'crashed');
  const { model, config } = tiny('lstm');
  await saveCheckpoint(dir, { model, tokenizer, manifest: { model: config, training } });
  await cp(dir, path.join(root, '.crashed.tmp-half'), { recursive: true });
  await rm(path.join(root, '.crashed.tmp-half', 'ferry.json'));
  await cp(dir, path.join(root, '.crashed.old-1-1'), { recursive: true });
  await rm(dir, { recursive: true });
  await assert.rejects(saveCheckpoint(dir, { model, tokenizer: throwingTokenizer, manifest: { model: config, training } }), /disk full/);
  assert.equal(await inspectDir(dir), 'checkpoint', 'the moved-aside checkpoint is restored');
  assert.deepEqual(logitsOf((await loadCheckpoint(dir)).model), logitsOf(model));
  assert.deepEqual((await readdir(root)).filter((name) => name.startsWith('.')), []);
});

test('a directory that is not a checkpoint is never overwritten', async () => {
  const dir = path.join(root, 'precious');
  await mkdir(dir);
  await writeFile(path.join(dir, 'thesis.txt'), 'do not delete');
  const { model, config } = tiny('lstm');
  await assert.rejects(saveCheckpoint(dir, { model, tokenizer, manifest: { model: config, training } }),
    ferryError('not_a_checkpoint', /precious exists and is not a ferry checkpoint/));
  assert.deepEqual(await readdir(dir), ['thesis.txt']);
  await writeFile(path.join(root, 'a-file'), 'x');
  await assert.rejects(saveCheckpoint(path.join(root, 'a-file'), { model, tokenizer, manifest: { model: config, training } }), ferryError('not_a_checkpoint', /a-file exists/));
  const empty = path.join(root, 'empty');
  await mkdir(empty);
  await saveCheckpoint(empty, { model, tokenizer, manifest: { model: config, training } });
  assert.equal(await inspectDir(empty), 'checkpoint');
});

test('a run dir resolves to best/, or last/ when asked or when best/ does not exist yet', async () => {
  const run = path.join(root, 'run');
  const best = tiny('transformer');
  const last = tiny('transformer');
  await saveCheckpoint(path.join(run, 'last'), { model: last.model, tokenizer, manifest: { model: last.config, training: { ...training, step: 30 } } });
  assert.equal(await inspectDir(run), 'run');
  assert.equal(await resolveCheckpointDir(run), path.join(run, 'last'));
  await saveCheckpoint(path.join(run, 'best'), { model: best.model, tokenizer, manifest: { model: best.config, training: { ...training, step: 20 } } });
  await writeFile(path.join(run, 'metrics.jsonl'), '');
  const loadedBest = await loadCheckpoint(run);
  assert.equal(loadedBest.dir, path.join(run, 'best'));
  assert.equal(loadedBest.manifest.training.step, 20);
  assert.deepEqual(logitsOf(loadedBest.model), logitsOf(best.model));
  const loadedLast = await loadCheckpoint(run, { which: 'last' });
  assert.equal(loadedLast.manifest.training.step, 30);
  assert.deepEqual(logitsOf(loadedLast.model), logitsOf(last.model));
  await assert.rejects(saveCheckpoint(run, { model: best.model, tokenizer, manifest: { model: best.config, training } }), ferryError('not_a_checkpoint', /is not a ferry checkpoint/));
});

test('loading a missing, foreign or damaged checkpoint is a FerryError naming the problem', async () => {
  await assert.rejects(loadCheckpoint(path.join(root, 'nothing-here')), ferryError('checkpoint_not_found', /nothing-here: it does not exist/));
  const plain = path.join(root, 'plain');
  await mkdir(plain);
  await writeFile(path.join(plain, 'notes.txt'), 'hi');
  await assert.rejects(loadCheckpoint(plain), ferryError('not_a_checkpoint', /plain is not a ferry checkpoint \(it has no ferry\.json\)/));

  const dir = path.join(root, 'damaged');
  const { model, config } = tiny('lstm');
  await saveCheckpoint(dir, { model, tokenizer, manifest: { model: config, training } });
  const ferryJson = path.join(dir, 'ferry.json');
  const good = JSON.parse(await readFile(ferryJson, 'utf8'));
  const withJson = async (json: unknown) => writeFile(ferryJson, typeof json === 'string' ? json : JSON.stringify(json));
  await withJson('{ not json');
  await assert.rejects(loadCheckpoint(dir), ferryError('invalid_checkpoint', /ferry\.json is not readable JSON/));
  await withJson({ ...good, version: 7 });
  await assert.rejects(loadCheckpoint(dir), ferryError('unsupported_checkpoint_version', /has version 7; this ferry reads version 1/));
  await withJson({ ...good, format: 'ferry-onnx' });
  await assert.rejects(loadCheckpoint(dir), ferryError('invalid_checkpoint', /format is "ferry-onnx", not "ferry-checkpoint"/));
  await withJson({ ...good, model: { ...good.model, hiddenSize: -1 } });
  await assert.rejects(loadCheckpoint(dir), ferryError('invalid_checkpoint', /model: Invalid model config: hiddenSize must be a positive integer/));
  await withJson({ ...good, model: { ...good.model, vocabSize: good.model.vocabSize + 1 } });
  await assert.rejects(loadCheckpoint(dir), ferryError('inconsistent_checkpoint', /tokenizer has \d+ tokens but the model config says \d+; the model outputs/));
  await withJson(good);
  await rm(path.join(dir, 'tokenizer.json'));
  await assert.rejects(loadCheckpoint(dir), (error: unknown) => error instanceof FerryError && /tokenizer\.json/.test(error.message));
});
