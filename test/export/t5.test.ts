// The T5 encoder and merged decoder graphs (Optimum's layout) against a plain-TypeScript
// reference forward from the same seeded weights, and against themselves: step by step with both
// caches equals the full teacher-forced run, and padded batches equal each row alone.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { t5DecoderGraph, t5EncoderGraph } from '../../src/export/t5/graph.ts';
import { createSession } from '../../src/export/runner.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq } from '../../src/package/seq2seq.ts';
import { int64, type Session } from '../../src/package/session.ts';
import { t5DecoderNames, LOGITS } from '../../src/package/io.ts';
import { randomT5Weights, referenceT5, tinyT5Config } from './t5-fixtures.ts';

const TOLERANCE = 1e-4;
// The longest source goes past relativeMaxDistance (12), where the buckets saturate.
const SOURCES = [[5, 9, 3, 1], [7, 1], [12, 30, 4, 8, 22, 1], Array.from({ length: 20 }, (_, i) => 2 + ((i * 7) % 37))];
const TARGET = [0, 6, 11, 2, 19, 25, 3];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

for (const tieWeights of [false, true]) {
  describe(`T5 graphs (${tieWeights ? 'tied' : 'untied'} head)`, async () => {
    const config = tinyT5Config({ tieWeights });
    const weights = randomT5Weights(config, tieWeights ? 17 : 5);
    const reference = referenceT5(config, weights);
    const wrap = async (bytes: Uint8Array): Promise<Session> => wrapOrtSession(ort.Tensor, await createSession(bytes), 'onnxruntime-node cpu');
    const encoder = await wrap(serializeModel(t5EncoderGraph(config, weights, 17)));
    const decoder = await wrap(serializeModel(t5DecoderGraph(config, weights, 17)));
    const spec = { vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0 };
    const seq2seq = createSeq2SeqDecoder(encoder, decoder, spec);

    test('teacher-forced logits and step-by-step decoding with both caches match the reference', async () => {
      for (const pad of ['right', 'left'] as const) {
        const expected = SOURCES.map((s) => reference.decode(reference.encode(s), TARGET).flat());
        // Full: the whole target in one decoder run.
        const batch = await seq2seq.encode(SOURCES, pad);
        const feeds = { ...batch.feeds, input_ids: int64([SOURCES.length, TARGET.length], SOURCES.flatMap(() => TARGET)), use_cache_branch: { dtype: 'bool' as const, dims: [1], data: Uint8Array.of(0) } };
        const full = (await decoder.run(feeds))[LOGITS]!.data as Float32Array;
        const fullDiff = maxAbsDiff(full, expected.flat());
        // Step by step: one token per run, caches fed back.
        let state = batch;
        const steps: number[][] = SOURCES.map(() => []);
        for (const token of TARGET) {
          const step = await seq2seq.step(state, SOURCES.map(() => token));
          state = step.batch;
          SOURCES.forEach((_, r) => steps[r]!.push(...step.logits.subarray(r * config.vocabSize, (r + 1) * config.vocabSize)));
        }
        const stepDiff = maxAbsDiff(steps.flat(), expected.flat());
        console.log(`tied=${tieWeights} pad=${pad}: full vs reference max |diff| ${fullDiff.toExponential(2)}, step-by-step vs reference ${stepDiff.toExponential(2)}`);
        assert.ok(fullDiff < TOLERANCE, `full ${fullDiff}`);
        assert.ok(stepDiff < TOLERANCE, `steps ${stepDiff}`);
      }
    });

    test('greedy outputs of a padded batch equal each source alone', async () => {
      const alone = [];
      for (const s of SOURCES) alone.push(...(await greedySeq2Seq(seq2seq, [s], 10)));
      assert.deepEqual(await greedySeq2Seq(seq2seq, SOURCES, 10, 'right'), alone);
      assert.deepEqual(await greedySeq2Seq(seq2seq, SOURCES, 10, 'left'), alone);
      assert.ok(alone.some((o) => o.length > 0));
    });

    test('the decoder has Optimum\'s merged inputs and outputs in order', () => {
      const names = t5DecoderNames(config.nDecoderLayers);
      assert.deepEqual([...decoder.inputNames], names.inputs);
      assert.deepEqual([...decoder.outputNames], names.outputs);
    });
  });
}
