/**
 * Drives an exported language-model graph with onnxruntime-node: builds the feeds of
 * docs/FORMATS.md (zero state, empty past, masks, positions) and carries the state/KV outputs
 * from one call to the next. Verification and perplexity use it.
 */
import * as ort from 'onnxruntime-node';
import type { LanguageModelSpec } from './lm/spec.ts';

export type LmState = Record<string, ort.Tensor>;

export interface LmStep {
  /** [batch, seq, vocab], row-major. */
  logits: Float32Array;
  state: LmState;
}

/** One intra-op thread: verification runs tiny batches, where ORT's spinning thread pool only costs. */
export function createSession(bytes: Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 });
}

export function int64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

/** The state before the first token: zeros for an LSTM, an empty past for a Transformer. */
export function initialState(spec: LanguageModelSpec, batch: number): LmState {
  const state: LmState = {};
  for (let l = 0; l < spec.layers; l++) {
    if (spec.arch === 'lstm') {
      state[`past_h.${l}`] = new ort.Tensor('float32', new Float32Array(batch * spec.hiddenSize), [batch, spec.hiddenSize]);
      if (spec.withCell) state[`past_c.${l}`] = new ort.Tensor('float32', new Float32Array(batch * spec.hiddenSize), [batch, spec.hiddenSize]);
    } else {
      for (const part of ['key', 'value']) {
        state[`past_key_values.${l}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [batch, spec.heads, 0, spec.headDim]);
      }
    }
  }
  return state;
}

/** Past length of a Transformer state (0 for LSTM). */
function pastLength(spec: LanguageModelSpec, state: LmState): number {
  return spec.arch === 'transformer' ? Number(state['past_key_values.0.key']!.dims[2]) : 0;
}

/**
 * One call: `ids` [batch][seq] (equal lengths); `mask` [batch][past + seq] for a Transformer
 * (all ones when left out). Positions are cumsum(mask) - 1, as transformers.js computes them.
 */
export async function runStep(session: ort.InferenceSession, spec: LanguageModelSpec, ids: number[][], state: LmState, mask?: number[][]): Promise<LmStep> {
  const batch = ids.length;
  const seq = ids[0]!.length;
  const feeds: Record<string, ort.Tensor> = { ...state, input_ids: int64(ids.flat(), [batch, seq]) };
  if (spec.arch === 'transformer') {
    const total = pastLength(spec, state) + seq;
    const fullMask = mask ?? ids.map(() => new Array<number>(total).fill(1));
    feeds.attention_mask = int64(fullMask.flat(), [batch, total]);
    feeds.position_ids = int64(fullMask.flatMap((row) => {
      let count = 0;
      const positions = row.map((m) => Math.max(0, (count += m) - 1));
      return positions.slice(total - seq);
    }), [batch, seq]);
  }
  const out = await session.run(feeds);
  const next: LmState = {};
  for (const name of Object.keys(state)) {
    const present = name.replace('past_key_values.', 'present.').replace('past_', 'present_');
    next[name] = out[present]!;
  }
  return { logits: out.logits!.data as Float32Array, state: next };
}

/**
 * Token-by-token decoding the way ferry's server does it (src/serve/slab-decoder.ts): each row's
 * cache is a buffer of the whole context, its unused positions masked, and only the new K/V
 * (`new_key_values.*`) are fetched and written into it. Returns the logits, [batch, steps, vocab].
 */
export async function decodeWithFixedCache(session: ort.InferenceSession, spec: Extract<LanguageModelSpec, { arch: 'transformer' }>, ids: number[][]): Promise<Float32Array> {
  const { heads, headDim, contextLength: capacity, vocabSize, layers } = spec;
  const rows = ids.length;
  const steps = ids[0]!.length;
  const parts = Array.from({ length: layers }, (_, l) => ['key', 'value'].map((part) => [`past_key_values.${l}.${part}`, `new_key_values.${l}.${part}`] as const)).flat();
  const cache = parts.map(() => new Float32Array(rows * heads * capacity * headDim));
  const logits = new Float32Array(rows * steps * vocabSize);
  for (let t = 0; t < steps; t++) {
    const mask = ids.flatMap(() => Array.from({ length: capacity + 1 }, (_, j) => (j < t || j === capacity ? 1 : 0)));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64(ids.map((row) => row[t]!), [rows, 1]),
      attention_mask: int64(mask, [rows, capacity + 1]),
      position_ids: int64(ids.map(() => t), [rows, 1]),
    };
    parts.forEach(([past], i) => (feeds[past] = new ort.Tensor('float32', cache[i]!, [rows, heads, capacity, headDim])));
    const out = await session.run(feeds, ['logits', ...parts.map(([, fresh]) => fresh)]);
    parts.forEach(([, fresh], i) => {
      const data = out[fresh]!.data as Float32Array;
      for (let r = 0; r < rows * heads; r++) cache[i]!.set(data.subarray(r * headDim, (r + 1) * headDim), (r * capacity + t) * headDim);
    });
    const stepLogits = out.logits!.data as Float32Array;
    for (let r = 0; r < rows; r++) logits.set(stepLogits.subarray(r * vocabSize, (r + 1) * vocabSize), (r * steps + t) * vocabSize);
  }
  return logits;
}

/** Mean negative log-likelihood per token of `ids` (next-token prediction), in windows of the context. */
export async function meanNll(session: ort.InferenceSession, spec: LanguageModelSpec, ids: number[]): Promise<number> {
  const window = spec.arch === 'transformer' ? spec.contextLength : ids.length;
  let total = 0;
  let count = 0;
  for (let start = 0; start + 1 < ids.length; start += window - 1) {
    const chunk = ids.slice(start, start + window);
    if (chunk.length < 2) break;
    const { logits } = await runStep(session, spec, [chunk], initialState(spec, 1));
    const v = spec.vocabSize;
    for (let t = 0; t + 1 < chunk.length; t++) {
      const row = logits.subarray(t * v, (t + 1) * v);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      total += Math.log(sum) + max - row[chunk[t + 1]!]!;
      count++;
    }
  }
  return total / count;
}
