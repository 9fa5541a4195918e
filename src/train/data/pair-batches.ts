/**
 * Teacher-forced batches of encoded pairs (PairBatch, pair-batch.ts).
 *
 * Exported names: `pairBatch(pairs, lengths?)`, `shuffledPairBatches(pairs, options)` (training:
 * seeded epochs, resumable from any batch), `sequentialPairBatches(pairs, options)` (evaluation:
 * every pair once, in order), and the types `PairLengths`, `PairBatchOptions`.
 *
 * Both sides are right-padded with pad (0) to the batch's longest, rounded up to `lengthMultiple`
 * (fewer distinct shapes for tfjs to compile), or to fixed `sourceLength` / `targetLength`.
 */
import { T5_SPECIAL_IDS } from '../models/t5-config.ts';
import type { PairBatch } from './pair-batch.ts';
import type { EncodedPair } from './pair-set.ts';
import { createRng } from './rng.ts';

export interface PairLengths {
  /** Pad every batch's sources to exactly this many tokens (default: the batch's longest). */
  readonly sourceLength?: number;
  /** Pad every batch's targets to exactly this many tokens (default: the batch's longest). */
  readonly targetLength?: number;
  /** Round the batch's longest up to a multiple of this (default 1); unused with a fixed length. */
  readonly lengthMultiple?: number;
}

export interface PairBatchOptions extends PairLengths {
  readonly batchSize: number;
}

/**
 * One batch of `pairs`, row i = pairs[i]: sourceIds = source + eos, decoderInputIds = pad + target
 * (the labels shifted right), labels = target + eos; masks 1 on those tokens, 0 on padding.
 */
export function pairBatch(pairs: readonly EncodedPair[], lengths: PairLengths = {}): PairBatch {
  if (pairs.length === 0) throw new RangeError('a batch needs at least one pair');
  const sourceLength = paddedLength(pairs, (pair) => pair.sourceIds.length, lengths.sourceLength, lengths.lengthMultiple, 'source');
  const targetLength = paddedLength(pairs, (pair) => pair.targetIds.length, lengths.targetLength, lengths.lengthMultiple, 'target');
  const batch = pairs.length;
  const sourceIds = new Int32Array(batch * sourceLength).fill(T5_SPECIAL_IDS.pad);
  const sourceMask = new Float32Array(batch * sourceLength);
  const decoderInputIds = new Int32Array(batch * targetLength).fill(T5_SPECIAL_IDS.pad);
  const labels = new Int32Array(batch * targetLength).fill(T5_SPECIAL_IDS.pad);
  const labelMask = new Float32Array(batch * targetLength);
  pairs.forEach((pair, row) => {
    const source = row * sourceLength;
    const target = row * targetLength;
    sourceIds.set(pair.sourceIds, source);
    sourceMask.fill(1, source, source + pair.sourceIds.length);
    // Position 0 stays pad, T5's decoder start token.
    decoderInputIds.set(pair.targetIds.subarray(0, pair.targetIds.length - 1), target + 1);
    labels.set(pair.targetIds, target);
    labelMask.fill(1, target, target + pair.targetIds.length);
  });
  return { batch, sourceLength, targetLength, sourceIds, sourceMask, decoderInputIds, labels, labelMask };
}

/**
 * Training batches, endlessly: the pairs in a seeded random order, a new order every epoch, batch
 * after batch across epoch ends so that every batch has batchSize rows. Batch k depends only on
 * the pairs, the seed and k: a resumed run passes `firstBatch` (the steps done) and sees the same
 * batches as an uninterrupted one.
 */
export function* shuffledPairBatches(
  pairs: readonly EncodedPair[],
  options: PairBatchOptions & { readonly seed: number; readonly firstBatch?: number },
): Generator<PairBatch> {
  const { batchSize, seed, firstBatch = 0 } = options;
  checkBatchSize(batchSize);
  if (pairs.length === 0) throw new RangeError('shuffledPairBatches needs at least one pair');
  let epoch = -1;
  let order: Uint32Array = new Uint32Array(0);
  for (let position = firstBatch * batchSize; ; ) {
    const rows: EncodedPair[] = [];
    for (; rows.length < batchSize; position++) {
      const positionEpoch = Math.floor(position / pairs.length);
      if (positionEpoch !== epoch) {
        epoch = positionEpoch;
        order = epochOrder(pairs.length, seed, epoch);
      }
      rows.push(pairs[order[position % pairs.length]!]!);
    }
    yield pairBatch(rows, options);
  }
}

/** Every pair once, in order, batchSize at a time (the last batch may be smaller): for evaluation. */
export function* sequentialPairBatches(pairs: readonly EncodedPair[], options: PairBatchOptions): Generator<PairBatch> {
  checkBatchSize(options.batchSize);
  for (let first = 0; first < pairs.length; first += options.batchSize) yield pairBatch(pairs.slice(first, first + options.batchSize), options);
}

/** A Fisher-Yates permutation of 0..count-1 drawn from the seed and the epoch alone. */
function epochOrder(count: number, seed: number, epoch: number): Uint32Array {
  const rng = createRng(Math.trunc(seed) + epoch * 2 ** 32);
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function paddedLength(pairs: readonly EncodedPair[], length: (pair: EncodedPair) => number, fixed: number | undefined, multiple = 1, side: string): number {
  let longest = 0;
  for (const pair of pairs) longest = Math.max(longest, length(pair));
  if (fixed !== undefined) {
    // Pairs were filtered by the model's limits (loadPairSet); a longer one here is a caller's bug.
    if (longest > fixed) throw new RangeError(`a ${side} of ${longest} tokens does not fit the fixed length ${fixed}`);
    return fixed;
  }
  if (!Number.isInteger(multiple) || multiple < 1) throw new RangeError(`lengthMultiple ${multiple} must be a whole number >= 1`);
  return Math.ceil(longest / multiple) * multiple;
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size ${batchSize} must be a whole number >= 1`);
}
