/**
 * Scores a T5 model on held-out pairs: the teacher-forced loss (nats per target token, eos
 * included, weighted by tokens across batches), its perplexity, and what greedy decoding gets
 * right: exact match (the whole target) and the character error rate (edit distance over code
 * points, summed, over the targets' code points), as translation and transliteration tasks report.
 */
import type { Tokenizer } from '../tokenizer/index.ts';
import type { EncodedPair } from './data/pair-set.ts';
import { sequentialPairBatches } from './data/pair-batches.ts';
import { greedyGenerate, t5Loss, type T5Model } from './models/t5.ts';

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
