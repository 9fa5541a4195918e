import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../src/errors.ts';
import { selectBackend } from '../../src/train/backend.ts';
import { createModel, resolveModelConfig, type ModelConfig } from '../../src/train/models/index.ts';
import { createStepGradients, type StepGradients } from '../../src/train/parallel/gradients.ts';
import { splitRows } from '../../src/train/parallel/shard.ts';
import { measureIdleCores, MIN_PARALLEL_FLOPS, planShards, planThreads } from '../../src/train/parallel/threads.ts';
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

test('shard plan: small steps stay whole, big ones split in two, whatever the machine; never more shards than rows', () => {
  assert.equal(planShards(MIN_PARALLEL_FLOPS / 2, 12), 1);
  assert.equal(planShards(MIN_PARALLEL_FLOPS, 12), 2);
  assert.equal(planShards(MIN_PARALLEL_FLOPS, 1), 1);
});

test('thread plan: auto takes a second core on wasm for big steps when 2 cores are idle; requests are capped by shards and refused when not whole', async () => {
  const idle = (cores: number) => async () => cores;
  const big = { backend: 'wasm', flopsPerStep: MIN_PARALLEL_FLOPS, shards: 12, cores: 2, idleCores: idle(1.9) };
  const plan = (overrides: Partial<Parameters<typeof planThreads>[0]>) => planThreads({ ...big, requested: undefined, ...overrides });
  assert.deepEqual(await plan({}), { threads: 2, note: 'threads: 2, each computing part of every batch (--threads 1 for one)' });
  assert.deepEqual(await plan({ idleCores: idle(1.2) }), {
    threads: 1,
    note: 'threads: 1, as other processes keep the cores busy (1.2 of 2 idle; --threads 2 to share anyway)',
  });
  assert.equal((await plan({ requested: 2, idleCores: idle(0) })).threads, 2);
  assert.equal((await plan({ cores: 1 })).threads, 1);
  assert.equal((await plan({ shards: 1 })).threads, 1);
  assert.equal((await plan({ flopsPerStep: MIN_PARALLEL_FLOPS / 2 })).threads, 1);
  assert.equal((await plan({ backend: 'cpu' })).threads, 1);
  assert.equal((await plan({ requested: 3, backend: 'cpu' })).threads, 3);
  assert.match((await plan({ requested: 3 })).note!, /--threads 3 on 2 cores/);
  assert.deepEqual(await plan({ requested: 4, shards: 3 }), { threads: 3, note: 'note: 3 threads: this run splits each batch into 3 shards, one per thread at most' });
  const native = await plan({ requested: 2, backend: 'tfjs-node' });
  assert.equal(native.threads, 1);
  assert.match(native.note!, /applies to the wasm and cpu backends; tfjs-node runs its own threads/);
  for (const bad of [0, 1.5, -2]) {
    await assert.rejects(plan({ requested: bad }), (error: unknown) => error instanceof FerryError && error.code === 'invalid_option');
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

test('3 shards of 5 rows (1, 2, 2) give the same bytes on 1 and 3 threads, and the whole batch\'s loss and gradients within 1e-5', async () => {
  const { config, model, variables, batch } = await fixture(5);
  const whole = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 1 });
  const one = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 1, shards: 3 });
  const three = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 3, shards: 3 });
  assert.deepEqual([whole.shards, one.threads, one.shards, three.threads, three.shards], [1, 1, 3, 3, 3]);
  try {
    const tensorCounts: number[] = [];
    for (const seed of [1, 2, 3]) {
      const w = await whole.compute(batch, seed);
      const a = await one.compute(batch, seed);
      const b = await three.compute(batch, seed);
      assert.equal(a.loss, b.loss);
      assert.ok(Math.abs(w.loss - a.loss) <= 1e-5 * w.loss, `loss ${w.loss} vs ${a.loss}`);
      a.grads.forEach((grad, index) => {
        const x = grad.dataSync();
        assert.deepEqual(b.grads[index]!.dataSync(), x, `${variables[index]!.name}: 1 and 3 threads differ`);
        const y = w.grads[index]!.dataSync();
        const scale = Math.max(...Array.from(y, Math.abs));
        const worst = Math.max(...Array.from(y, (value, i) => Math.abs(value - x[i]!)));
        assert.ok(worst <= 1e-5 * scale, `${variables[index]!.name}: off by ${worst} at scale ${scale}`);
      });
      tf.dispose([...w.grads, ...a.grads, ...b.grads]);
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
    createStepGradients({ model, variables, config: { ...config, nEmbd: 8 } as ModelConfig, backend: 'wasm', threads: 2, shards: 2 }),
    (error: unknown) => error instanceof FerryError && error.code === 'training_thread_failed' && /Training thread 1 failed: the worker's model has weights/.test(error.message),
  );

  const gradients = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 2, shards: 2 });
  try {
    // The worker's rows are one id short: its step throws, the main thread's share is fine.
    const short = { ...batch, inputs: batch.inputs.subarray(0, batch.inputs.length - 1) };
    await assert.rejects(gradients.compute(short, 1), (error: unknown) => error instanceof FerryError && error.code === 'training_thread_failed');
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
  const doomed: StepGradients = await createStepGradients({ model, variables, config, backend: 'wasm', threads: 2, shards: 2, workerEntry: dying });
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

test('the thread count never changes a number: 1 and 2 threads train byte-identical weights from the same seed', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 120, 'the cat sat on a mat\n');
  const one = await train(runOptions(dir, corpus, { out: join(dir, 'one'), threads: 1, shards: 2 }));
  const reporter = collectingReporter();
  const two = await train(runOptions(dir, corpus, { out: join(dir, 'two'), threads: 2, shards: 2, reporter }));
  assert.deepEqual([one.threads, one.shards, two.threads, two.shards], [1, 2, 2, 2]);
  assert.ok(reporter.lines.includes('threads: 2, each computing part of every batch'), reporter.lines.join('\n'));
  assert.equal(two.losses.length, 8);
  assert.deepEqual(two.losses, one.losses);
  assert.equal(two.lastValLoss, one.lastValLoss);
  for (const file of ['weights.bin', 'optimizer.bin']) {
    assert.ok(readFileSync(join(dir, 'two', 'last', file)).equals(readFileSync(join(dir, 'one', 'last', file))), `${file} differs`);
  }
  // More threads than shards: capped, with a note, and still the same run.
  const capped = collectingReporter();
  const three = await train(runOptions(dir, corpus, { out: join(dir, 'three'), threads: 3, shards: 2, reporter: capped }));
  assert.equal(three.threads, 2);
  assert.ok(capped.lines.includes('note: 2 threads: this run splits each batch into 2 shards, one per thread at most'), capped.lines.join('\n'));
  assert.ok(readFileSync(join(dir, 'three', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'one', 'last', 'weights.bin'))));
});

