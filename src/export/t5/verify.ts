/**
 * Export-time verification of a T5 package against the tfjs model (src/train/models/t5.ts) of the
 * same weights, on seeded token ids: the merged decoder's teacher-forced logits (no cache), and
 * step-by-step decoding through both caches (self-attention cache growing, cross-attention cache
 * computed at the first step), with the sources right- and left-padded. Every logit must be within
 * the tolerance, as for language models.
 */
import { LOGITS } from '../../package/io.ts';
import { createSeq2SeqDecoder, type Seq2SeqDecoder } from '../../package/seq2seq.ts';
import { int64 } from '../../package/session.ts';
import type { PairBatch } from '../../train/data/pair-batch.ts';
import { T5_SPECIAL_IDS, type T5Config } from '../../train/models/t5-config.ts';
import { createT5, disposeT5, setT5Weights, t5Logits } from '../../train/models/t5.ts';
import { createSession, decoderSession } from '../runner.ts';
import { checkParityCases, FP32_TOLERANCE, maxAbsDiff, seededRandom, type ParityCase, type ParityReport } from '../verify.ts';
import type { T5WeightMap } from './graph.ts';

export interface T5VerifyOptions {
  tolerance?: number;
  log?: (line: string) => void;
}

/** Source lengths of the checked batch (eos included): unequal, so that padding is exercised. */
const SOURCE_LENGTHS = [6, 2, 11, 4];
const DECODE_STEPS = 8;

export async function verifyT5Package(
  config: T5Config,
  weights: T5WeightMap,
  onnx: { encoder: Uint8Array; decoder: Uint8Array },
  options: T5VerifyOptions = {},
): Promise<ParityReport> {
  const log = options.log ?? (() => {});
  const random = seededRandom(17);
  const token = () => 3 + Math.floor(random() * (config.vocabSize - 3));
  const sources = SOURCE_LENGTHS.map((length) => Math.min(length, config.maxSourceLength))
    .map((length) => [...Array.from({ length: length - 1 }, token), T5_SPECIAL_IDS.eos]);
  const steps = Math.min(DECODE_STEPS, config.maxTargetLength);
  const decoderInputs = sources.map(() => [T5_SPECIAL_IDS.pad, ...Array.from({ length: steps - 1 }, token)]);

  const model = createT5(config);
  const encoder = decoderSession(await createSession(onnx.encoder));
  const decoder = decoderSession(await createSession(onnx.decoder));
  try {
    setT5Weights(model, weights);
    const seq2seq = createSeq2SeqDecoder(encoder, decoder, {
      vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv,
      startId: T5_SPECIAL_IDS.pad, eosId: T5_SPECIAL_IDS.eos, padId: T5_SPECIAL_IDS.pad,
    });
    const cases: ParityCase[] = [];
    for (const pad of ['right', 'left'] as const) {
      const batch = paddedBatch(sources, decoderInputs, pad);
      const logits = t5Logits(model, batch);
      const expected = (await logits.data()) as Float32Array;
      logits.dispose();
      const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const encoded = await seq2seq.encode(sources, pad);
      const teacherForced = await decoder.run({
        ...encoded.feeds,
        input_ids: int64([batch.batch, steps], decoderInputs.flat()),
        use_cache_branch: { dtype: 'bool', dims: [1], data: Uint8Array.of(0) },
      });
      cases.push({ name: `teacher-forced logits, ${pad}-padded sources`, maxAbsDiff: maxAbsDiff(teacherForced[LOGITS]!.data as Float32Array, expected), scale });
      cases.push({ name: `${steps} decode steps with both caches, ${pad}-padded`, maxAbsDiff: await stepwiseDiff(seq2seq, sources, decoderInputs, expected, config.vocabSize, pad), scale });
    }
    return checkParityCases(cases, options.tolerance ?? FP32_TOLERANCE, log, 'The T5 package');
  } finally {
    disposeT5(model);
    await encoder.release();
    await decoder.release();
  }
}

/** The largest difference between each step's logits and the teacher-forced ones at that position. */
async function stepwiseDiff(
  seq2seq: Seq2SeqDecoder, sources: number[][], decoderInputs: number[][], expected: Float32Array, vocabSize: number, pad: 'left' | 'right',
): Promise<number> {
  const steps = decoderInputs[0]!.length;
  let batch = await seq2seq.encode(sources, pad);
  let worst = 0;
  for (let t = 0; t < steps; t++) {
    const step = await seq2seq.step(batch, decoderInputs.map((row) => row[t]!));
    batch = step.batch;
    decoderInputs.forEach((_, r) => {
      const at = (r * steps + t) * vocabSize;
      worst = Math.max(worst, maxAbsDiff(step.logits.subarray(r * vocabSize, (r + 1) * vocabSize), expected.subarray(at, at + vocabSize)));
    });
  }
  return worst;
}

/** A PairBatch of the sources padded on `pad`'s side, every row reading its decoder inputs (labels unused). */
function paddedBatch(sources: number[][], decoderInputs: number[][], pad: 'left' | 'right'): PairBatch {
  const sourceLength = Math.max(...sources.map((s) => s.length));
  const targetLength = decoderInputs[0]!.length;
  const sourceIds = new Int32Array(sources.length * sourceLength).fill(T5_SPECIAL_IDS.pad);
  const sourceMask = new Float32Array(sources.length * sourceLength);
  sources.forEach((source, r) => {
    const offset = r * sourceLength + (pad === 'left' ? sourceLength - source.length : 0);
    sourceIds.set(source, offset);
    sourceMask.fill(1, offset, offset + source.length);
  });
  return {
    batch: sources.length, sourceLength, targetLength, sourceIds, sourceMask,
    decoderInputIds: Int32Array.from(decoderInputs.flat()),
    labels: new Int32Array(sources.length * targetLength), labelMask: new Float32Array(sources.length * targetLength),
  };
}
