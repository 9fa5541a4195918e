/**
 * Loss and gradients of one shard of a batch: the work every training thread does per shard. The
 * main thread and each worker run this same function on the same shards, so the thread count never
 * changes a number; only the shard count does (one shard is exactly the whole-batch step).
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../random.ts';
import { crossEntropy } from '../models/index.ts';

/** Row-major [rows, blockSize] token ids of one share of a batch; targets are the inputs shifted by one. */
export interface Shard {
  inputs: Int32Array;
  targets: Int32Array;
  rows: number;
}

/**
 * The mean loss of `shard` times `weight` and its gradient for each of `variables` (zeros where
 * the loss does not depend on one). Dropout and other unseeded tfjs random ops draw from `seed`.
 * A thread weights its loss by its share of the batch's rows, so the batch's gradients are the
 * plain sum of the threads' (one add per variable instead of two multiplies and an add).
 */
export function shardGradients(
  model: tf.LayersModel,
  variables: readonly tf.Variable[],
  shard: Shard,
  blockSize: number,
  seed: number,
  weight = 1,
): { loss: tf.Scalar; grads: tf.Tensor[] } {
  const inputs = tf.tensor2d(shard.inputs, [shard.rows, blockSize], 'int32');
  const targets = tf.tensor2d(shard.targets, [shard.rows, blockSize], 'int32');
  try {
    const { value, grads } = withSeededRandom(seed, () =>
      tf.variableGrads(() => {
        const loss = crossEntropy(model.apply(inputs, { training: true }) as tf.Tensor, targets);
        return weight === 1 ? loss : tf.mul(loss, weight);
      }, [...variables]),
    );
    return { loss: value, grads: variables.map((variable) => grads[variable.name] ?? tf.zerosLike(variable)) };
  } finally {
    tf.dispose([inputs, targets]);
  }
}

/**
 * `rows` split into `parts` shares (rows of each shard, or shards of each thread): as even as
 * possible, no empty share, the larger shares last (the first is the main thread's, which also
 * sums the gradients and runs the optimizer).
 */
export function splitRows(rows: number, parts: number): number[] {
  const shares = Math.max(1, Math.min(rows, parts));
  const larger = rows % shares;
  return Array.from({ length: shares }, (_, index) => Math.floor(rows / shares) + (index >= shares - larger ? 1 : 0));
}

/** Rows [start, start + rows) of a batch. */
export function sliceShard(batch: Shard, start: number, rows: number, blockSize: number): Shard {
  return {
    inputs: batch.inputs.subarray(start * blockSize, (start + rows) * blockSize),
    targets: batch.targets.subarray(start * blockSize, (start + rows) * blockSize),
    rows,
  };
}

/** The dropout seed of shard `index` of a step: the step's own seed for the first, so one shard draws as the whole batch did. */
export function shardSeed(stepSeed: number, index: number): number {
  return index === 0 ? stepSeed : mixSeed(stepSeed, index);
}

/** Runs `body` with Math.random replaced by a generator seeded from `seed`. */
export function withSeededRandom<T>(seed: number, body: () => T): T {
  const original = Math.random;
  Math.random = mulberry32(seed);
  try {
    return body();
  } finally {
    Math.random = original;
  }
}

/** A 32-bit seed for one step of one run (splitmix-style mixing of seed and step). */
export function mixSeed(seed: number, step: number): number {
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
}
