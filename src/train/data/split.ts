import { FerryError } from '../../errors.ts';
import { subTokenSource, type TokenSource } from './token-source.ts';

/**
 * The first (1 - valFraction) of the tokens train, the rest validate, as nanoGPT splits.
 * With `blockSize`, both parts must hold at least one window (blockSize + 1 tokens).
 */
export function splitTrainVal(source: TokenSource, valFraction = 0.1, blockSize?: number): { train: TokenSource; val: TokenSource } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new FerryError('invalid_val_fraction', `validation fraction ${valFraction} is not in [0, 1)`, {
      hint: 'Give a fraction such as 0.1 (the last 10% of the corpus validates).',
    });
  }
  const trainLength = Math.floor(source.length * (1 - valFraction));
  const train = subTokenSource(source, 0, trainLength);
  const val = subTokenSource(source, trainLength, source.length - trainLength);
  if (blockSize !== undefined) {
    checkHoldsBlock(train, blockSize, 'the training split');
    if (valFraction > 0) checkHoldsBlock(val, blockSize, `the validation split (last ${+(valFraction * 100).toFixed(2)}%)`);
  }
  return { train, val };
}

/** A FerryError unless `source` holds one window of blockSize inputs and their next-token targets. */
export function checkHoldsBlock(source: TokenSource, blockSize: number, name = 'the corpus'): void {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`block size ${blockSize} must be a whole number >= 1`);
  if (source.length < blockSize + 1) {
    throw new FerryError('corpus_too_short', `${name} has ${source.length} tokens, fewer than one block of ${blockSize} + 1`, {
      hint: 'Give a longer corpus or a smaller block size.',
    });
  }
}
