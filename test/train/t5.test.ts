// The tfjs T5 (src/train/models/t5.ts) against the float64 reference forward of
// test/export/t5-fixtures.ts, its source padding mask, a tiny seeded copy task its loss must fall on,
// and the exported ONNX package of the trained model against its tfjs logits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { createSession } from '../../src/export/runner.ts';
import { T5_DECODER_FILE, T5_ENCODER_FILE, t5PackageFiles } from '../../src/export/t5/package.ts';
import { LOGITS } from '../../src/package/io.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq } from '../../src/package/seq2seq.ts';
import { int64 } from '../../src/package/session.ts';
import { mulberry32 } from '../../src/random.ts';
import { trainT5Tokenizer } from '../../src/tokenizer/t5.ts';
import type { PairBatch } from '../../src/train/data/pair-batch.ts';
import { pairBatch, shuffledPairBatches } from '../../src/train/data/pair-batches.ts';
import { encodeWithEos, type EncodedPair } from '../../src/train/data/pair-set.ts';
import { createAdamW } from '../../src/train/optimizer.ts';
import { countT5Parameters, resolveT5Config, T5_PRESETS, t5StateDict, validateT5Config } from '../../src/train/models/t5-config.ts';
import { createT5, disposeT5, greedyGenerate, setT5Weights, t5Logits, t5Loss, t5Parameters, t5Weights } from '../../src/train/models/t5.ts';
import { FerryError } from '../../src/errors.ts';
import { selectBackend } from '../../src/train/backend.ts';
import { randomT5Weights, referenceT5, tinyT5Config } from '../export/t5-fixtures.ts';

await tf.setBackend('cpu');

const TOLERANCE = 1e-4;
// The longest source goes past relativeMaxDistance (12), where the buckets saturate.
const SOURCES = [[5, 9, 3, 1], [7, 1], [12, 30, 4, 8, 22, 1], Array.from({ length: 20 }, (_, i) => 2 + ((i * 7) % 37))];
// Kept small: on the shared 2-core CI CPU backend a step of even this model takes ~1 s.
const STEPS = 12;
const DECODER_INPUT = [0, 6, 11, 2, 19, 25, 3];

