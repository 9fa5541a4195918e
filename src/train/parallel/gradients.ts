/**
 * The loss and gradients of a training step, on one thread or data-parallel over several: the
 * batch's rows are split between the main thread and N - 1 worker threads (each with its own tfjs
 * backend and copy of the model), each computes the mean loss and gradients of its rows, and the
 * main thread sums them weighted by rows. The optimizer, checkpoints and evaluation stay on the main
 * thread; the workers load its weights from shared memory at every step.
 *
 * Same seed and thread count, same numbers: shares, seeds and the order of the sum are fixed.
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
  threads: number;
  /** The worker's module; tests pass one that fails. */
  workerEntry?: URL;
}

export async function createStepGradients(options: StepGradientsOptions): Promise<StepGradients> {
  return options.threads <= 1 ? createLocalGradients(options) : createParallelGradients(options);
}

function createLocalGradients({ model, variables, config }: StepGradientsOptions): StepGradients {
  return {
    threads: 1,
    async compute(batch, stepSeed) {
      const { loss, grads } = shardGradients(model, variables, batch, config.blockSize, shardSeed(stepSeed, 0));
      const value = (await loss.data())[0]!;
      loss.dispose();
      return { loss: value, grads };
    },
    async close() {},
  };
}

async function createParallelGradients({ model, variables, config, backend, threads, workerEntry }: StepGradientsOptions): Promise<StepGradients> {
  const weightShapes = model.weights.map((weight) => weight.shape as number[]);
  const weightLayout = flatLayout(weightShapes);
  const trainable = variables.map((variable) => {
    const index = model.weights.findIndex((weight) => weight.read() === variable);
    if (index < 0) throw new Error(`variable ${variable.name} is not a weight of the model`);
    return index;
  });
  const gradLayout = flatLayout(trainable.map((index) => weightShapes[index]!));
  const weights = new SharedArrayBuffer(weightLayout.length * 4);
  const weightView = new Float32Array(weights);
  const entry = workerEntry ?? new URL('./worker.ts', import.meta.url);
  const workers = Array.from({ length: threads - 1 }, (_, index) =>
    startWorker(index + 1, entry, { backend, config, weightShapes, trainable, weights, grads: new SharedArrayBuffer(gradLayout.length * 4) }),
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
    async compute(batch, stepSeed) {
      publishWeights();
      const rows = splitRows(batch.rows, threads);
      const starts = rows.map((_, index) => rows.slice(0, index).reduce((sum, n) => sum + n, 0));
      const shares = rows.map((count, index) => sliceShard(batch, starts[index]!, count, config.blockSize));
      const weights = rows.map((count) => count / batch.rows);
      const pending = shares.slice(1).map((shard, index) =>
        workers[index]!.step({
          type: 'step',
          shard: { inputs: shard.inputs.slice(), targets: shard.targets.slice(), rows: shard.rows },
          blockSize: config.blockSize,
          seed: shardSeed(stepSeed, index + 1),
          weight: weights[index + 1]!,
        }),
      );
      // Rejections are awaited below; until then they must not count as unhandled.
      for (const promise of pending) promise.catch(() => {});
      let own: ReturnType<typeof shardGradients>;
      try {
        own = shardGradients(model, variables, shares[0]!, config.blockSize, shardSeed(stepSeed, 0), weights[0]!);
      } catch (error) {
        // A worker's late answer must not be taken for the next step's.
        await Promise.allSettled(pending);
        throw error;
      }
      try {
        const ownLoss = (await own.loss.data())[0]!;
        const losses = [ownLoss, ...(await Promise.all(pending))];
        const loss = losses.reduce((sum, value) => sum + value, 0);
        const grads = variables.map((variable, j) =>
          tf.tidy(() => {
            const offset = gradLayout.offsets[j]!;
            return tf.addN([own.grads[j]!, ...workers.map((worker) => tensorFromShared(worker.grads.subarray(offset, offset + variable.size), variable.shape))]);
          }),
        );
        return { loss, grads };
      } finally {
        tf.dispose([own.loss, ...own.grads]);
      }
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

interface GradientWorker {
  ready: Promise<void>;
  /** This worker's gradients of its last step. */
  grads: Float32Array;
  /** Runs one step's share; resolves with its mean loss once its gradients are in `grads`. */
  step(message: ToWorker): Promise<number>;
  terminate(): Promise<void>;
}

function startWorker(index: number, entry: URL, setup: WorkerSetup): GradientWorker {
  // The worker runs TypeScript like the CLI does: tsx registers itself in the new thread first.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: setup });
  let waiting: { resolve: (value: number) => void; reject: (error: Error) => void } | undefined;
  let closing = false;
  // Once a worker has failed it never answers again: later steps fail at once instead of waiting.
  let dead: Error | undefined;
  const failure = (problem: string) =>
    new FerryError('TRAINING_THREAD_FAILED', `Training thread ${index} failed: ${problem}`, {
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
    else current?.resolve(message.type === 'done' ? message.loss : 0);
  });
  worker.on('error', (error) => fail(failure(error.message)));
  worker.on('exit', (code) => {
    if (!closing) fail(failure(`it exited with code ${code}`));
  });

  return {
    ready,
    grads: new Float32Array(setup.grads),
    step(message) {
      return new Promise<number>((resolveStep, rejectStep) => {
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
