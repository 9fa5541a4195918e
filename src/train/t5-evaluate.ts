/**
 * Scores a T5 model on held-out pairs: the teacher-forced loss (nats per target token, eos
 * included, weighted by tokens across batches), its perplexity, and what greedy decoding gets
 * right: exact match (the whole target) and the character error rate (edit distance over code
 * points, summed, over the targets' code points), as translation and transliteration tasks report.
 */
import type { Tokenizer } from '../tokenizer/index.ts';
import { describePairSkips, loadPairSet, type EncodedPair } from './data/pair-set.ts';
import { sequentialPairBatches } from './data/pair-batches.ts';
import type { PairInput } from './data/pairs.ts';
import { createT5, disposeT5, greedyGenerate, setT5Weights, t5Loss, type T5Model } from './models/t5.ts';
import { readT5Checkpoint } from './t5-checkpoint.ts';

export interface T5Score {
  /** Pairs the loss was computed over, and their target tokens. */
  pairs: number;
  tokens: number;
  loss: number;
  perplexity: number;
  /** Pairs decoded greedily for exactMatch and cer. */
  decoded: number;
  exactMatch: number;
  cer: number;
  /** The first few decoded pairs, to show in the log. */
  examples: { source: string; target: string; output: string }[];
}

export interface ScoreT5Options {
  batchSize: number;
  /** Decode only the first this many pairs (greedy decoding is the slow part). Default: all. */
  maxDecodedPairs?: number;
  examples?: number;
}

export async function scoreT5(model: T5Model, tokenizer: Tokenizer, pairs: readonly EncodedPair[], options: ScoreT5Options): Promise<T5Score> {
  const { batchSize, examples: exampleCount = 3 } = options;
  let weighted = 0;
  let tokens = 0;
  for (const batch of sequentialPairBatches(pairs, { batchSize })) {
    const loss = t5Loss(model, batch);
    const count = batch.labelMask.reduce((a, b) => a + b, 0);
    weighted += (await loss.data())[0]! * count;
    tokens += count;
    loss.dispose();
  }
  const decodedPairs = pairs.slice(0, options.maxDecodedPairs ?? pairs.length);
  let exact = 0;
  let errors = 0;
  let characters = 0;
  const examples: T5Score['examples'] = [];
  for (let first = 0; first < decodedPairs.length; first += batchSize) {
    const rows = decodedPairs.slice(first, first + batchSize);
    // Room for an output twice the longest target: enough to see a wrong answer, without decoding
    // up to maxTargetLength when the model never says eos.
    const longest = Math.max(...rows.map((pair) => pair.targetIds.length));
    const maxTokens = Math.min(model.config.maxTargetLength, 2 * longest);
    const outputs = await greedyGenerate(model, rows.map((pair) => [...pair.sourceIds]), maxTokens);
    outputs.forEach((ids, i) => {
      const pair = rows[i]!;
      const output = tokenizer.decode(ids);
      if (output === pair.target) exact += 1;
      errors += editDistance(output, pair.target);
      characters += [...pair.target].length;
      if (examples.length < exampleCount) examples.push({ source: pair.source, target: pair.target, output });
    });
  }
  const loss = tokens > 0 ? weighted / tokens : Number.NaN;
  return {
    pairs: pairs.length, tokens, loss, perplexity: Math.exp(loss), decoded: decodedPairs.length,
    exactMatch: decodedPairs.length > 0 ? exact / decodedPairs.length : Number.NaN,
    cer: characters > 0 ? errors / characters : Number.NaN,
    examples,
  };
}

/** Levenshtein distance between two strings, over code points (an emoji is one character). */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length]!;
}

export interface T5EvaluationOptions {
  batchSize: number;
  /** Score only the pairs the run held out (its seed and val fraction), not those it trained on. */
  heldOut?: boolean;
  /** Score at most this many pairs, spread evenly over the file (default: all). */
  maxPairs?: number;
}

export interface T5Evaluation extends T5Score {
  checkpointDir: string;
  /** Pairs left out by the model's length limits (and, with heldOut, the training pairs). */
  skipped: string | undefined;
  seconds: number;
}

/** Scores a T5 checkpoint (a run dir means its best/) on a file of pairs, on the current tfjs backend. */
export async function evaluateT5Checkpoint(dir: string, corpus: PairInput, options: T5EvaluationOptions): Promise<T5Evaluation> {
  const started = performance.now();
  const checkpoint = await readT5Checkpoint(dir);
  const config = checkpoint.manifest.model;
  const hyperparameters = checkpoint.manifest.training.hyperparameters as { valFraction?: number; seed?: number };
  const split = options.heldOut ? { valFraction: hyperparameters.valFraction ?? 0.1, seed: hyperparameters.seed ?? 1 } : { valFraction: 0 };
  const set = await loadPairSet(corpus, checkpoint.tokenizer, { ...config, ...split });
  const pairs = options.heldOut ? set.val : set.train;
  const chosen = options.maxPairs === undefined ? pairs : evenlySpaced(pairs, options.maxPairs);
  const model = createT5(config);
  try {
    setT5Weights(model, checkpoint.weights);
    const score = await scoreT5(model, checkpoint.tokenizer, chosen, { batchSize: options.batchSize });
    const skipped = [describePairSkips(set.skips, config), options.heldOut ? `left out the ${set.train.length} pairs the run trained on` : undefined].filter(Boolean).join('; ');
    return { ...score, checkpointDir: checkpoint.dir, skipped: skipped || undefined, seconds: (performance.now() - started) / 1000 };
  } finally {
    disposeT5(model);
  }
}

/** `count` items spread evenly over `items` (all when fewer): sorted files (a dictionary by headword) are sampled across, not from their start. */
export function evenlySpaced<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]!);
}
