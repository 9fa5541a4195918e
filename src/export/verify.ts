/**
 * Export-time verification: the tfjs model and the ONNX graph (onnxruntime-node) on the same
 * inputs — batch 1 and 3, two sequence lengths, random ids and real text — plus decoding with
 * ferry's own decoders (src/package: the LSTM state, the concatenated KV cache and, where the
 * graph gives the new K/V alone, the server's slab cache) against the full-sequence logits, a
 * prompt continued in a second chunk, and (Transformer) a left-padded batch against the unpadded
 * rows. Fails above the tolerance.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { FerryError } from '../errors.ts';
import { createDecoder, type Decoder, type SequenceState } from '../package/decoder.ts';
import { graphKeepsOwnCache } from '../package/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import type { AttentionForm } from './converters/types.ts';
import { stateOfSpec, type LanguageModelSpec } from './lm/spec.ts';
import { freeAxisSizes } from './free-axes.ts';
import { createSession, decoderSession, initialState, runSession, runStep } from './runner.ts';
import { mulberry32 } from '../random.ts';

export const FP32_TOLERANCE = 1e-4;

/** A paragraph of plain English for the real-text check and the perplexity of quantized files. */
export const SAMPLE_TEXT =
  'First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. ' +
  'First Citizen: You are all resolved rather to die than to famish? All: Resolved. resolved. ' +
  'First Citizen: First, you know Caius Marcius is chief enemy to the people. ' +
  'We know it, we know it. Let us kill him, and we will have corn at our own price. ' +
  "Is't a verdict? No more talking on't; let it be done: away, away!";

/** Long enough for the slab cache to widen its span (16 positions at a time) while decoding. */
const DECODE_LENGTH = 20;

export interface ParityCase {
  name: string;
  maxAbsDiff: number;
  /** The largest |value| tfjs gave: the tolerance scales with it when it is above 1. */
  scale?: number;
}

// A type, not an interface, so that it fits the manifest's open parity entry (src/package/manifest.ts).
export type ParityReport = {
  maxAbsDiff: number;
  /** The largest max |diff| / max(1, scale) of the cases: what the tolerance bounds. */
  maxRelativeDiff: number;
  tolerance: number;
  cases: ParityCase[];
};

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** A seeded generator (mulberry32), so that a failing export is reproducible. */
export const seededRandom = mulberry32;

function tfjsLogits(model: tf.LayersModel, ids: number[][]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32')) as tf.Tensor).dataSync() as Float32Array);
}

/** The ids of SAMPLE_TEXT under `tokenizer`, keeping only the characters it can encode. */
export function sampleIds(tokenizer: Tokenizer): number[] {
  const encodable = [...SAMPLE_TEXT].filter((ch) => {
    try {
      return tokenizer.encode(ch).length > 0;
    } catch {
      return false;
    }
  });
  try {
    return tokenizer.encode(encodable.join(''));
  } catch {
    return [];
  }
}

const relativeDiff = (c: ParityCase) => c.maxAbsDiff / Math.max(1, c.scale ?? 0);

/** Logs every case and throws export_parity when one is over `tolerance` (relative to its scale above 1). */
export function checkParityCases(cases: ParityCase[], tolerance: number, log: (line: string) => void, what: string): ParityReport {
  for (const c of cases) log(`  ${c.name.padEnd(44)} max |diff| ${c.maxAbsDiff.toExponential(2)}${c.scale !== undefined && c.scale > 1 ? ` (scale ${c.scale.toPrecision(3)})` : ''}`);
  const worst = Math.max(...cases.map((c) => c.maxAbsDiff));
  const relative = Math.max(...cases.map(relativeDiff));
  if (!(relative <= tolerance)) {
    const bad = cases.filter((c) => !(relativeDiff(c) <= tolerance)).map((c) => `${c.name}: ${c.maxAbsDiff.toExponential(2)}`);
    throw new FerryError('export_parity', `${what} differs from the tfjs model by more than ${tolerance}: ${bad.join('; ')}`, {
      hint: 'This is an exporter bug for this model: please report it with the model.json. Use --no-verify to write the file anyway.',
      status: 500,
    });
  }
  return { maxAbsDiff: worst, maxRelativeDiff: relative, tolerance, cases };
}

/** Max |diff| between token-by-token decoding of `ids` [batch][steps] and `full`, its [batch, steps, vocab] logits. */
async function incrementalDiff(session: ort.InferenceSession, spec: LanguageModelSpec, ids: number[][], full: Float32Array): Promise<number> {
  const [batch, steps, v] = [ids.length, ids[0]!.length, spec.vocabSize];
  let state = initialState(spec, batch);
  let worst = 0;
  for (let t = 0; t < steps; t++) {
    const step = await runStep(session, spec, ids.map((row) => [row[t]!]), state);
    state = step.state;
    for (let b = 0; b < batch; b++) {
      worst = Math.max(worst, maxAbsDiff(step.logits.subarray(b * v, (b + 1) * v), full.subarray((b * steps + t) * v, (b * steps + t + 1) * v)));
    }
  }
  return worst;
}

