/**
 * The int8 and fp16 copies of a T5 package's two graphs, quantized as a language model's are
 * (src/export/quantize.ts: the merged decoder's If branches are rewritten too, wherever their
 * weights live), and each pair checked against the fp32 pair before it may be written, under the
 * bounds of T5_VARIANT_BOUNDS (wider than the language models' VARIANT_BOUNDS, see there):
 * - teacher-forced logits of a padded batch of sources (right and left padding) within
 *   `relativeToFp32` of the fp32 graphs' logits' scale;
 * - step-by-step decoding of the same target with both caches (the seq2seq decoder, as `ferry
 *   serve` runs it) within `incremental` of the copy's own teacher-forced logits, so that the
 *   copy's cache outputs carry what its full run computes;
 * - the greedy outputs of the copy beside the fp32 graphs' (a figure: a near-tie may flip).
 */
import * as ort from 'onnxruntime-node';
import { FerryError } from '../../errors.ts';
import { LOGITS, USE_CACHE_BRANCH } from '../../package/io.ts';
import { float32Output } from '../../package/decoder.ts';
import { wrapOrtSession } from '../../package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq, type Seq2SeqDecoder } from '../../package/seq2seq.ts';
import { int64, type Session } from '../../package/session.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import { T5_SPECIAL_IDS, type T5Config } from '../../train/models/t5-config.ts';
import type { Graph } from '../graph.ts';
import { quantizeInt8, weightsToFp16 } from '../quantize.ts';
import { createSession } from '../runner.ts';
import { VARIANT_BOUNDS, variantText, type VariantKey } from '../variants.ts';
import type { VariantBounds } from '../verify.ts';
import { serializeModel } from '../writer.ts';
import { t5DecoderGraph, t5EncoderGraph, type T5WeightMap } from './graph.ts';

/**
 * What the copies' checks allow, as fractions of the fp32 logits' scale (at least 1). The bounds
 * are there to catch a broken copy (a weight left out or misscaled, a branch not rewritten),
 * whose error is of the size of the logits, not to grade quantization noise, which is larger in
 * a T5 than in a language model of its width: the source passes through the encoder and again
 * through every decoder layer's cross-attention.
 *
 * int8 (activations quantized per call, 7-bit weights: the same integers on every CPU,
 * quantize.ts): t5-small-char at training's initialisation (d 256, 4 + 4 layers) differs from
 * fp32 by 7.2-7.6% and token by token from its own teacher-forced logits by 3.8-4.3%; tiny T5s
 * (d 32, 2 + 2) by 4.7% and 2.7%; the language models' 10% / 5% would leave a sound
 * t5-small-char copy a margin of 1.2x, so the T5 bounds are twice theirs. fp16 only rounds
 * weights (by up to 2^-11 of each) and computes in float32: the T5s above differ from fp32 by
 * 7-8e-4 of the logits' scale, a tiny one with weights four times training's scale by 1.5%, so
 * the language models' 1e-3 would refuse sound copies; token by token fp16 computes exactly as it
 * runs a sequence.
 */
export const T5_VARIANT_BOUNDS: Record<VariantKey, VariantBounds> = {
  int8: { relativeToFp32: 2 * VARIANT_BOUNDS.int8.relativeToFp32, incremental: 2 * VARIANT_BOUNDS.int8.incremental },
  fp16: { relativeToFp32: 1e-2, incremental: VARIANT_BOUNDS.fp16.incremental },
};

// A type, not an interface, so that it fits the manifest's open parity entry (src/package/manifest.ts).
export type T5VariantParity = {
  /** Teacher-forced logits against the fp32 graphs'. */
  maxAbsDiff: number;
  tolerance: number;
  /** Step-by-step decoding with both caches against the copy's own teacher-forced logits. */
  incrementalMaxAbsDiff: number;
  incrementalTolerance: number;
  /** The largest |logit| of the fp32 graphs, which the tolerances scale with (at least 1). */
  scale: number;
  /** Of the sources, how many the copy decodes greedily to the fp32 graphs' output. */
  greedySame: number;
  sources: number;
  cases: { name: string; maxAbsDiff: number }[];
  /** Encoder and decoder together. */
  bytes: number;
  fp32Bytes: number;
};

export interface T5Variants {
  encoder: Partial<Record<VariantKey, Graph>>;
  decoder: Partial<Record<VariantKey, Graph>>;
  parity: Partial<Record<VariantKey, T5VariantParity>>;
}

export interface T5VariantOptions {
  int8?: boolean;
  fp16?: boolean;
  /** Sources and targets for the checks are cut from its encoding of a sample text; fixed ids without one. */
  tokenizer?: Tokenizer;
  log?: (line: string) => void;
}