test('on 2 threads an interrupted run resumed on 1 is byte-identical to an uninterrupted one (dropout on)', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 120, 'the cat sat on a mat\n');
  const withDropout = { model: { ...TINY_TRANSFORMER, dropout: 0.2 }, threads: 2, shards: 2 };
  const whole = await train(runOptions(dir, corpus, { ...withDropout, out: join(dir, 'whole') }));
  const controller = new AbortController();
  const interrupted = await train(runOptions(dir, corpus, {
    ...withDropout,
    out: join(dir, 'split'),
    signal: controller.signal,
    reporter: collectingReporter((step) => step === 3 && controller.abort()),
  }));
  assert.equal(interrupted.stopReason, 'interrupted');
  const statePath = join(dir, 'split', 'last', 'state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  assert.deepEqual([state.threads, state.shards], [2, 2]);
  // A run from before shards recorded only its threads, which then split each batch: it resumes with as many shards.
  delete state.shards;
  writeFileSync(statePath, JSON.stringify(state));
  // No --threads on resume: auto picks 1 for so small a model, and the run's 2 shards keep it exact.
  const resumed = await train({ out: join(dir, 'split'), resume: true, cacheDir: join(dir, 'cache'), reporter: collectingReporter() });
  assert.deepEqual([resumed.threads, resumed.shards], [1, 2]);
  assert.equal(resumed.startStep, 3);
  assert.deepEqual([...interrupted.losses, ...resumed.losses], whole.losses);
  assert.equal(resumed.lastValLoss, whole.lastValLoss);
  assert.ok(readFileSync(join(dir, 'split', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'whole', 'last', 'weights.bin'))));
  assert.ok(readFileSync(join(dir, 'split', 'last', 'optimizer.bin')).equals(readFileSync(join(dir, 'whole', 'last', 'optimizer.bin'))));
});
