/**
 * `ferry export` on foreign layers models that used to crash or be refused for the wrong reason:
 * each failure is one FerryError line (no stack trace unless --verbose) and leaves no output dir;
 * an unknown custom class is refused by name until a --plugin converts it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { fileSystemIO } from '../../src/train/tfjs-io.ts';
import { tempDir } from './fixtures.ts';
import { seedWeights } from './parity.ts';

const BIN = path.resolve('bin/ferry.js');
const PLUGIN = path.resolve('test/export/plugins/pixel-shuffle.mjs');

interface Run { code: number; stdout: string; stderr: string }

async function ferryExport(source: string, ...flags: string[]): Promise<Run & { parent: string; out: string }> {
  const parent = await tempDir();
  const out = path.join(parent, 'pkg');
  const result = await promisify(execFile)(process.execPath, [BIN, 'export', source, '--out', out, ...flags], { maxBuffer: 1 << 24 })
    .then((r) => ({ code: 0, ...r }), (e: Run) => e);
  return { ...result, parent, out };
}

/** One `ferry:` line and its hint, no trace, no package dir. */
async function expectOneLineFailure(run: Run & { parent: string }, message: RegExp): Promise<void> {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  assert.ok(run.stderr.split('\n').filter((l) => l.startsWith('ferry:')).length === 1, run.stderr);
  assert.ok(run.stderr.length < 2000, `${run.stderr.length} bytes of stderr`);
  assert.deepEqual(await readdir(run.parent), [], 'no output dir left behind');
}

async function saved(model: tf.LayersModel): Promise<string> {
  const dir = await tempDir();
  await model.save(fileSystemIO(dir));
  return path.join(dir, 'model.json');
}

test('Conv1D with dilation and a free time axis exports (valid and same padding) and verifies at lengths past its receptive field', async () => {
  for (const padding of ['valid', 'same'] as const) {
    const model = tf.sequential();
    model.add(tf.layers.inputLayer({ inputShape: [null, 4] }));
    model.add(tf.layers.conv1d({ filters: 3, kernelSize: 3, dilationRate: 2, padding }));
    model.add(tf.layers.conv1d({ filters: 2, kernelSize: 3, dilationRate: 4, padding, activation: 'relu' }));
    const run = await ferryExport(await saved(seedWeights(model, 3)));
    assert.equal(run.code, 0, run.stderr);
    const lengths = [...run.stdout.matchAll(/batch 1, (\d+)x4/g)].map((m) => Number(m[1]));
    assert.equal(lengths.length, 2, run.stdout);
    if (padding === 'valid') assert.ok(lengths.every((n) => n >= 1 + 2 * 2 + 2 * 4), `lengths ${lengths} cover the receptive field 13`);
    const manifest = JSON.parse(await readFile(path.join(run.out, 'ferry.json'), 'utf8'));
    assert.deepEqual(manifest.inputs[0].shape, ['batch_size', 'sequence_length', 4]);
  }
});

/** Conv2D then the plugin's PixelShuffle (registered in this process only: the CLI does not know it). */
async function pixelShuffleModel(): Promise<string> {
  const { tfjsLayers } = (await import(PLUGIN)) as { tfjsLayers: (t: typeof tf) => (typeof tf.layers.Layer)[] };
  const [PixelShuffle] = tfjsLayers(tf);
  tf.serialization.registerClass(PixelShuffle as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);
  const x = tf.input({ shape: [null, null, 3] });
  const features = tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  const up = new (PixelShuffle as unknown as new (c: object) => tf.layers.Layer)({ scale: 2, name: 'shuffle' }).apply(features) as tf.SymbolicTensor;
  return saved(seedWeights(tf.model({ inputs: x, outputs: up }), 11));
}

test('a custom class tfjs does not know is refused by name with how to add a converter; --plugin converts it', async () => {
  const source = await pixelShuffleModel();

  const refused = await ferryExport(source);
  await expectOneLineFailure(refused, /ferry: layer shuffle uses the custom class PixelShuffle, which neither tfjs nor ferry knows\n {2}.*--plugin \.\/my-converters\.js/);

  const converted = await ferryExport(source, '--plugin', PLUGIN);
  assert.equal(converted.code, 0, converted.stderr);
  assert.match(converted.stdout, /shuffle, batch 3, 9x10x3\s+max \|diff\| \d\.\d\de-\d+/);

  const missing = await ferryExport(source, '--plugin', './no-such-plugin.mjs');
  await expectOneLineFailure(missing, /ferry: --plugin \.\/no-such-plugin\.mjs: no such file/);
});

test('a failure ferry did not foresee is one line, and the trace comes with --verbose', async () => {
  const dir = await tempDir();
  const broken = path.join(dir, 'broken.mjs');
  await writeFile(broken, `export { tfjsLayers } from ${JSON.stringify(PLUGIN)};\nexport const converters = { PixelShuffle: () => { throw new TypeError('cannot read the scale'); } };\n`);
  const source = await pixelShuffleModel();
  const quiet = await ferryExport(source, '--plugin', broken);
  await expectOneLineFailure(quiet, /ferry: export failed: cannot read the scale\n {2}.*--verbose/);
  const verbose = await ferryExport(source, '--plugin', broken, '--verbose');
  assert.equal(verbose.code, 1);
  assert.match(verbose.stderr, /TypeError: cannot read the scale\n\s+at /, 'the trace with --verbose');
});
