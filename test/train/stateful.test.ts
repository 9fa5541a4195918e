/**
 * Stateful LSTM training (--stateful): consecutive windows per stream, the state carried across
 * steps exactly as one long run would carry it, and a resumed run identical to an uninterrupted one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../src/errors.ts';
import { createModel, resolveModelConfig, type LstmConfig } from '../../src/train/models/index.ts';
import { statefulBatch, statefulForward } from '../../src/train/stateful.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { collectingReporter, tempDir, tinyRunOptions, writePatternCorpus } from './trainer-helpers.ts';

const tokens = { length: 1001, slice: (a: number, b: number) => Int32Array.from({ length: Math.min(b, 1001) - a }, (_, i) => a + i) };

test('stateful batches read consecutive windows of batchSize streams and start again from zero after the last', () => {
  const shape = { blockSize: 10, batchSize: 4 };
  // Streams of 250 tokens hold 25 windows.
  const first = statefulBatch(tokens as never, shape, 0);
  const second = statefulBatch(tokens as never, shape, 1);
  assert.equal(first.reset, true);
  assert.equal(second.reset, false);
  for (let row = 0; row < 4; row++) {
    assert.equal(first.inputs[row * 10], row * 250);
    assert.equal(second.inputs[row * 10], first.targets[row * 10 + 9], `row ${row} goes on where it stopped`);
  }
  assert.deepEqual(statefulBatch(tokens as never, shape, 25), first);
  assert.throws(() => statefulBatch(tokens as never, { blockSize: 300, batchSize: 4 }, 0), (e: unknown) => e instanceof FerryError && /streams of 250, shorter than one window of 300/.test(e.message));
});

test('the stateful forward pass equals the model from a zero state, and two windows with the carried state equal one long run', async () => {
  await tf.setBackend('cpu');
  for (const tieWeights of [false, true]) {
    const config = resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: { numLayers: 2, hiddenSize: 16, tieWeights }, vocabSize: 11 }) as LstmConfig;
    const model = createModel(config, { seed: 3 });
    const ids = [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]];
    const zeros = Array.from({ length: 4 }, () => tf.zeros([2, 16]) as tf.Tensor2D);
    const whole = (model.predict(tf.tensor2d(ids, [2, 8], 'int32')) as tf.Tensor).arraySync() as number[][][];
    const first = statefulForward(model, config, tf.tensor2d(ids.map((r) => r.slice(0, 4)), [2, 4], 'int32'), zeros, false);
    const second = statefulForward(model, config, tf.tensor2d(ids.map((r) => r.slice(4)), [2, 4], 'int32'), first.states, false);
    const halves = [first.logits.arraySync() as number[][][], second.logits.arraySync() as number[][][]];
    let worst = 0;
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 8; t++) {
        const row = halves[t < 4 ? 0 : 1]![b]![t % 4]!;
        row.forEach((x, v) => (worst = Math.max(worst, Math.abs(x - whole[b]![t]![v]!))));
      }
    }
    assert.ok(worst < 1e-5, `tied ${tieWeights}: carried state vs one run ${worst}`);
    model.dispose();
  }
});

function options(dir: string, corpus: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return tinyRunOptions(dir, corpus, { steps: 12, batchSize: 4, lr: 3e-2, warmupSteps: 2, evalInterval: 4, evalIters: 2, logInterval: 2, seed: 7, stateful: true }, {
    arch: 'lstm', model: {}, ...overrides,
  });
}

test('a stateful LSTM run resumes exactly: the carried state is in state.json, and the losses equal an uninterrupted run', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 120, 'the cat sat on a mat\n');
  const whole = await train(options(dir, corpus, { out: join(dir, 'whole') }));
  const stateless = await train(options(dir, corpus, { out: join(dir, 'stateless'), hyperparameters: { stateful: false } }));
  assert.notDeepEqual(whole.losses, stateless.losses);
  assert.ok(whole.losses[11]! < whole.losses[0]!, `stateful training learns (${whole.losses[0]} -> ${whole.losses[11]})`);

  const controller = new AbortController();
  const interrupted = await train(options(dir, corpus, {
    out: join(dir, 'split'), signal: controller.signal, reporter: collectingReporter((step) => step === 6 && controller.abort()),
  }));
  assert.equal(interrupted.step, 6);
  const saved = JSON.parse(readFileSync(join(dir, 'split', 'last', 'state.json'), 'utf8'));
  assert.equal(saved.hyperparameters.stateful, true);
  assert.equal(saved.carriedState.length, 2, 'h and c of the one layer');
  assert.equal(saved.carriedState[0].length, 4 * 32);
  assert.ok(saved.carriedState[0].some((x: number) => x !== 0));
  const resumed = await train({ out: join(dir, 'split'), resume: true, cacheDir: join(dir, 'cache'), reporter: collectingReporter() });
  assert.deepEqual([...interrupted.losses, ...resumed.losses], whole.losses);
  assert.equal(resumed.lastValLoss, whole.lastValLoss);
  await assert.rejects(train({ out: join(dir, 'split'), resume: true, cacheDir: join(dir, 'cache'), hyperparameters: { stateful: false, steps: 14 }, reporter: collectingReporter() }),
    (e: unknown) => e instanceof FerryError && /cannot resume a stateful run without --stateful/.test(e.message));
});

test('--stateful is refused for a Transformer and with several threads', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir);
  await assert.rejects(train(options(dir, corpus, { arch: 'transformer', out: join(dir, 'a') })), (e: unknown) => e instanceof FerryError && /this is a transformer/.test(e.message));
  await assert.rejects(train(options(dir, corpus, { threads: 2, out: join(dir, 'b') })), (e: unknown) => e instanceof FerryError && /one thread, not --threads 2/.test(e.message));
});
