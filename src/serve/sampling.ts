/**
 * Turning one position's logits into the next token. Pure functions over Float32Array logits;
 * the order is the one Hugging Face uses: penalties and bias, then temperature, then the
 * top-k / top-p / min-p filters, then a draw from a seeded PRNG (greedy when temperature is 0).
 */
import { mulberry32 } from '../random.ts';

export interface SamplingParams {
  /** 0 means greedy (argmax, lowest id on ties). */
  temperature: number;
  /** 0 disables. */
  topK: number;
  /** 1 disables. */
  topP: number;
  /** 0 disables: keeps tokens with probability >= minP * (the top probability). */
  minP: number;
  /** 1 disables; CTRL-style: positive logits divided by it, negative ones multiplied. */
  repetitionPenalty: number;
  /** OpenAI-style: logit -= count * frequencyPenalty + (count > 0) * presencePenalty. */
  frequencyPenalty: number;
  presencePenalty: number;
  logitBias: ReadonlyMap<number, number>;
}

export const GREEDY: SamplingParams = {
  temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, logitBias: new Map(),
};

export type Random = () => number;

/**
 * A small seeded PRNG (SplitMix32 seeding + Mulberry32): the same seed gives the same stream on
 * every platform. Any safe integer is a seed, negative ones included.
 */
export function createRandom(seed: number): Random {
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  return mulberry32(mix32(low ^ mix32(high + 0x9e3779b9)));
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Token id -> how often it occurred in the prompt and the output so far. */
export type TokenCounts = Map<number, number>;

export function countTokens(ids: readonly number[]): TokenCounts {
  const counts: TokenCounts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Penalties and logit bias, applied to a copy. */
export function adjustLogits(logits: Float32Array, params: SamplingParams, counts: TokenCounts): Float32Array {
  const out = Float32Array.from(logits);
  const { repetitionPenalty, frequencyPenalty, presencePenalty } = params;
  if (repetitionPenalty !== 1 || frequencyPenalty !== 0 || presencePenalty !== 0) {
    for (const [id, count] of counts) {
      if (id >= out.length || count === 0) continue;
      let value = out[id]!;
      if (repetitionPenalty !== 1) value = value > 0 ? value / repetitionPenalty : value * repetitionPenalty;
      out[id] = value - count * frequencyPenalty - presencePenalty;
    }
  }
  for (const [id, bias] of params.logitBias) if (id < out.length) out[id] = out[id]! + bias;
  return out;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const logSum = max + Math.log(sum);
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - logSum;
  return out;
}

// Scratch space for filteredDistribution, reused across calls: sampling runs once per token of
// every stream, so fresh arrays each time would keep the garbage collector busy.
let scaledScratch = new Float64Array(0);
let selectScratch = new Float64Array(0);

/**
 * The candidates left after temperature, top-k, top-p and min-p, as token ids with their
 * renormalised probabilities, most probable first (ties: lower id first).
 */
export function filteredDistribution(logits: Float32Array, params: SamplingParams): { ids: number[]; probs: number[] } {
  const n = logits.length;
  if (scaledScratch.length < n) scaledScratch = new Float64Array(n);
  const scaled = scaledScratch;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const value = logits[i]! / params.temperature;
    scaled[i] = value;
    if (value > max) max = value;
  }
  let ids = params.topK > 0 && params.topK < n ? topIds(scaled, n, params.topK) : Array.from({ length: n }, (_, i) => i);
  mostLikelyFirst(ids, scaled);

  let probs = new Array<number>(ids.length);
  let total = 0;
  for (let k = 0; k < ids.length; k++) total += probs[k] = Math.exp(scaled[ids[k]!]! - max);
  for (let k = 0; k < probs.length; k++) probs[k] = probs[k]! / total;

  let keep = probs.length;
  if (params.topP < 1) {
    let cumulative = 0;
    for (let k = 0; k < probs.length; k++) {
      cumulative += probs[k]!;
      if (cumulative >= params.topP) {
        keep = k + 1;
        break;
      }
    }
  }
  if (params.minP > 0) {
    const floor = params.minP * probs[0]!;
    let k = 1;
    while (k < keep && probs[k]! >= floor) k++;
    keep = k;
  }
  if (keep < probs.length) {
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / total);
  }
  return { ids, probs };
}