interface Pair {
  encoder: Session;
  decoder: Session;
  seq2seq: Seq2SeqDecoder;
  bytes: number;
  release(): Promise<void>;
}

async function openPair(config: T5Config, encoderBytes: Uint8Array, decoderBytes: Uint8Array): Promise<Pair> {
  const [encoderSession, decoderSession] = [await createSession(encoderBytes), await createSession(decoderBytes)];
  const encoder = wrapOrtSession(ort.Tensor, encoderSession, 'onnxruntime-node cpu');
  const decoder = wrapOrtSession(ort.Tensor, decoderSession, 'onnxruntime-node cpu');
  const seq2seq = createSeq2SeqDecoder(encoder, decoder, {
    vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv,
    startId: T5_SPECIAL_IDS.pad, eosId: T5_SPECIAL_IDS.eos, padId: T5_SPECIAL_IDS.pad,
  });
  return {
    encoder, decoder, seq2seq, bytes: encoderBytes.byteLength + decoderBytes.byteLength,
    release: async () => {
      await encoderSession.release();
      await decoderSession.release();
    },
  };
}

/** [rows, target length, vocab] logits of the whole target in one decoder run (no caches). */
async function teacherForced(pair: Pair, sources: number[][], target: number[], pad: 'left' | 'right'): Promise<Float32Array> {
  const batch = await pair.seq2seq.encode(sources, pad);
  const feeds = {
    ...batch.feeds,
    input_ids: int64([sources.length, target.length], sources.flatMap(() => target)),
    [USE_CACHE_BRANCH]: { dtype: 'bool' as const, dims: [1], data: Uint8Array.of(0) },
  };
  return float32Output(await pair.decoder.run(feeds), LOGITS);
}

