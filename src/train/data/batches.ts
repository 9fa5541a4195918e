import type { Rng } from './rng.ts';
import { checkHoldsBlock } from './split.ts';
import type { TokenSource } from './token-source.ts';

export interface BatchShape {
  readonly blockSize: number;
  readonly batchSize: number;
}

/** Row-major [rows, blockSize] ids; targets are the inputs shifted by one token. */
export interface Batch {
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
  readonly rows: number;
}

/** `batchSize` windows at random positions, as nanoGPT's get_batch. */
export function sampleBatch(source: TokenSource, shape: BatchShape, rng: Rng): Batch {
  const { blockSize, batchSize } = shape;
  checkHoldsBlock(source, blockSize);
  const inputs = new Int32Array(batchSize * blockSize);
  const targets = new Int32Array(batchSize * blockSize);
  for (let row = 0; row < batchSize; row++) {
    const start = rng.nextInt(source.length - blockSize);
    fillRow(source.slice(start, start + blockSize + 1), row, blockSize, inputs, targets);
  }
  return { inputs, targets, rows: batchSize };
}

/**
 * Every window of the source once, side by side (0, blockSize, 2 * blockSize, ...), in batches
 * of up to `batchSize` rows (the last batch may have fewer); for evaluation over a whole split.
 * Tokens after the last whole window are left out.
 */
export function* sequentialBatches(source: TokenSource, shape: BatchShape): Generator<Batch> {
  const { blockSize, batchSize } = shape;
  checkHoldsBlock(source, blockSize);
  const windows = Math.floor((source.length - 1) / blockSize);
  for (let first = 0; first < windows; first += batchSize) {
    const rows = Math.min(batchSize, windows - first);
    const inputs = new Int32Array(rows * blockSize);
    const targets = new Int32Array(rows * blockSize);
    const ids = source.slice(first * blockSize, (first + rows) * blockSize + 1);
    for (let row = 0; row < rows; row++) fillRow(ids.subarray(row * blockSize, (row + 1) * blockSize + 1), row, blockSize, inputs, targets);
    yield { inputs, targets, rows };
  }
}

function fillRow(window: Int32Array, row: number, blockSize: number, inputs: Int32Array, targets: Int32Array): void {
  inputs.set(window.subarray(0, blockSize), row * blockSize);
  targets.set(window.subarray(1, blockSize + 1), row * blockSize);
}
