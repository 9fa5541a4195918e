/**
 * The loss and gradients of a training step, on one thread or data-parallel over several. Each
 * batch is split into a fixed number of shards (fixed by the run, never by the machine): every
 * shard's mean loss and gradients are computed on their own, weighted by the shard's rows, and
 * summed in shard order. Threads only decide who computes which shards (the main thread the
 * first ones, each of N - 1 worker threads with its own tfjs backend and copy of the model the
 * next), so one thread and several give byte-identical results. The optimizer, checkpoints and
 * evaluation stay on the main thread; the workers load its weights from shared memory every step.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../errors.ts';
import type { ModelConfig } from '../models/index.ts';
import { flatLayout, type FromWorker, type ToWorker, type WorkerSetup } from './protocol.ts';
import { shardGradients, shardSeed, sliceShard, splitRows, type Shard } from './shard.ts';
import { copyTensorInto, tensorFromShared } from './shared-values.ts';

export interface StepGradients {
  readonly threads: number;
  readonly shards: number;
  /** The batch's mean loss and its gradients in `variables` order (the caller disposes them). */
  compute(batch: Shard, stepSeed: number): Promise<{ loss: number; grads: tf.Tensor[] }>;
  /** Ends the worker threads. */
  close(): Promise<void>;
}

export interface StepGradientsOptions {
  model: tf.LayersModel;
  /** The trained variables, in the optimizer's order. */
  variables: readonly tf.Variable[];
  config: ModelConfig;
  /** The active tfjs backend; every worker starts the same one. */
  backend: string;
  /** Threads that share the shards; at most `shards`. */
  threads: number;
  /** Shards of every batch: what the numbers depend on (default 1: the whole batch at once). */
  shards?: number;
  /** The worker's module; tests pass one that fails. */
  workerEntry?: URL;
}

export async function createStepGradients(options: StepGradientsOptions): Promise<StepGradients> {
  const shards = options.shards ?? 1;
  const threads = Math.max(1, Math.min(options.threads, shards));
  return threads === 1 && shards === 1 ? createWholeBatchGradients(options) : createShardedGradients({ ...options, threads, shards });
}

function createWholeBatchGradients({ model, variables, config }: StepGradientsOptions): StepGradients {
  return {
    threads: 1,
    shards: 1,
    async compute(batch, stepSeed) {
      const { loss, grads } = shardGradients(model, variables, batch, config.blockSize, shardSeed(stepSeed, 0));
      const value = (await loss.data())[0]!;
      loss.dispose();
      return { loss: value, grads };
    },
    async close() {},
  };
}