/** The same logits, one decoder run per token with both caches fed back. */
async function stepByStep(pair: Pair, sources: number[][], target: number[], pad: 'left' | 'right', vocab: number): Promise<Float32Array> {
  const rows = sources.length;
  const out = new Float32Array(rows * target.length * vocab);
  let batch = await pair.seq2seq.encode(sources, pad);
  for (let t = 0; t < target.length; t++) {
    const step = await pair.seq2seq.step(batch, sources.map(() => target[t]!));
    batch = step.batch;
    for (let r = 0; r < rows; r++) out.set(step.logits.subarray(r * vocab, (r + 1) * vocab), (r * target.length + t) * vocab);
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

/**
 * Three sources of different lengths (one past relativeMaxDistance where the model allows, where
 * the buckets saturate), each ending in eos, and a target from the start token, cut from the
 * sample text's ids (or fixed ids).
 */
export function t5VariantInputs(config: T5Config, tokenizer?: Tokenizer): { sources: number[][]; target: number[] } {
  const specials = new Set<number>([T5_SPECIAL_IDS.pad, T5_SPECIAL_IDS.eos]);
  const text = variantText(tokenizer, config.vocabSize).map((id) => (specials.has(id) ? T5_SPECIAL_IDS.unk : id));
  const longest = Math.min(config.maxSourceLength - 1, config.relativeMaxDistance + 8, 40);
  const lengths = [Math.min(3, longest), longest, Math.max(1, Math.floor(longest / 2))];
  let at = 0;
  const take = (n: number) => Array.from({ length: n }, () => text[at++ % text.length]!);
  const sources = lengths.map((n) => [...take(n), T5_SPECIAL_IDS.eos]);
  const target = [T5_SPECIAL_IDS.pad, ...take(Math.min(config.maxTargetLength, 12))];
  return { sources, target };
}

export interface T5Graphs {
  encoder: Graph;
  decoder: Graph;
}

const openGraphs = (config: T5Config, graphs: T5Graphs) => openPair(config, serializeModel(graphs.encoder), serializeModel(graphs.decoder));

/**
 * Checks a smaller copy of the two graphs against the fp32 graphs under T5_VARIANT_BOUNDS[key]:
 * what buildT5Variants runs on each copy before returning it. Throws FerryError export_parity.
 */
export async function verifyT5Variant(key: VariantKey, config: T5Config, fp32Graphs: T5Graphs, variantGraphs: T5Graphs, tokenizer?: Tokenizer): Promise<T5VariantParity> {
  const fp32 = await openGraphs(config, fp32Graphs);
  try {
    const variant = await openGraphs(config, variantGraphs);
    try {
      return await checkVariant(key, config, fp32, variant, t5VariantInputs(config, tokenizer));
    } finally {
      await variant.release();
    }
  } finally {
    await fp32.release();
  }
}

async function checkVariant(key: VariantKey, config: T5Config, fp32: Pair, variant: Pair, inputs: { sources: number[][]; target: number[] }): Promise<T5VariantParity> {
  const bounds = T5_VARIANT_BOUNDS[key];
  const { sources, target } = inputs;
  const vocab = config.vocabSize;
  const cases: { name: string; maxAbsDiff: number }[] = [];
  let scale = 0;
  let worst = 0;
  let incremental = 0;
  for (const pad of ['right', 'left'] as const) {
    const reference = await teacherForced(fp32, sources, target, pad);
    for (const x of reference) scale = Math.max(scale, Math.abs(x));
    const full = await teacherForced(variant, sources, target, pad);
    const steps = await stepByStep(variant, sources, target, pad, vocab);
    const [againstFp32, againstFull] = [maxAbsDiff(full, reference), maxAbsDiff(steps, full)];
    cases.push({ name: `teacher-forced vs fp32, ${pad}-padded batch of ${sources.length}, ${target.length} tokens`, maxAbsDiff: againstFp32 });
    cases.push({ name: `step by step vs own teacher-forced, ${pad}-padded`, maxAbsDiff: againstFull });
    worst = Math.max(worst, againstFp32);
    incremental = Math.max(incremental, againstFull);
  }
  const maxTokens = config.maxTargetLength;
  const [expected, got] = [await greedySeq2Seq(fp32.seq2seq, sources, maxTokens), await greedySeq2Seq(variant.seq2seq, sources, maxTokens)];
  const parity: T5VariantParity = {
    maxAbsDiff: worst,
    tolerance: bounds.relativeToFp32 * Math.max(1, scale),
    incrementalMaxAbsDiff: incremental,
    incrementalTolerance: bounds.incremental * Math.max(1, scale),
    scale,
    greedySame: expected.filter((ids, r) => ids.join() === got[r]!.join()).length,
    sources: sources.length,
    cases,
    bytes: variant.bytes,
    fp32Bytes: fp32.bytes,
  };
  const failures = [
    !(parity.maxAbsDiff <= parity.tolerance) && `its teacher-forced logits differ from the fp32 graphs' by ${parity.maxAbsDiff.toExponential(2)} (bound ${parity.tolerance.toExponential(2)})`,
    !(parity.incrementalMaxAbsDiff <= parity.incrementalTolerance) && `step-by-step decoding with both caches differs from its own teacher-forced logits by ${parity.incrementalMaxAbsDiff.toExponential(2)} (bound ${parity.incrementalTolerance.toExponential(2)})`,
  ].filter(Boolean);
  if (failures.length) {
    throw new FerryError('export_parity', `The ${key} copy of the T5 graphs fails its parity check: ${failures.join('; ')}`, {
      hint: `Export without the ${key} copy, or report this model: no file was written.`,
      status: 500,
    });
  }
  return parity;
}

/**
 * The int8 and/or fp16 copies of the encoder and merged decoder built from `weights`, each
 * verified against the fp32 graphs (throws FerryError export_parity when a bound is exceeded).
 * Pass the result to t5PackageFiles to write them in Optimum's names.
 */
export async function buildT5Variants(config: T5Config, weights: T5WeightMap, opset: number, options: T5VariantOptions): Promise<T5Variants> {
  const log = options.log ?? (() => {});
  const result: T5Variants = { encoder: {}, decoder: {}, parity: {} };
  const wanted = (['int8', 'fp16'] as const).filter((key) => options[key]);
  if (!wanted.length) return result;
  const graphs = { encoder: t5EncoderGraph(config, weights, opset), decoder: t5DecoderGraph(config, weights, opset) };
  const inputs = t5VariantInputs(config, options.tokenizer);
  const fp32 = await openGraphs(config, graphs);
  try {
    for (const key of wanted) {
      const convert = key === 'int8' ? quantizeInt8 : weightsToFp16;
      const [encoder, decoder] = [convert(graphs.encoder), convert(graphs.decoder)];
      const variant = await openGraphs(config, { encoder, decoder });
      try {
        const parity = await checkVariant(key, config, fp32, variant, inputs);
        log(`${key}: ${(parity.bytes / 1e6).toFixed(2)} MB (fp32 ${(parity.fp32Bytes / 1e6).toFixed(2)} MB), teacher-forced logits vs fp32 max |diff| ${parity.maxAbsDiff.toExponential(2)} (bound ${parity.tolerance.toExponential(2)}), step by step vs own ${parity.incrementalMaxAbsDiff.toExponential(2)} (bound ${parity.incrementalTolerance.toExponential(2)}), greedy outputs as fp32 ${parity.greedySame}/${parity.sources}`);
        result.encoder[key] = encoder;
        result.decoder[key] = decoder;
        result.parity[key] = parity;
      } finally {
        await variant.release();
      }
    }
  } finally {
    await fp32.release();
  }
  return result;
}
