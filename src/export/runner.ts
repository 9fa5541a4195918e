/**
 * Drives an exported language-model graph with onnxruntime-node at the level of whole calls:
 * builds the feeds of docs/FORMATS.md (zero state, empty past, masks, positions) and carries the
 * state/KV outputs from one call to the next. Verification and perplexity use it; decoding as a
 * runtime does goes through ferry's decoders over `decoderSession`.
 */
import * as ort from 'onnxruntime-node';
import { ATTENTION_MASK, INPUT_IDS, LOGITS, lstmNames, POSITION_IDS, transformerNames } from '../package/index.ts';
import { wrapOrtSession } from '../package/ort-session.ts';
import type { Session } from '../package/session.ts';
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

/** The same session as ferry's decoders see it (src/package/session.ts). */
export function decoderSession(session: ort.InferenceSession): Session {
  return wrapOrtSession(ort.Tensor, session, 'onnxruntime-node cpu');
}

export function int64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

/** The state inputs and the outputs that carry them to the next call, pairwise. */
function stateNames(spec: LanguageModelSpec) {
  return spec.arch === 'lstm' ? lstmNames(spec.layers, { withCell: spec.withCell }) : transformerNames(spec.layers);
}

/** The state before the first token: zeros for an LSTM, an empty past for a Transformer. */
export function initialState(spec: LanguageModelSpec, batch: number): LmState {
  const state: LmState = {};
  for (const name of stateNames(spec).past) {
    state[name] = spec.arch === 'lstm'
      ? new ort.Tensor('float32', new Float32Array(batch * spec.hiddenSize), [batch, spec.hiddenSize])
      : new ort.Tensor('float32', new Float32Array(0), [batch, spec.heads, 0, spec.headDim]);
  }
  return state;
}

/** Past length of a Transformer state (0 for LSTM). */
function pastLength(spec: LanguageModelSpec, state: LmState): number {
  return spec.arch === 'transformer' ? Number(state[stateNames(spec).past[0]!]!.dims[2]) : 0;
}

/**
 * One call: `ids` [batch][seq] (equal lengths); `mask` [batch][past + seq] for a Transformer
 * (all ones when left out). Positions are cumsum(mask) - 1, as transformers.js computes them.
 */
export async function runStep(session: ort.InferenceSession, spec: LanguageModelSpec, ids: number[][], state: LmState, mask?: number[][]): Promise<LmStep> {
  const batch = ids.length;
  const seq = ids[0]!.length;
  const feeds: Record<string, ort.Tensor> = { ...state, [INPUT_IDS]: int64(ids.flat(), [batch, seq]) };
  if (spec.arch === 'transformer') {
    const total = pastLength(spec, state) + seq;
    const fullMask = mask ?? ids.map(() => new Array<number>(total).fill(1));
    feeds[ATTENTION_MASK] = int64(fullMask.flat(), [batch, total]);
    feeds[POSITION_IDS] = int64(fullMask.flatMap((row) => {
      let count = 0;
      const positions = row.map((m) => Math.max(0, (count += m) - 1));
      return positions.slice(total - seq);
    }), [batch, seq]);
  }
  const out = await session.run(feeds);
  const { past, present } = stateNames(spec);
  const next: LmState = {};
  past.forEach((name, i) => (next[name] = out[present[i]!]!));
  return { logits: out[LOGITS]!.data as Float32Array, state: next };
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
      total += negativeLogLikelihood(logits.subarray(t * v, (t + 1) * v), chunk[t + 1]!);
      count++;
    }
  }
  return total / count;
}

/** -log softmax(scores)[target], with the max subtracted first. */
export function negativeLogLikelihood(scores: Float32Array, target: number): number {
  let max = -Infinity;
  for (const x of scores) max = Math.max(max, x);
  let sum = 0;
  for (const x of scores) sum += Math.exp(x - max);
  return Math.log(sum) + max - scores[target]!;
}