export async function verifyLanguageModel(
  model: tf.LayersModel,
  onnx: Uint8Array,
  spec: LanguageModelSpec,
  options: { tokenizer?: Tokenizer; attention?: AttentionForm; tolerance?: number; log?: (line: string) => void } = {},
): Promise<ParityReport> {
  const log = options.log ?? (() => {});
  const session = await createSession(onnx);
  const random = seededRandom(1234);
  const randomIds = (batch: number, seq: number) =>
    Array.from({ length: batch }, () => Array.from({ length: seq }, () => Math.floor(random() * spec.vocabSize)));
  const context = spec.arch === 'transformer' ? spec.contextLength : 64;
  const lengths = [Math.min(5, context), Math.min(17, context)];
  const cases: ParityCase[] = [];

  const compare = async (name: string, ids: number[][]) => {
    const { logits } = await runStep(session, spec, ids, initialState(spec, ids.length));
    cases.push({ name, maxAbsDiff: maxAbsDiff(logits, tfjsLogits(model, ids)) });
  };
  for (const batch of [1, 3]) for (const seq of lengths) await compare(`random ids, batch ${batch}, length ${seq}`, randomIds(batch, seq));

  const text = options.tokenizer ? sampleIds(options.tokenizer).slice(0, spec.arch === 'transformer' ? context : 512) : [];
  if (text.length > 1) await compare(`sample text, ${text.length} tokens`, [text]);

  // ferry's decoders over this session, as `ferry serve`, the browser and the edge run them.
  const decoded = randomIds(2, Math.min(DECODE_LENGTH, context));
  const L = decoded[0]!.length;
  const fork = [...decoded[0]!.slice(0, Math.min(3, L - 1)), ...randomIds(1, L - Math.min(3, L - 1))[0]!];
  const decodeRows = [...decoded, fork];
  const decodeFull = tfjsLogits(model, decodeRows);
  const served = decoderSession(session);
  const decoders: [string, Decoder][] = [[spec.arch === 'lstm' ? 'LSTM state' : 'concat KV cache', createDecoder(served, stateOfSpec(spec), spec.vocabSize, spec.arch === 'lstm' ? null : context)]];
  if (spec.arch === 'transformer' && graphKeepsOwnCache(session.outputNames)) {
    decoders.push(['server slab cache', createDecoder(served, stateOfSpec(spec), spec.vocabSize, context, { ownCache: true })]);
  }
  for (const [what, decoder] of decoders) {
    cases.push({ name: `${what} decode, 3 sequences, ${L} tokens`, maxAbsDiff: await decodeAgainstFull(decoder, decodeRows, decodeFull) });
  }

  const steps = decoded.map((row) => row.slice(0, Math.min(9, L)));
  const full = tfjsLogits(model, steps);
  const T = steps[0]!.length;
  const v = spec.vocabSize;

  // Two chunks (a prompt continued with past > 0 and several new tokens: the causal mask must be
  // aligned bottom-right) == the full sequence. ORT's GroupQueryAttention takes such a chunk only
  // at batch 1.
  if (T >= 4) {
    const split = Math.floor(T / 2);
    const rows = options.attention === 'gqa' ? 1 : 2;
    const chunks = steps.slice(0, rows);
    const first = await runStep(session, spec, chunks.map((row) => row.slice(0, split)), initialState(spec, rows));
    const second = await runStep(session, spec, chunks.map((row) => row.slice(split)), first.state);
    let chunked = 0;
    for (let b = 0; b < rows; b++) {
      chunked = Math.max(chunked, maxAbsDiff(first.logits.subarray(b * split * v, (b + 1) * split * v), full.subarray(b * T * v, (b * T + split) * v)));
      const rest = T - split;
      chunked = Math.max(chunked, maxAbsDiff(second.logits.subarray(b * rest * v, (b + 1) * rest * v), full.subarray((b * T + split) * v, (b + 1) * T * v)));
    }
    cases.push({ name: `chunked prefill, batch ${rows}, ${split} + ${T - split} tokens`, maxAbsDiff: chunked });
  }

  if (spec.arch === 'transformer' && context >= 5) {
    // Row 1 is row 0's prefix, left-padded: its real positions must match the unpadded run.
    const pad = 3;
    const row = randomIds(1, Math.min(9, context))[0]!;
    const short = row.slice(0, row.length - pad);
    const padded = await runStep(session, spec, [row, [...new Array<number>(pad).fill(0), ...short]], initialState(spec, 2), [
      row.map(() => 1),
      [...new Array<number>(pad).fill(0), ...short.map(() => 1)],
    ]);
    const alone = await runStep(session, spec, [short], initialState(spec, 1));
    const offset = (row.length + pad) * v;
    const paddedRow = padded.logits.subarray(offset, offset + short.length * v);
    cases.push({ name: `left-padded batch (${pad} pads) vs unpadded`, maxAbsDiff: maxAbsDiff(paddedRow, alone.logits) });
    if (padded.logits.some((x) => Number.isNaN(x))) cases.push({ name: 'NaN in padded rows', maxAbsDiff: Infinity });
  }
  await session.release();
  return checkParityCases(cases, options.tolerance ?? FP32_TOLERANCE, log, 'The ONNX graph');
}