/** A batch of right-padded sources, every row reading DECODER_INPUT (labels unused). */
function fixedBatch(sources: readonly (readonly number[])[], decoderInput: readonly number[]): PairBatch {
  const sourceLength = Math.max(...sources.map((s) => s.length));
  const sourceIds = new Int32Array(sources.length * sourceLength);
  const sourceMask = new Float32Array(sources.length * sourceLength);
  sources.forEach((s, r) => {
    sourceIds.set(s, r * sourceLength);
    sourceMask.fill(1, r * sourceLength, r * sourceLength + s.length);
  });
  const targetLength = decoderInput.length;
  return {
    batch: sources.length, sourceLength, targetLength, sourceIds, sourceMask,
    decoderInputIds: Int32Array.from(sources.flatMap(() => decoderInput)),
    labels: new Int32Array(sources.length * targetLength), labelMask: new Float32Array(sources.length * targetLength).fill(1),
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function logitsOf(model: ReturnType<typeof createT5>, batch: PairBatch): Promise<Float32Array> {
  const logits = t5Logits(model, batch);
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return data;
}

for (const tieWeights of [false, true]) {
  test(`forward pass equals the float64 reference (${tieWeights ? 'tied' : 'untied'} head), padded batch`, async () => {
    const config = tinyT5Config({ tieWeights });
    const weights = randomT5Weights(config, tieWeights ? 17 : 5);
    const model = createT5(config, { seed: 1 });
    setT5Weights(model, weights);
    const reference = referenceT5(config, weights);
    const expected = SOURCES.flatMap((s) => reference.decode(reference.encode(s), DECODER_INPUT).flat());
    const diff = maxAbsDiff(await logitsOf(model, fixedBatch(SOURCES, DECODER_INPUT)), expected);
    console.log(`tied=${tieWeights}: tfjs vs reference max |diff| ${diff.toExponential(2)}`);
    assert.ok(diff < TOLERANCE, `max |diff| ${diff}`);
    disposeT5(model);
  });
}

test('on wasm (ferry\'s fused kernels) the loss and every gradient equal the cpu backend\'s plain tfjs ops, padded batch', async () => {
  // Targets of different lengths, so that the label mask has zeros too.
  const targets = [[4, 8, 1], [9, 1], [3, 3, 7, 11, 5, 1], [6, 1]];
  const targetLength = Math.max(...targets.map((t) => t.length));
  const base = fixedBatch(SOURCES, new Array<number>(targetLength).fill(0));
  const batch: PairBatch = {
    ...base,
    decoderInputIds: Int32Array.from(targets.flatMap((t) => Array.from({ length: targetLength }, (_, i) => (i === 0 ? 0 : t[i - 1] ?? 0)))),
    labels: Int32Array.from(targets.flatMap((t) => Array.from({ length: targetLength }, (_, i) => t[i] ?? 0))),
    labelMask: Float32Array.from(targets.flatMap((t) => Array.from({ length: targetLength }, (_, i) => (i < t.length ? 1 : 0)))),
  };
  for (const tieWeights of [false, true]) {
    const config = tinyT5Config({ tieWeights });
    const weights = randomT5Weights(config, 23);
    const run = async (backend: 'cpu' | 'wasm') => {
      await selectBackend(backend);
      const model = createT5(config);
      setT5Weights(model, weights);
      const variables = t5Parameters(model).map((p) => p.variable);
      let result: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
      const { kernels } = await tf.profile(() => {
        result = tf.variableGrads(() => t5Loss(model, batch, { training: true }), variables);
      });
      const { value, grads } = result!;
      if (backend === 'wasm') {
        const ran = new Set(kernels.map((k) => k.name));
        for (const name of ['FerryBiasedAttention', 'FerryBiasedAttentionGrad', 'FerryRmsNorm', 'FerryRmsNormGrad', 'FerryGeluTanh']) assert.ok(ran.has(name), `${name} did not run`);
      }
      const out = { loss: (await value.data())[0]!, grads: await Promise.all(variables.map(async (v) => (await grads[v.name]!.data()) as Float32Array)) };
      tf.dispose([value, ...Object.values(grads)]);
      disposeT5(model);
      return out;
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    await selectBackend('cpu');
    assert.ok(Math.abs(wasm.loss - cpu.loss) < 1e-5 * Math.abs(cpu.loss), `loss ${wasm.loss} vs ${cpu.loss}`);
    const names = [...t5StateDict(config).map((e) => e.name)];
    let worst = 0;
    cpu.grads.forEach((expected, i) => {
      const scale = Math.max(1e-3, ...expected.map(Math.abs));
      const diff = maxAbsDiff(wasm.grads[i]!, expected) / scale;
      worst = Math.max(worst, diff);
      assert.ok(diff < TOLERANCE, `${names[i]}: max |diff| ${diff} of its largest gradient`);
    });
    console.log(`tied=${tieWeights}: wasm vs cpu loss ${wasm.loss.toFixed(6)} vs ${cpu.loss.toFixed(6)}, gradients max |diff| ${worst.toExponential(2)} of each one's largest`);
  }
});

test('padded source tokens change nothing', async () => {
  const config = tinyT5Config();
  const model = createT5(config, { seed: 3 });
  const batch = fixedBatch(SOURCES, DECODER_INPUT);
  const before = await logitsOf(model, batch);
  const random = mulberry32(9);
  const scrambled = batch.sourceIds.map((id, i) => (batch.sourceMask[i] === 0 ? 3 + Math.floor(random() * (config.vocabSize - 3)) : id));
  assert.notDeepEqual(scrambled, batch.sourceIds);
  assert.equal(maxAbsDiff(await logitsOf(model, { ...batch, sourceIds: scrambled }), before), 0);
  // And a row alone, unpadded, gives its padded row's logits.
  const alone = await logitsOf(model, fixedBatch([SOURCES[1]!], DECODER_INPUT));
  const row = before.subarray(DECODER_INPUT.length * config.vocabSize, 2 * DECODER_INPUT.length * config.vocabSize);
  assert.ok(maxAbsDiff(alone, row) < 1e-5);
  disposeT5(model);
});

test('presets resolve, validate and count their parameters', () => {
  for (const name of Object.keys(T5_PRESETS)) {
    const config = resolveT5Config({ preset: name, vocabSize: 100 });
    const model = createT5(config, { seed: 1 });
    const total = [...model.variables.values()].reduce((sum, v) => sum + v.size, 0);
    assert.equal(countT5Parameters(config), total, name);
    disposeT5(model);
  }
  assert.ok(Math.abs(countT5Parameters(resolveT5Config({ preset: 't5-mini', vocabSize: 1000 })) - 1e6) < 1.5e5);
  assert.ok(Math.abs(countT5Parameters(resolveT5Config({ preset: 't5-small-char', vocabSize: 300 })) - 9.5e6) < 5e5);
  assert.throws(() => resolveT5Config({ preset: 't5-huge', vocabSize: 100 }), (e: unknown) => e instanceof FerryError && e.code === 'unknown_preset');
  assert.throws(() => validateT5Config({ ...tinyT5Config(), nHeads: 0 }), (e: unknown) => e instanceof FerryError && e.code === 'invalid_model_config' && /nHeads/.test(e.message));
  assert.throws(() => validateT5Config({ ...tinyT5Config(), heads: 2 }), /unknown t5 hyperparameter heads/);
});

test('a tiny T5 learns to copy short strings, and its ONNX package gives its logits and greedy outputs', async () => {
  const random = mulberry32(42);
  const letters = 'abcdef';
  const word = () => Array.from({ length: 2 + Math.floor(random() * 4) }, () => letters[Math.floor(random() * letters.length)]).join('');
  const texts = Array.from({ length: 240 }, word);
  const tokenizer = await trainT5Tokenizer('char', [letters]);
  const encode = (source: string): EncodedPair => {
    const target = source;
    return { source, target, sourceIds: encodeWithEos(tokenizer, source), targetIds: encodeWithEos(tokenizer, target) };
  };
  const train = texts.slice(0, 200).map(encode);
  const heldOut = texts.slice(200, 216).map(encode);
  const config = tinyT5Config({ vocabSize: tokenizer.vocabSize, dModel: 32, dKv: 8, nHeads: 4, dFf: 64, nEncoderLayers: 1, nDecoderLayers: 1, tieWeights: true });
  const model = createT5(config, { seed: 7 });
  const parameters = t5Parameters(model);
  const optimizer = createAdamW(parameters, { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0 });
  const batches = shuffledPairBatches(train, { batchSize: 16, seed: 5 });
  const started = performance.now();
  let first = Infinity;
  let loss = Infinity;
  for (let step = 0; step < STEPS; step++) {
    const batch = batches.next().value!;
    const { value, grads } = tf.variableGrads(() => t5Loss(model, batch, { training: true }), parameters.map((p) => p.variable));
    optimizer.applyGradients(parameters.map((p) => grads[p.variable.name]!), 1e-2);
    if (step === 0) first = (await value.data())[0]!;
    if (step === STEPS - 1) loss = (await value.data())[0]!;
    value.dispose();
    tf.dispose(grads);
  }
  const outputs = await greedyGenerate(model, heldOut.map((p) => [...p.sourceIds]), config.maxTargetLength);
  const exact = outputs.filter((ids, i) => tokenizer.decode(ids) === heldOut[i]!.target).length / heldOut.length;
  console.log(`copy: loss ${first.toFixed(3)} -> ${loss.toFixed(3)} after ${STEPS} steps, held-out exact match ${exact.toFixed(2)}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(loss < first / 2, `loss ${first} -> ${loss}`);

  // The package of the trained weights: teacher-forced logits and greedy outputs as tfjs's.
  const files = t5PackageFiles(config, await t5Weights(model), tokenizer, 17, 'reverse');
  const session = async (file: string) => wrapOrtSession(ort.Tensor, await createSession(Buffer.concat(files[file] as Uint8Array[])), 'onnxruntime-node cpu');
  const encoder = await session(T5_ENCODER_FILE);
  const decoder = await session(T5_DECODER_FILE);
  const seq2seq = createSeq2SeqDecoder(encoder, decoder, {
    vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0,
  });
  const batch = pairBatch(heldOut.slice(0, 8));
  const encoded = await seq2seq.encode(heldOut.slice(0, 8).map((p) => [...p.sourceIds]), 'right');
  const feeds = {
    ...encoded.feeds, input_ids: int64([batch.batch, batch.targetLength], [...batch.decoderInputIds]),
    use_cache_branch: { dtype: 'bool' as const, dims: [1], data: Uint8Array.of(0) },
  };
  const onnx = (await decoder.run(feeds))[LOGITS]!.data as Float32Array;
  const diff = maxAbsDiff(onnx, await logitsOf(model, batch));
  console.log(`copy: ONNX vs tfjs teacher-forced logits max |diff| ${diff.toExponential(2)}`);
  assert.ok(diff < TOLERANCE, `max |diff| ${diff}`);
  assert.deepEqual(await greedySeq2Seq(seq2seq, heldOut.map((p) => [...p.sourceIds]), config.maxTargetLength), outputs);
  optimizer.dispose();
  disposeT5(model);
});