/** Sorts ids by value, largest first, lower id first among equals: by insertion for the few that top-k leaves. */
function mostLikelyFirst(ids: number[], values: Float64Array): void {
  if (ids.length > 64) {
    ids.sort((a, b) => values[b]! - values[a]! || a - b);
    return;
  }
  for (let i = 1; i < ids.length; i++) {
    const id = ids[i]!;
    const value = values[id]!;
    let j = i - 1;
    for (; j >= 0 && (values[ids[j]!]! < value || (values[ids[j]!] === value && ids[j]! > id)); j--) ids[j + 1] = ids[j]!;
    ids[j + 1] = id;
  }
}

/**
 * The ids of the k largest of the first n values (ties: lower ids first), unordered: the k-th
 * largest value found by selection on a copy, then one pass for the ids above it and one for
 * the ties at it. O(n) on average.
 */
function topIds(values: Float64Array, n: number, k: number): number[] {
  if (selectScratch.length < n) selectScratch = new Float64Array(n);
  const work = selectScratch;
  work.set(values.subarray(0, n));
  const threshold = kthLargest(work, n, k - 1);
  const ids: number[] = [];
  for (let id = 0; id < n; id++) if (values[id]! > threshold) ids.push(id);
  for (let id = 0; id < n && ids.length < k; id++) if (values[id] === threshold) ids.push(id);
  // Only NaN logits leave it short: fill up in id order, as any token is as good as another then.
  for (let id = 0; id < n && ids.length < k; id++) if (!(values[id]! >= threshold)) ids.push(id);
  return ids;
}

/** The value at index k of `values[0..n)` sorted in descending order (Hoare's selection, in place). */
function kthLargest(values: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! > pivot) i++;
      while (values[j]! < pivot) j--;
      if (i <= j) {
        const swap = values[i]!;
        values[i++] = values[j]!;
        values[j--] = swap;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return values[k]!;
}

/** The next token: argmax for temperature 0, else one draw from the filtered distribution. */
export function sampleToken(logits: Float32Array, params: SamplingParams, counts: TokenCounts, random: Random): number {
  const adjusted = needsAdjusting(params) ? adjustLogits(logits, params, counts) : logits;
  if (params.temperature === 0) return argmax(adjusted);
  if (params.topP >= 1 && params.minP <= 0 && (params.topK <= 0 || params.topK >= adjusted.length)) return drawFromAll(adjusted, params.temperature, random());
  const { ids, probs } = filteredDistribution(adjusted, params);
  const r = random();
  let cumulative = 0;
  for (let k = 0; k < ids.length; k++) {
    cumulative += probs[k]!;
    if (r < cumulative) return ids[k]!;
  }
  return ids[ids.length - 1]!;
}

function needsAdjusting(params: SamplingParams): boolean {
  return params.repetitionPenalty !== 1 || params.frequencyPenalty !== 0 || params.presencePenalty !== 0 || params.logitBias.size > 0;
}

/** Plain softmax sampling over the whole vocabulary: no sort needed. */
function drawFromAll(logits: Float32Array, temperature: number, r: number): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  if (scaledScratch.length < logits.length) scaledScratch = new Float64Array(logits.length);
  const weights = scaledScratch;
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += weights[i] = Math.exp((logits[i]! - max) / temperature);
  let target = r * total;
  for (let i = 0; i < logits.length; i++) {
    target -= weights[i]!;
    if (target < 0) return i;
  }
  return logits.length - 1;
}

/** The k most probable tokens of a log-probability row, most probable first. */
export function topLogprobs(logprobs: Float32Array, k: number): { id: number; logprob: number }[] {
  if (k <= 0) return [];
  const best: { id: number; logprob: number }[] = [];
  for (let id = 0; id < logprobs.length; id++) {
    const logprob = logprobs[id]!;
    if (best.length === k && logprob <= best[k - 1]!.logprob) continue;
    let at = best.length;
    while (at > 0 && best[at - 1]!.logprob < logprob) at--;
    best.splice(at, 0, { id, logprob });
    if (best.length > k) best.pop();
  }
  return best;
}