/**
 * Decodes `rows` the way the scheduler does, against the full-sequence logits `full` [rows, L,
 * vocab]: rows 0 and 1 are prefilled together with prompts of different lengths (left padding),
 * row 2 continues row 0's prefilled state with other tokens (the n choices of one prompt), and
 * the rows step together, leaving the batch as their tokens run out. Returns the worst |diff|.
 */
async function decodeAgainstFull(decoder: Decoder, rows: number[][], full: Float32Array): Promise<number> {
  const L = rows[0]!.length;
  const v = decoder.vocabSize;
  const shared = Math.min(3, L - 1);
  const prompts = [shared, 1, shared];
  const expected = (row: number, from: number, to: number) => full.subarray((row * L + from) * v, (row * L + to) * v);
  const prefilled = await decoder.prefill([rows[0]!.slice(0, shared), rows[1]!.slice(0, 1)]);
  let worst = Math.max(...prefilled.map((p, r) => maxAbsDiff(p.logits, expected(r, 0, prompts[r]!))));
  const states: SequenceState[] = [prefilled[0]!.state, prefilled[1]!.state, prefilled[0]!.state];
  for (let t = 0; ; t++) {
    const active = rows.map((_, r) => r).filter((r) => prompts[r]! + t < L);
    if (!active.length) break;
    const step = await decoder.step(active.map((r) => ({ state: states[r]!, token: rows[r]![prompts[r]! + t]! })));
    active.forEach((r, i) => {
      const at = prompts[r]! + t;
      worst = Math.max(worst, maxAbsDiff(step.logits.subarray(i * v, (i + 1) * v), expected(r, at, at + 1)));
      states[r] = step.states[i]!;
    });
  }
  return worst;
}

/**
 * A foreign model: random inputs shaped like the model's (ids for an Embedding input), free axes
 * at two sizes from the receptive field, outputs by name, each within the tolerance times its
 * scale. The reference is tfjs's cpu backend (other backends are not always right).
 */
export async function verifyForeignModel(
  model: tf.LayersModel,
  onnx: Uint8Array,
  options: { tolerance?: number; log?: (line: string) => void } = {},
): Promise<ParityReport> {
  // ferry scopes each layer's ONNX nodes by the layer's name: what onnxruntime names, the user knows by it.
  const layerNames = model.layers.map((l) => l.name);
  const session = await createSession(onnx, 1, layerNames);
  const random = seededRandom(99);
  const cases: ParityCase[] = [];
  const backend = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    for (const batch of [1, 3]) {
      for (const size of freeAxisSizes(model)) {
        // Each free axis a different size, so that swapped axes (height and width) show.
        const tensors = model.inputs.map((input, i) => {
          const shape = input.shape.map((d, axis) => d ?? (axis === 0 ? batch : size + axis - 1));
          const count = shape.reduce((a, b) => a * b, 1);
          const vocab = idRange(model, i);
          const data = Float32Array.from({ length: count }, () => (vocab ? Math.floor(random() * vocab) : random() * 2 - 1));
          return { shape, data, dtype: input.dtype };
        });
        const feeds: Record<string, ort.Tensor> = {};
        session.inputNames.forEach((name, i) => {
          const t = tensors[i]!;
          feeds[name] = t.dtype === 'int32'
            ? new ort.Tensor('int32', Int32Array.from(t.data), t.shape)
            : new ort.Tensor('float32', t.data, t.shape);
        });
        const out = await runSession(session, feeds, layerNames);
        const what = tensors[0]!.shape.slice(1).join('x');
        const expected = tfjsPredict(model, tensors, `batch ${batch}, ${what}`);
        session.outputNames.forEach((name, i) => {
          const reference = expected[i]!;
          cases.push({ name: `${name}, batch ${batch}, ${what}`, maxAbsDiff: maxAbsDiff(out[name]!.data as Float32Array, reference), scale: largestMagnitude(reference) });
        });
      }
    }
  } finally {
    await tf.setBackend(backend);
    await session.release();
  }
  return checkParityCases(cases, options.tolerance ?? FP32_TOLERANCE, options.log ?? (() => {}), 'The ONNX graph');
}

