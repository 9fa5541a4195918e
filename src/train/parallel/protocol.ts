/**
 * What the main thread and a gradient worker tell each other. Weights and gradients travel through
 * shared memory (one float32 block each, tensors back to back in model order); messages carry the
 * rows to work on and say when the work is done.
 */
import type { ModelConfig } from '../models/index.ts';
import type { Shard } from './shard.ts';

/** `workerData` of a gradient worker. */
export interface WorkerSetup {
  /** The tfjs backend the main thread trains on ('wasm' or 'cpu'). */
  backend: string;
  config: ModelConfig;
  /** Shapes of every model weight, in `model.weights` order (the worker checks that its model matches). */
  weightShapes: number[][];
  /** Indexes into `weightShapes` of the trainable weights, in the order the gradients are exchanged. */
  trainable: number[];
  /** The main thread's current weights, written before every step. */
  weights: SharedArrayBuffer;
  /** This worker's gradients of its last step: one block per shard, each in `trainable` order. */
  grads: SharedArrayBuffer;
}

/** A step's shards for one worker, each with its dropout seed and `weight`: its share of the batch's rows, which scales its loss and gradients. */
export type ToWorker = { type: 'step'; shards: Shard[]; seeds: number[]; weights: number[]; blockSize: number };

export type FromWorker =
  | { type: 'ready' }
  /** `losses`: each shard's mean loss times its weight. */
  | { type: 'done'; losses: number[] }
  | { type: 'failed'; message: string };

/** Where each tensor of `shapes` starts in a flat float32 block, and the block's length. */
export function flatLayout(shapes: readonly (readonly number[])[]): { offsets: number[]; length: number } {
  const offsets: number[] = [];
  let length = 0;
  for (const shape of shapes) {
    offsets.push(length);
    length += shape.reduce((size, dim) => size * dim, 1);
  }
  return { offsets, length };
}
