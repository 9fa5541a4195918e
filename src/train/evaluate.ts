/**
 * Perplexity of a checkpoint on a corpus (`ferry eval`): every token after the first is scored
 * exactly once, in windows of the model's block size, each window starting from an empty context.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { prepareTokens, type TokenSource } from './data/index.ts';
import { checkWindow, positionLosses, type PositionLossReport, windowStarts } from './position-loss.ts';

export interface EvaluationResult {
  checkpointDir: string;
  corpusHash: string;
  /** Tokens in the corpus. */
  tokens: number;
  /** Tokens predicted and scored: all but the first, which has no context. */
  scoredTokens: number;
  /** Mean cross-entropy, nats per predicted token. */
  loss: number;
  perplexity: number;
  /** The same loss in bits per predicted token. */
  bitsPerToken: number;
  seconds: number;
}

export interface EvaluationOptions {
  batchSize: number;
  cacheDir?: string;
  /** After every forward pass: tokens scored so far, of `total`. */
  onProgress?: (scored: number, total: number) => void;
}

/** Where tokenized corpora are cached unless told otherwise: $FERRY_CACHE_DIR or ~/.cache/ferry. */
export function defaultCacheDir(): string {
  return process.env.FERRY_CACHE_DIR ?? join(homedir(), '.cache', 'ferry');
}

export interface PositionLossOptions extends EvaluationOptions {
  /** Tokens per window (default: the model's block size). */
  window?: number;
}

/** Mean loss at each position of windows of a checkpoint's context over `corpusPath` (docs/FORMATS.md). */
export async function positionLossOfCheckpoint(path: string, corpusPath: string, options: PositionLossOptions): Promise<PositionLossReport> {
  const { dir, model, tokenizer, manifest } = await loadCheckpoint(path);
  try {
    const prepared = await prepareTokens({ corpusPath, tokenizer, cacheDir: options.cacheDir ?? defaultCacheDir() });
    const window = checkWindow(manifest.model, options.window ?? manifest.model.blockSize);
    const starts = windowStarts(prepared.tokens.length, window);
    const sums = new Float64Array(window);
    for (let first = 0; first < starts.length; first += options.batchSize) {
      const batch = starts.slice(first, first + options.batchSize);
      const inputs = new Int32Array(batch.length * window);
      const targets = new Int32Array(batch.length * window);
      batch.forEach((start, row) => {
        const ids = prepared.tokens.slice(start, start + window + 1);
        inputs.set(ids.subarray(0, window), row * window);
        targets.set(ids.subarray(1), row * window);
      });
      const perPosition = tf.tidy(() => {
        const logits = model.predict(tf.tensor2d(inputs, [batch.length, window], 'int32')) as tf.Tensor;
        const labels = tf.oneHot(tf.tensor2d(targets, [batch.length, window], 'int32'), logits.shape[2]!);
        return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), labels), [0, 2]));
      });
      (await perPosition.data()).forEach((loss, position) => (sums[position]! += loss));
      perPosition.dispose();
    }
    const positions = positionLosses(sums, starts.length);
    return {
      model: dir, arch: manifest.model.arch, window, windows: starts.length,
      loss: positions.reduce((total, p) => total + p.loss, 0) / window, positions,
    };
  } finally {
    model.dispose();
  }
}

export async function evaluateCheckpoint(path: string, corpusPath: string, options: EvaluationOptions): Promise<EvaluationResult> {
  const started = performance.now();
  const { dir: checkpointDir, model, tokenizer, manifest } = await loadCheckpoint(path);
  try {
    const prepared = await prepareTokens({ corpusPath, tokenizer, cacheDir: options.cacheDir ?? defaultCacheDir() });
    if (prepared.tokens.length < 2) {
      throw new FerryError('corpus_too_short', `${corpusPath} holds ${prepared.tokens.length} token(s); perplexity needs at least 2.`, {
        hint: 'Evaluate on a longer corpus.',
      });
    }
    const loss = await meanCrossEntropy(model, prepared.tokens, manifest.model.blockSize, options.batchSize, options.onProgress);
    return {
      checkpointDir,
      corpusHash: prepared.corpusHash,
      tokens: prepared.tokens.length,
      scoredTokens: prepared.tokens.length - 1,
      loss,
      perplexity: Math.exp(loss),
      bitsPerToken: loss / Math.LN2,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    model.dispose();
  }
}

/** Mean next-token cross-entropy over all of `tokens`, in windows of `blockSize`. */
export async function meanCrossEntropy(
  model: tf.LayersModel, tokens: TokenSource, blockSize: number, batchSize: number, onProgress?: (scored: number, total: number) => void,
): Promise<number> {
  const predicted = tokens.length - 1;
  const fullWindows = Math.floor(predicted / blockSize);
  let total = 0;
  let scored = 0;
  const score = async (starts: number[], length: number) => {
    const inputs = new Int32Array(starts.length * length);
    const targets = new Int32Array(starts.length * length);
    starts.forEach((start, row) => {
      const window = tokens.slice(start, start + length + 1);
      inputs.set(window.subarray(0, length), row * length);
      targets.set(window.subarray(1), row * length);
    });
    const sum = tf.tidy(() => {
      const logits = model.predict(tf.tensor2d(inputs, [starts.length, length], 'int32')) as tf.Tensor;
      const logProbabilities = tf.logSoftmax(logits);
      const labels = tf.oneHot(tf.tensor2d(targets, [starts.length, length], 'int32'), logits.shape[2]!);
      return tf.neg(tf.sum(tf.mul(logProbabilities, labels)));
    });
    total += (await sum.data())[0]!;
    sum.dispose();
    scored += starts.length * length;
    onProgress?.(scored, predicted);
  };
  for (let first = 0; first < fullWindows; first += batchSize) {
    const count = Math.min(batchSize, fullWindows - first);
    await score(Array.from({ length: count }, (_, i) => (first + i) * blockSize), blockSize);
  }
  const rest = predicted - fullWindows * blockSize;
  if (rest > 0) await score([fullWindows * blockSize], rest);
  return total / predicted;
}