/** tfjs's outputs; tfjs failing to run its own model is the user's problem to see, not a trace. */
function tfjsPredict(model: tf.LayersModel, tensors: { shape: number[]; data: Float32Array; dtype: string }[], what: string): Float32Array[] {
  try {
    return tf.tidy(() => {
      const inputs = tensors.map((t) => tf.tensor(t.data, t.shape, t.dtype === 'int32' ? 'int32' : 'float32'));
      const result = model.predict(inputs.length === 1 ? inputs[0]! : inputs);
      return (Array.isArray(result) ? result : [result]).map((r) => r.dataSync() as Float32Array);
    });
  } catch (error) {
    throw new FerryError('export_tfjs_failed', `tfjs cannot run the model for verification (${what}): ${(error as Error).message.split('\n')[0]}`, {
      hint: 'Check that the model runs in tfjs (LayersModel.predict) on inputs of this shape, or pass --no-verify to write the file unverified.',
      status: 422,
      cause: error,
    });
  }
}

function largestMagnitude(values: Float32Array): number {
  let max = 0;
  for (const v of values) max = Math.max(max, Math.abs(v));
  return max;
}

/** The vocabulary size when input `i` feeds an Embedding (so random inputs must be valid ids). */
function idRange(model: tf.LayersModel, i: number): number | undefined {
  const inputLayer = (model.inputs[i] as unknown as { sourceLayer: { outboundNodes: { outboundLayer: tf.layers.Layer }[] } }).sourceLayer;
  const dims = inputLayer.outboundNodes
    .map((n) => n.outboundLayer.getConfig())
    .map((c) => c.inputDim as number | undefined)
    .filter((d): d is number => typeof d === 'number');
  return dims.length ? Math.min(...dims) : model.inputs[i]!.dtype === 'int32' ? 2 : undefined;
}

/**
 * What a smaller copy (int8, fp16) must keep of its fp32 file: bounds on max |diff| of the
 * logits, as fractions of the fp32 logits' largest magnitude (at least 1), so that one bound fits
 * a tiny test model and a trained one whose logits reach 15.
 */
export interface VariantBounds {
  /** Against the fp32 file's logits. */
  relativeToFp32: number;
  /** Token-by-token decoding against the copy's own full-sequence logits. */
  incremental: number;
}

export interface VariantParity {
  maxAbsDiff: number;
  tolerance: number;
  incrementalMaxAbsDiff: number;
  incrementalTolerance: number;
}

/**
 * A smaller copy against its fp32 file: the logits of `text` (one call, within the context), and
 * token-by-token decoding of random ids against the copy's own full-sequence logits, so that the
 * state outputs of the copy carry what its full run computes. Throws when a bound is exceeded:
 * such a file would generate different text than the export promises.
 */
export async function verifyVariant(
  label: string,
  variant: ort.InferenceSession,
  fp32: ort.InferenceSession,
  spec: LanguageModelSpec,
  text: number[],
  bounds: VariantBounds,
): Promise<VariantParity> {
  const window = text.slice(0, spec.arch === 'transformer' ? spec.contextLength : 512);
  const reference = (await runStep(fp32, spec, [window], initialState(spec, 1))).logits;
  const scale = reference.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const logitsDiff = maxAbsDiff((await runStep(variant, spec, [window], initialState(spec, 1))).logits, reference);
  const random = seededRandom(4321);
  const ids = Array.from({ length: 2 }, () => Array.from({ length: Math.min(9, spec.arch === 'transformer' ? spec.contextLength : 9) }, () => Math.floor(random() * spec.vocabSize)));
  const full = (await runStep(variant, spec, ids, initialState(spec, ids.length))).logits;
  const parity = {
    maxAbsDiff: logitsDiff,
    tolerance: bounds.relativeToFp32 * Math.max(1, scale),
    incrementalMaxAbsDiff: await incrementalDiff(variant, spec, ids, full),
    incrementalTolerance: bounds.incremental * Math.max(1, scale),
  };
  const failures = [
    !(parity.maxAbsDiff <= parity.tolerance) && `its logits differ from the fp32 file's by ${parity.maxAbsDiff.toExponential(2)} (bound ${parity.tolerance.toExponential(2)})`,
    !(parity.incrementalMaxAbsDiff <= parity.incrementalTolerance) && `token-by-token decoding differs from its own full-sequence logits by ${parity.incrementalMaxAbsDiff.toExponential(2)} (bound ${parity.incrementalTolerance.toExponential(2)})`,
  ].filter(Boolean);
  if (failures.length) {
    throw new FerryError('export_parity', `The ${label} copy fails its parity check: ${failures.join('; ')}`, {
      hint: `Export without the ${label} copy, or report this model: the file was not written.`,
      status: 500,
    });
  }
  return parity;
}
