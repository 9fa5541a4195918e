import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../src/errors.ts';
import { selectBackend } from '../../src/train/backend.ts';
import { createModel, resolveModelConfig, type ModelConfig } from '../../src/train/models/index.ts';
import { createStepGradients, type StepGradients } from '../../src/train/parallel/gradients.ts';
import { splitRows } from '../../src/train/parallel/shard.ts';
import { measureIdleCores, MIN_PARALLEL_FLOPS, planThreads } from '../../src/train/parallel/threads.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { collectingReporter, tempDir, TINY_TRANSFORMER, tinyRunOptions, writePatternCorpus } from './trainer-helpers.ts';

test('rows are split as evenly as possible, larger shares last (the main thread has more to do), never into empty shares', () => {
  assert.deepEqual(splitRows(12, 2), [6, 6]);
  assert.deepEqual(splitRows(7, 2), [3, 4]);
  assert.deepEqual(splitRows(5, 3), [1, 2, 2]);
  assert.deepEqual(splitRows(13, 4), [3, 3, 3, 4]);
  assert.deepEqual(splitRows(1, 2), [1]);
  assert.deepEqual(splitRows(3, 1), [3]);
});

test('thread plan: auto takes a second core on wasm for big steps when 2 cores are idle; requests are capped by rows and refused when not whole', async () => {
  const idle = (cores: number) => async () => cores;
  const big = { backend: 'wasm', flopsPerStep: MIN_PARALLEL_FLOPS, batchSize: 12, cores: 2, idleCores: idle(1.9) };
  const plan = (overrides: Partial<Parameters<typeof planThreads>[0]>) => planThreads({ ...big, requested: undefined, ...overrides });
  assert.deepEqual(await plan({}), { threads: 2, note: 'threads: 2, each computing part of every batch (--threads 1 for one)' });
  assert.deepEqual(await plan({ idleCores: idle(1.2) }), {
    threads: 1,
    note: 'threads: 1, as other processes keep the cores busy (1.2 of 2 idle; --threads 2 to share anyway)',
  });
  assert.equal((await plan({ requested: 2, idleCores: idle(0) })).threads, 2);
  assert.equal((await plan({ cores: 1 })).threads, 1);
  assert.equal((await plan({ batchSize: 1 })).threads, 1);
  assert.equal((await plan({ flopsPerStep: MIN_PARALLEL_FLOPS / 2 })).threads, 1);
  assert.equal((await plan({ backend: 'cpu' })).threads, 1);
  assert.equal((await plan({ requested: 3, backend: 'cpu' })).threads, 3);
  assert.match((await plan({ requested: 3 })).note!, /--threads 3 on 2 cores/);
  assert.deepEqual(await plan({ requested: 4, batchSize: 3 }), { threads: 3, note: 'note: 3 threads, one per row of the batch (--batch-size 3)' });
  const native = await plan({ requested: 2, backend: 'tfjs-node' });
  assert.equal(native.threads, 1);
  assert.match(native.note!, /applies to the wasm and cpu backends; tfjs-node runs its own threads/);
  for (const bad of [0, 1.5, -2]) {
    await assert.rejects(plan({ requested: bad }), (error: unknown) => error instanceof FerryError && error.code === 'INVALID_OPTION');
  }
  const measured = await measureIdleCores(50);
  assert.ok(measured >= 0 && measured <= availableParallelism() + 1e-9, `idle cores ${measured}`);
});

/** A small model on wasm, its trained variables, and a batch of `rows` rows. */
async function fixture(rows: number, overrides: Partial<ModelConfig> = {}) {
  await selectBackend('wasm');
  const config = resolveModelConfig({ arch: 'transformer', preset: 'nanogpt-cpu', overrides: { nLayer: 1, nHead: 2, nEmbd: 16, blockSize: 8, ...overrides }, vocabSize: 11 });
  const model = createModel(config);
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const ids = (salt: number) => Int32Array.from({ length: rows * config.blockSize }, (_, i) => (i * 7 + salt * 3) % config.vocabSize);
  return { config, model, variables, batch: { inputs: ids(1), targets: ids(2), rows } };
}

test('3 threads on 5 rows (shares 1, 2, 2) give the loss and gradients of one thread within 1e-5', async () => {
  const { config, model, variables, batch } = await fixture(5);
  const one = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 1 });
  const three = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 3 });
  try {
    const tensorCounts: number[] = [];
    for (const seed of [1, 2, 3]) {
      const a = await one.compute(batch, seed);
      const b = await three.compute(batch, seed);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * a.loss, `loss ${a.loss} vs ${b.loss}`);
      a.grads.forEach((grad, index) => {
        const x = grad.dataSync();
        const y = b.grads[index]!.dataSync();
        const scale = Math.max(...Array.from(x, Math.abs));
        const worst = Math.max(...Array.from(x, (value, i) => Math.abs(value - y[i]!)));
        assert.ok(worst <= 1e-5 * scale, `${variables[index]!.name}: off by ${worst} at scale ${scale}`);
      });
      tf.dispose([...a.grads, ...b.grads]);
      tensorCounts.push(tf.memory().numTensors);
      // The workers follow the main thread's weights: change them and compare again.
      tf.tidy(() => variables.forEach((variable) => variable.assign(tf.mul(variable, 0.9))));
    }
    assert.equal(new Set(tensorCounts).size, 1, `tensors after each step: ${tensorCounts.join(', ')}`);
  } finally {
    await three.close();
    model.dispose();
  }
});

