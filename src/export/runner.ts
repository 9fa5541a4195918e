/**
 * Drives an exported language-model graph with onnxruntime-node at the level of whole calls:
 * builds the feeds of docs/FORMATS.md (zero state, empty past, masks, positions) and carries the
 * state/KV outputs from one call to the next. Verification and perplexity use it; decoding as a
 * runtime does goes through ferry's decoders over `decoderSession`.
 */
import * as ort from 'onnxruntime-node';
import { FerryError } from '../errors.ts';
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

/**
 * One intra-op thread: verification runs tiny batches, where ORT's spinning thread pool only costs.
 * ORT logs only fatal errors: a graph it refuses reaches the user as one FerryError carrying ORT's
 * message (onnxFailure), not as that message and a second copy of it in ORT's coloured log.
 */
export async function createSession(bytes: Uint8Array, threads = 1, sourceNames: readonly string[] = []): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 4 });
  } catch (error) {
    throw onnxFailure(error, 'load', sourceNames);
  }
}

/** `session.run`, with onnxruntime's failure as one FerryError naming the node (see onnxFailure). */
export async function runSession(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, sourceNames: readonly string[] = []): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds);
  } catch (error) {
    throw onnxFailure(error, 'run', sourceNames);
  }
}

/**
 * onnxruntime refusing the exported graph (at load: a type or shape it infers differently) or
 * failing while it runs: one FerryError that names the node in the user's words. ORT names its
 * nodes by ferry's scopes ("conv/Conv", "conv/Relu_output_0_nchwc"), which start with the source
 * node's or layer's name: the longest of `sourceNames` that prefixes it is the one to name.
 */
export function onnxFailure(error: unknown, stage: 'load' | 'run', sourceNames: readonly string[] = []): FerryError {
  const raw = error instanceof Error ? error.message : String(error);
  // The first line, without ORT's source paths ("/onnxruntime_src/...cc:84 onnxruntime::Foo(...) ").
  const message = raw.split('\n')[0]!.replace(/\/onnxruntime_src\/\S+ \S+\([^)]*\)(?: const)? /g, '').trim().slice(0, 400);
  const onnxNode = /[Nn]ode \(([^)]+)\)|Name:'([^']+)'/.exec(raw);
  const scoped = onnxNode?.[1] ?? onnxNode?.[2];
  const source = scoped === undefined ? undefined : [...sourceNames].sort((a, b) => b.length - a.length).find((n) => scoped === n || scoped.startsWith(`${n}/`));
  const where = source !== undefined ? ` at node ${source}` : scoped !== undefined ? ` at its node ${scoped}` : '';
  return new FerryError('export_onnx_failed', `onnxruntime cannot ${stage} the exported ONNX graph${where}: ${message}`, {
    hint: 'Unless model.json is damaged, this is a ferry exporter bug: please report it with the model.json. --no-verify writes the package without this check (onnxruntime will refuse it the same way).',
    status: 500,
    cause: error,
  });
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
  const out = await runSession(session, feeds);
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
