/**
 * A corpus of pairs read, split and encoded for training a T5 model: one pass over the files.
 *
 * Exported names: `loadPairSet(input, tokenizer, options)`, `encodeWithEos(tokenizer, text)`,
 * `describePairSkips(skips, options)` and the types `EncodedPair`, `PairSet`, `PairSetOptions`.
 * Lengths count tokens with the eos that ends every source and target (T5Config's
 * maxSourceLength / maxTargetLength). A pair longer than a limit is skipped and counted (datasets
 * of pairs are filtered by length, as Hugging Face's examples do); no pair left to train on is a
 * FerryError, as is an empty held-out part when one was asked for.
 */
import { FerryError } from '../../errors.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import { T5_SPECIAL_IDS } from '../models/t5-config.ts';
import { isHeldOut } from './pair-split.ts';
import { newPairSkips, readPairs, type PairInput, type PairSkips } from './pairs.ts';

export interface EncodedPair {
  readonly source: string;
  readonly target: string;
  /** The source's tokens then eos. */
  readonly sourceIds: Int32Array;
  /** The target's tokens then eos (the labels); the decoder reads pad, then all but the eos. */
  readonly targetIds: Int32Array;
}

export interface PairSetOptions {
  readonly maxSourceLength: number;
  readonly maxTargetLength: number;
  /** The fraction of pairs held out (by a seeded hash of the source; see isHeldOut). Default 0.1. */
  readonly valFraction?: number;
  readonly seed?: number;
}

export interface PairSet {
  readonly train: EncodedPair[];
  readonly val: EncodedPair[];
  readonly skips: PairSkips;
}

/** A text's ids with T5's eos after them, as the model reads a source and learns a target. */
export function encodeWithEos(tokenizer: Tokenizer, text: string): Int32Array {
  const ids = tokenizer.encode(text);
  const out = new Int32Array(ids.length + 1);
  out.set(ids);
  out[ids.length] = T5_SPECIAL_IDS.eos;
  return out;
}

export async function loadPairSet(input: PairInput, tokenizer: Tokenizer, options: PairSetOptions): Promise<PairSet> {
  const { maxSourceLength, maxTargetLength, valFraction = 0.1, seed = 1 } = options;
  for (const [name, limit] of [['maxSourceLength', maxSourceLength], ['maxTargetLength', maxTargetLength]] as const) {
    if (!Number.isInteger(limit) || limit < 2) throw new RangeError(`${name} ${limit} must be a whole number >= 2 (a token and eos)`);
  }
  const skips = newPairSkips();
  const train: EncodedPair[] = [];
  const val: EncodedPair[] = [];
  for await (const pair of readPairs(input, skips)) {
    const sourceIds = encodeWithEos(tokenizer, pair.source);
    const targetIds = encodeWithEos(tokenizer, pair.target);
    if (sourceIds.length > maxSourceLength) {
      skips.sourceTooLong++;
      skips.firstSourceTooLong ??= `${pair.file} line ${pair.line}, ${sourceIds.length} tokens`;
    } else if (targetIds.length > maxTargetLength) {
      skips.targetTooLong++;
      skips.firstTargetTooLong ??= `${pair.file} line ${pair.line}, ${targetIds.length} tokens`;
    } else {
      (isHeldOut(pair.source, valFraction, seed) ? val : train).push({ source: pair.source, target: pair.target, sourceIds, targetIds });
    }
  }
  const name = typeof input === 'string' ? input : `${input.source} + ${input.target}`;
  if (train.length === 0) {
    const why = describePairSkips(skips, options);
    throw new FerryError('pairs_empty', `${name} has no pairs to train on${why ? ` (${why})` : ''}`, {
      hint: skips.sourceTooLong + skips.targetTooLong > 0
        ? 'Raise --max-source-length / --max-target-length, or give shorter pairs.'
        : 'Give a file of pairs: source<TAB>target lines, {"source", "target"} JSON lines, or two aligned files.',
    });
  }
  if (valFraction > 0 && val.length === 0) {
    throw new FerryError('pairs_no_validation', `none of the ${train.length} pairs of ${name} fell into the held-out ${+(valFraction * 100).toFixed(2)}%`, {
      hint: 'Give more pairs or a larger --val-fraction.',
    });
  }
  return { train, val, skips };
}

/** One line for the log saying which pairs were left out and why; undefined when none were. */
export function describePairSkips(skips: PairSkips, limits: Pick<PairSetOptions, 'maxSourceLength' | 'maxTargetLength'>): string | undefined {
  const parts: string[] = [];
  const plural = (n: number) => `${n} pair${n === 1 ? '' : 's'}`;
  if (skips.emptySide > 0) parts.push(`skipped ${plural(skips.emptySide)} with an empty side (first: ${skips.firstEmptySide})`);
  if (skips.noTranslation > 0) {
    parts.push(`skipped ${skips.noTranslation} dictionary entr${skips.noTranslation === 1 ? 'y' : 'ies'} without a translation (first: ${skips.firstNoTranslation})`);
  }
  if (skips.sourceTooLong > 0) {
    parts.push(`skipped ${plural(skips.sourceTooLong)} whose source is longer than ${limits.maxSourceLength} tokens with eos (first: ${skips.firstSourceTooLong})`);
  }
  if (skips.targetTooLong > 0) {
    parts.push(`skipped ${plural(skips.targetTooLong)} whose target is longer than ${limits.maxTargetLength} tokens with eos (first: ${skips.firstTargetTooLong})`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}