async function createShardedGradients(options: StepGradientsOptions & { shards: number }): Promise<StepGradients> {
  const { model, variables, config, backend, threads, shards, workerEntry } = options;
  const weightShapes = model.weights.map((weight) => weight.shape as number[]);
  const weightLayout = flatLayout(weightShapes);
  const trainable = variables.map((variable) => {
    const index = model.weights.findIndex((weight) => weight.read() === variable);
    if (index < 0) throw new Error(`variable ${variable.name} is not a weight of the model`);
    return index;
  });
  const gradLayout = flatLayout(trainable.map((index) => weightShapes[index]!));
  // Shards per thread: the main thread's first, as even as possible, the larger shares last.
  const owned = splitRows(shards, threads);
  const firstShard = owned.map((_, thread) => owned.slice(0, thread).reduce((sum, n) => sum + n, 0));
  const weights = new SharedArrayBuffer(weightLayout.length * 4);
  const weightView = new Float32Array(weights);
  const entry = workerEntry ?? new URL('./worker.ts', import.meta.url);
  const workers = owned.slice(1).map((count, index) =>
    startWorker(index + 1, entry, { backend, config, weightShapes, trainable, weights, grads: new SharedArrayBuffer(count * gradLayout.length * 4) }),
  );
  try {
    await Promise.all(workers.map((worker) => worker.ready));
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.terminate()));
    throw error;
  }

  const publishWeights = () =>
    model.weights.forEach((weight, index) => copyTensorInto(weight.read(), weightView, weightLayout.offsets[index]!));

  return {
    threads,
    shards,
    async compute(batch, stepSeed) {
      if (workers.length > 0) publishWeights();
      const rows = splitRows(batch.rows, shards);
      const starts = rows.map((_, index) => rows.slice(0, index).reduce((sum, n) => sum + n, 0));
      const work = rows.map((count, index) => ({
        shard: sliceShard(batch, starts[index]!, count, config.blockSize),
        seed: shardSeed(stepSeed, index),
        weight: count / batch.rows,
      }));
      const pending = workers.map((worker, index) => {
        const mine = work.slice(firstShard[index + 1]!, firstShard[index + 1]! + owned[index + 1]!);
        return worker.step({
          type: 'step',
          shards: mine.map(({ shard }) => ({ inputs: shard.inputs.slice(), targets: shard.targets.slice(), rows: shard.rows })),
          seeds: mine.map(({ seed }) => seed),
          weights: mine.map(({ weight }) => weight),
          blockSize: config.blockSize,
        });
      });
      // Rejections are awaited below; until then they must not count as unhandled.
      for (const promise of pending) promise.catch(() => {});
      const own: ReturnType<typeof shardGradients>[] = [];
      try {
        for (const { shard, seed, weight } of work.slice(0, owned[0]!)) own.push(shardGradients(model, variables, shard, config.blockSize, seed, weight));
      } catch (error) {
        tf.dispose(own.flatMap(({ loss, grads }) => [loss, ...grads]));
        // A worker's late answer must not be taken for the next step's.
        await Promise.allSettled(pending);
        throw error;
      }
      try {
        const ownLosses = await Promise.all(own.map(async ({ loss }) => (await loss.data())[0]!));
        const losses = [...ownLosses, ...(await Promise.all(pending)).flat()];
        // Shard order, whoever computed them: the same sums on any number of threads.
        const loss = losses.reduce((sum, value) => sum + value, 0);
        const grads = variables.map((variable, j) =>
          tf.tidy(() => {
            const offset = gradLayout.offsets[j]!;
            const fromWorkers = workers.flatMap((worker, index) =>
              Array.from({ length: owned[index + 1]! }, (_, k) => {
                const start = k * gradLayout.length + offset;
                return tensorFromShared(worker.grads.subarray(start, start + variable.size), variable.shape);
              }),
            );
            return tf.addN([...own.map(({ grads: ownGrads }) => ownGrads[j]!), ...fromWorkers]);
          }),
        );
        return { loss, grads };
      } finally {
        tf.dispose(own.flatMap(({ loss, grads }) => [loss, ...grads]));
      }
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

interface GradientWorker {
  ready: Promise<void>;
  /** This worker's gradients of its last step, one block per shard. */
  grads: Float32Array;
  /** Runs one step's shards; resolves with their weighted losses once their gradients are in `grads`. */
  step(message: ToWorker): Promise<number[]>;
  terminate(): Promise<void>;
}

function startWorker(index: number, entry: URL, setup: WorkerSetup): GradientWorker {
  // The worker runs TypeScript like the CLI does: tsx registers itself in the new thread first.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: setup });
  let waiting: { resolve: (value: number[]) => void; reject: (error: Error) => void } | undefined;
  let closing = false;
  // Once a worker has failed it never answers again: later steps fail at once instead of waiting.
  let dead: Error | undefined;
  const failure = (problem: string) =>
    new FerryError('training_thread_failed', `Training thread ${index} failed: ${problem}`, {
      hint: 'Run again with --threads 1; if that works, the error is in ferry\'s threading (please report it).',
      status: 500,
    });

  const ready = new Promise<void>((resolveReady, rejectReady) => {
    waiting = { resolve: () => resolveReady(), reject: rejectReady };
  });
  const fail = (error: Error) => {
    dead ??= error;
    const current = waiting;
    waiting = undefined;
    current?.reject(error);
  };
  worker.on('message', (message: FromWorker) => {
    const current = waiting;
    waiting = undefined;
    if (message.type === 'failed') current?.reject(failure(message.message));
    else current?.resolve(message.type === 'done' ? message.losses : []);
  });
  worker.on('error', (error) => fail(failure(error.message)));
  worker.on('exit', (code) => {
    if (!closing) fail(failure(`it exited with code ${code}`));
  });

  return {
    ready,
    grads: new Float32Array(setup.grads),
    step(message) {
      return new Promise<number[]>((resolveStep, rejectStep) => {
        if (dead) return rejectStep(dead);
        waiting = { resolve: resolveStep, reject: rejectStep };
        worker.postMessage(message);
      });
    },
    async terminate() {
      closing = true;
      await worker.terminate();
    },
  };
}
