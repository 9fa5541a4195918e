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

/**
 * The candidates left after temperature, top-k, top-p and min-p, as token ids with their
 * renormalised probabilities, most probable first.
 */
export function filteredDistribution(logits: Float32Array, params: SamplingParams): { ids: number[]; probs: number[] } {
  const scaled = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    scaled[i] = logits[i]! / params.temperature;
    if (scaled[i]! > max) max = scaled[i]!;
  }
  let ids = params.topK > 0 && params.topK < logits.length ? topIds(scaled, params.topK) : Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => scaled[b]! - scaled[a]! || a - b);

  let probs = ids.map((i) => Math.exp(scaled[i]! - max));
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);

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

/** The ids of the k largest values (ties: lower id first), unordered; O(n log k). */
function topIds(values: Float64Array, k: number): number[] {
  // A min-heap of the best k so far, keyed by (value, -id).
  const heap: number[] = [];
  const worse = (a: number, b: number) => values[a]! < values[b]! || (values[a] === values[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let id = 0; id < values.length; id++) {
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i]!, heap[parent]!)) break;
        [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
        i = parent;
      }
    } else if (worse(heap[0]!, id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap;
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
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += weights[i] = Math.exp((logits[i]! - max) / temperature);
  let target = r * total;
  for (let i = 0; i < weights.length; i++) {
    target -= weights[i]!;
    if (target < 0) return i;
  }
  return weights.length - 1;
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