test('a worker whose model differs, one that fails a step and one that dies become FerryErrors, never a hang', async () => {
  const { config, model, variables, batch } = await fixture(4);
  await assert.rejects(
    createStepGradients({ model, variables, config: { ...config, nEmbd: 8 } as ModelConfig, backend: 'wasm', threads: 2 }),
    (error: unknown) => error instanceof FerryError && error.code === 'TRAINING_THREAD_FAILED' && /Training thread 1 failed: the worker's model has weights/.test(error.message),
  );

  const gradients = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 2 });
  try {
    // The worker's rows are one id short: its step throws, the main thread's share is fine.
    const short = { ...batch, inputs: batch.inputs.subarray(0, batch.inputs.length - 1) };
    await assert.rejects(gradients.compute(short, 1), (error: unknown) => error instanceof FerryError && error.code === 'TRAINING_THREAD_FAILED');
    const next = await gradients.compute(batch, 1);
    assert.ok(Number.isFinite(next.loss), 'the worker answers again after a failed step');
    tf.dispose(next.grads);
  } finally {
    await gradients.close();
  }

  // A worker that starts, then exits in the middle of its first step.
  const dying = new URL(`data:text/javascript,${encodeURIComponent(
    "import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ type: 'ready' }); parentPort.on('message', () => process.exit(3));",
  )}`);
  const doomed: StepGradients = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 2, workerEntry: dying });
  try {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      await assert.rejects(doomed.compute(batch, 1), (error: unknown) =>
        error instanceof FerryError && error.message === 'Training thread 1 failed: it exited with code 3' && /--threads 1/.test(error.hint!));
    }
  } finally {
    await doomed.close();
    model.dispose();
  }
});

function runOptions(dir: string, corpus: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return tinyRunOptions(dir, corpus, { steps: 8, batchSize: 5, lr: 1e-2, warmupSteps: 2, evalInterval: 4, evalIters: 2, logInterval: 2, seed: 7 }, { backend: 'wasm', ...overrides });
}

test('training on 2 threads follows 1 thread: the same losses within 1e-5, val losses and weights close', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 120, 'the cat sat on a mat\n');
  const one = await train(runOptions(dir, corpus, { out: join(dir, 'one'), threads: 1 }));
  const reporter = collectingReporter();
  const two = await train(runOptions(dir, corpus, { out: join(dir, 'two'), threads: 2, reporter }));
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2);
  assert.ok(reporter.lines.includes('threads: 2, each computing part of every batch'), reporter.lines.join('\n'));
  assert.equal(two.losses.length, 8);
  two.losses.forEach((loss, step) => assert.ok(Math.abs(loss - one.losses[step]!) <= 1e-5 * one.losses[step]!, `step ${step + 1}: ${loss} vs ${one.losses[step]}`));
  assert.ok(Math.abs(two.lastValLoss! - one.lastValLoss!) <= 1e-4 * one.lastValLoss!, `val ${two.lastValLoss} vs ${one.lastValLoss}`);
  const weights = (run: string) => new Float32Array(readFileSync(join(dir, run, 'last', 'weights.bin')).buffer.slice(0));
  const [a, b] = [weights('one'), weights('two')];
  assert.equal(a.length, b.length);
  const worst = Math.max(...Array.from(a, (value, i) => Math.abs(value - b[i]!)));
  assert.ok(worst <= 1e-4, `weights differ by up to ${worst}`);
});

test('on 2 threads an interrupted then resumed run is byte-identical to an uninterrupted one (dropout on)', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 120, 'the cat sat on a mat\n');
  const withDropout = { model: { ...TINY_TRANSFORMER, dropout: 0.2 }, threads: 2 };
  const whole = await train(runOptions(dir, corpus, { ...withDropout, out: join(dir, 'whole') }));
  const controller = new AbortController();
  const interrupted = await train(runOptions(dir, corpus, {
    ...withDropout,
    out: join(dir, 'split'),
    signal: controller.signal,
    reporter: collectingReporter((step) => step === 3 && controller.abort()),
  }));
  assert.equal(interrupted.stopReason, 'interrupted');
  assert.equal(JSON.parse(readFileSync(join(dir, 'split', 'last', 'state.json'), 'utf8')).threads, 2);
  // No --threads on resume: the run's own 2, though auto would pick 1 for so small a model.
  const resumed = await train({ out: join(dir, 'split'), resume: true, cacheDir: join(dir, 'cache'), reporter: collectingReporter() });
  assert.equal(resumed.threads, 2);
  assert.equal(resumed.startStep, 3);
  assert.deepEqual([...interrupted.losses, ...resumed.losses], whole.losses);
  assert.equal(resumed.lastValLoss, whole.lastValLoss);
  assert.ok(readFileSync(join(dir, 'split', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'whole', 'last', 'weights.bin'))));
  assert.ok(readFileSync(join(dir, 'split', 'last', 'optimizer.bin')).equals(readFileSync(join(dir, 'whole', 'last', 'optimizer.bin'))));
});
