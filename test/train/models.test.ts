import { test } from 'node:test';
import { alibiSlopes, ropeTables } from '../../src/train/models/positions.ts';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  createModel, resolveModelConfig, validateModelConfig, countParameters, PRESETS, sinusoidTable,
  FerryTransformerBlock, FerryPositionEmbedding, FerryTiedEmbedding, FerryLayerNormalization, FerryOrthogonal, orthogonalMatrix,
  type ModelConfig, type TransformerConfig,
} from '../../src/train/models/index.ts';
import { FerryError } from '../../src/errors.ts';

await tf.setBackend('cpu');

const VOCAB = 13;
const ids = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');
const predict = (model: tf.LayersModel, rows: number[][]) => tf.tidy(() => (model.predict(ids(rows)) as tf.Tensor).arraySync() as number[][][]);

function tinyConfigs(): [string, ModelConfig][] {
  const lstm = (overrides: Record<string, unknown>) => resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides, vocabSize: VOCAB });
  const transformer = (overrides: Record<string, unknown>) => resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides, vocabSize: VOCAB });
  return [
    ['lstm', lstm({})],
    ['lstm tied, 2 layers', lstm({ tieWeights: true, hiddenSize: 16, numLayers: 2 })],
    ['transformer learned', transformer({})],
    ['transformer sinusoidal', transformer({ positional: 'sinusoidal' })],
    ['transformer tied', transformer({ tieWeights: true })],
    ['transformer sinusoidal tied', transformer({ tieWeights: true, positional: 'sinusoidal', nHead: 4 })],
    ['transformer rope', transformer({ positional: 'rope' })],
    ['transformer alibi tied', transformer({ positional: 'alibi', tieWeights: true })],
  ];
}

function maxAbsDiff(a: number[] | number[][] | number[][][], b: typeof a): number {
  const fa = (a as number[]).flat(3) as number[];
  const fb = (b as number[]).flat(3) as number[];
  assert.equal(fa.length, fb.length);
  return fa.reduce((m, x, i) => Math.max(m, Math.abs(x - fb[i]!)), 0);
}

test('both archs give logits [batch, seq, vocab] with input input_ids int32 [null, null], and count their parameters', () => {
  for (const [label, config] of tinyConfigs()) {
    const model = createModel(config);
    assert.deepEqual(model.inputNames, ['input_ids'], label);
    assert.equal(model.inputs[0]!.dtype, 'int32', label);
    assert.deepEqual(model.inputs[0]!.shape, [null, null], label);
    assert.deepEqual(model.outputs[0]!.shape, [null, null, VOCAB], label);
    const logits = predict(model, [[1, 2, 3, 4, 5], [6, 7, 8, 9, 12]]);
    assert.deepEqual([logits.length, logits[0]!.length, logits[0]![0]!.length], [2, 5, VOCAB], label);
    assert.ok(logits.flat(2).every(Number.isFinite), label);
    assert.equal(model.countParams(), countParameters(config), label);
    model.dispose();
  }
});

test('tied models share one embedding matrix between input and head', () => {
  const config = resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { tieWeights: true }, vocabSize: VOCAB });
  const model = createModel(config);
  const tied = model.getLayer('token_embedding');
  assert.ok(tied instanceof FerryTiedEmbedding);
  assert.equal(tied.inboundNodes.length, 2);
  assert.equal(model.weights.filter((w) => w.originalName.endsWith('token_embedding/embeddings')).length, 1);
  assert.equal(model.layers.some((layer) => layer.name === 'lm_head'), false);
  model.dispose();
});

test('changing a later token never changes the logits of earlier positions (causal)', () => {
  for (const [label, config] of tinyConfigs()) {
    const model = createModel(config);
    const a = predict(model, [[1, 2, 3, 4, 5, 6]]);
    const b = predict(model, [[1, 2, 3, 11, 5, 6]]);
    for (let t = 0; t < 3; t++) assert.deepEqual(a[0]![t], b[0]![t], `${label}: position ${t}`);
    assert.ok(maxAbsDiff(a[0]![3]!, b[0]![3]!) > 1e-6, `${label}: position 3 must change`);
    model.dispose();
  }
});

test('logits of a prefix equal the first logits of the full sequence', () => {
  const config = resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: {}, vocabSize: VOCAB });
  const model = createModel(config);
  const full = predict(model, [[3, 1, 4, 1, 5, 9, 2, 6]]);
  const prefix = predict(model, [[3, 1, 4]]);
  assert.ok(maxAbsDiff(prefix[0]!, full[0]!.slice(0, 3)) < 1e-5);
  model.dispose();
});

test('FerryTransformerBlock weights have the names, order and shapes of docs/FORMATS.md', () => {
  const config = resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: {}, vocabSize: VOCAB }) as TransformerConfig;
  const model = createModel(config);
  const block = model.getLayer('block_0');
  assert.ok(block instanceof FerryTransformerBlock);
  const d = config.nEmbd;
  assert.deepEqual(block.weights.map((w) => [w.originalName, w.shape]), [
    ['block_0/ln1/gamma', [d]], ['block_0/ln1/beta', [d]],
    ['block_0/attn/qkv/kernel', [d, 3 * d]], ['block_0/attn/qkv/bias', [3 * d]],
    ['block_0/attn/proj/kernel', [d, d]], ['block_0/attn/proj/bias', [d]],
    ['block_0/ln2/gamma', [d]], ['block_0/ln2/beta', [d]],
    ['block_0/mlp/fc/kernel', [d, 4 * d]], ['block_0/mlp/fc/bias', [4 * d]],
    ['block_0/mlp/proj/kernel', [4 * d, d]], ['block_0/mlp/proj/bias', [d]],
  ]);
  assert.deepEqual(block.getConfig(), { name: 'block_0', trainable: true, dim: d, numHeads: 2, mlpDim: 4 * d, dropout: 0, epsilon: 1e-5 });
  model.dispose();
});

/** The block's math written out naively, head by head, position by position (docs/FORMATS.md). */
function referenceBlock(x: number[][], w: Record<string, number[] | number[][]>, heads: number, eps: number): number[][] {
  const d = x[0]!.length;
  const hd = d / heads;
  const ln = (row: number[], g: number[], b: number[]) => {
    const mean = row.reduce((s, v) => s + v, 0) / d;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / d;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i]! + b[i]!);
  };
  const affine = (row: number[], k: number[][], b: number[]) => b.map((bias, j) => row.reduce((s, v, i) => s + v * k[i]![j]!, bias));
  const erf = (z: number) => { // Abramowitz-Stegun 7.1.26 is too coarse; use a series that converges for |z| < 4
    let sum = 0; let term = z; for (let n = 0; n < 80; n++) { sum += term / (2 * n + 1); term *= -z * z / (n + 1); } return (2 / Math.sqrt(Math.PI)) * sum;
  };
  const qkv = x.map((row) => affine(ln(row, w['ln1/gamma'] as number[], w['ln1/beta'] as number[]), w['attn/qkv/kernel'] as number[][], w['attn/qkv/bias'] as number[]));
  const attended = x.map((_, t) => {
    const out = new Array<number>(d).fill(0);
    for (let h = 0; h < heads; h++) {
      const q = qkv[t]!.slice(h * hd, (h + 1) * hd);
      const scores = qkv.slice(0, t + 1).map((r) => r.slice(d + h * hd, d + (h + 1) * hd).reduce((s, k, i) => s + k * q[i]!, 0) / Math.sqrt(hd));
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const total = exps.reduce((s, e) => s + e, 0);
      exps.forEach((e, s) => { for (let i = 0; i < hd; i++) out[h * hd + i]! += (e / total) * qkv[s]![2 * d + h * hd + i]!; });
    }
    return out;
  });
  const x1 = x.map((row, t) => affine(attended[t]!, w['attn/proj/kernel'] as number[][], w['attn/proj/bias'] as number[]).map((v, i) => v + row[i]!));
  return x1.map((row) => {
    const hidden = affine(ln(row, w['ln2/gamma'] as number[], w['ln2/beta'] as number[]), w['mlp/fc/kernel'] as number[][], w['mlp/fc/bias'] as number[])
      .map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    return affine(hidden, w['mlp/proj/kernel'] as number[][], w['mlp/proj/bias'] as number[]).map((v, i) => v + row[i]!);
  });
}

test('FerryTransformerBlock computes pre-LN causal multi-head attention and an exact-GELU MLP', () => {
  const d = 8; const heads = 2; const length = 5;
  const block = new FerryTransformerBlock({ dim: d, numHeads: heads, mlpDim: 12, dropout: 0, epsilon: 1e-5 });
  const input = tf.randomNormal([1, length, d], 0, 1, 'float32', 7);
  block.apply(input);
  const random = block.weights.map((w, i) => tf.randomNormal(w.shape as number[], 0, 0.5, 'float32', 100 + i));
  block.setWeights(random);
  const named = Object.fromEntries(block.weights.map((w, i) => [w.originalName.split('/').slice(1).join('/'), random[i]!.arraySync() as number[]]));
  const actual = (block.apply(input) as tf.Tensor).arraySync() as number[][][];
  const expected = referenceBlock((input.arraySync() as number[][][])[0]!, named, heads, 1e-5);
  assert.ok(maxAbsDiff(actual[0]!, expected) < 2e-5, `max diff ${maxAbsDiff(actual[0]!, expected)}`);
});

test('masked attention stays finite for large activations (no -Infinity in the mask)', () => {
  const block = new FerryTransformerBlock({ dim: 4, numHeads: 1, mlpDim: 8, dropout: 0 });
  const out = block.apply(tf.mul(tf.randomNormal([2, 6, 4], 0, 1, 'float32', 3), 1e4)) as tf.Tensor;
  assert.ok((out.dataSync() as Float32Array).every(Number.isFinite));
});

test('sinusoidal positions follow sin/cos(p / 10000^(2i/d)) and learned positions add a weight row per position', () => {
  const table = sinusoidTable(10, 6);
  assert.equal(table[3 * 6 + 0], Math.fround(Math.sin(3)));
  assert.equal(table[3 * 6 + 1], Math.fround(Math.cos(3)));
  assert.equal(table[5 * 6 + 4], Math.fround(Math.sin(5 / 10000 ** (4 / 6))));
  assert.equal(table[5 * 6 + 5], Math.fround(Math.cos(5 / 10000 ** (4 / 6))));
  const sinusoidal = new FerryPositionEmbedding({ maxLength: 10, outputDim: 6, kind: 'sinusoidal' });
  const out = (sinusoidal.apply(tf.zeros([2, 4, 6])) as tf.Tensor).arraySync() as number[][][];
  assert.deepEqual(out[1]!.flat(), Array.from(table.subarray(0, 24)));
  assert.equal(sinusoidal.weights.length, 0);
  const learned = new FerryPositionEmbedding({ maxLength: 10, outputDim: 6, kind: 'learned' });
  const y = (learned.apply(tf.ones([1, 3, 6])) as tf.Tensor).arraySync() as number[][][];
  const rows = (learned.getWeights()[0]!.arraySync() as number[][]).slice(0, 3).map((r) => r.map((v) => v + 1));
  assert.ok(maxAbsDiff(y[0]!, rows) < 1e-6);
  assert.deepEqual(learned.weights.map((w) => w.shape), [[10, 6]]);
});

test('a sequence longer than the context is a FerryError', () => {
  const model = createModel(resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { blockSize: 4 }, vocabSize: VOCAB }));
  assert.throws(() => predict(model, [[1, 2, 3, 4, 5]]), (error: unknown) => error instanceof FerryError
    && error.code === 'sequence_too_long' && /5 tokens.*context of 4/.test(error.message));
  model.dispose();
});

test('dropout runs only when training is true', () => {
  const config = resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { dropout: 0.5 }, vocabSize: VOCAB });
  const model = createModel(config);
  const input = ids([[1, 2, 3, 4]]);
  const inference = (model.predict(input) as tf.Tensor).arraySync() as number[][][];
  const notTraining = (model.apply(input, { training: false }) as tf.Tensor).arraySync() as number[][][];
  const training = (model.apply(input, { training: true }) as tf.Tensor).arraySync() as number[][][];
  assert.deepEqual(notTraining, inference);
  assert.ok(maxAbsDiff(training, inference) > 1e-3);
  model.dispose();
});

test('custom layers round-trip through getConfig/fromConfig and the model topology JSON', async () => {
  for (const [label, config] of tinyConfigs()) {
    const model = createModel(config);
    const copy = await tf.models.modelFromJSON(JSON.parse(JSON.stringify(model.toJSON(undefined, false))));
    copy.setWeights(model.getWeights());
    assert.deepEqual(predict(copy, [[1, 2, 3]]), predict(model, [[1, 2, 3]]), label);
    assert.deepEqual(copy.layers.map((layer) => layer.getClassName()), model.layers.map((layer) => layer.getClassName()), label);
    model.dispose();
    copy.dispose();
  }
  const block = new FerryTransformerBlock({ dim: 8, numHeads: 4, mlpDim: 16, dropout: 0.1, epsilon: 1e-6, name: 'b' });
  const copy = FerryTransformerBlock.fromConfig(FerryTransformerBlock, block.getConfig()) as FerryTransformerBlock;
  assert.deepEqual(copy.getConfig(), block.getConfig());
});

test('presets have the documented sizes', () => {
  const nano = resolveModelConfig({ preset: 'nanogpt-cpu', vocabSize: 65 });
  assert.deepEqual(nano, { arch: 'transformer', vocabSize: 65, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0, positional: 'learned', tieWeights: true });
  const classic = resolveModelConfig({ preset: 'lstm-classic', vocabSize: 10_000 });
  assert.deepEqual([classic.arch, (classic as { embeddingDim: number }).embeddingDim, (classic as { hiddenSize: number }).hiddenSize, (classic as { numLayers: number }).numLayers], ['lstm', 128, 128, 2]);
  assert.equal(PRESETS['lstm-classic']!.vocabSize, 10_000);
  assert.equal(resolveModelConfig({ preset: 'lstm-char', vocabSize: 65 }).arch, 'lstm');
  assert.equal(resolveModelConfig({ arch: 'lstm', vocabSize: 65 }).blockSize, 64, 'lstm defaults to lstm-char');
  assert.equal(resolveModelConfig({ arch: 'transformer', vocabSize: 65 }).blockSize, 64, 'transformer defaults to nanogpt-cpu');
  // nanoGPT prints 0.80M for this model: it leaves out the 64 x 128 position embeddings and has no biases.
  assert.equal(countParameters(nano), 4 * (12 * 128 * 128 + 13 * 128) + 65 * 128 + 64 * 128 + 2 * 128);
});

test('bad configs are FerryErrors that name the problem', () => {
  const fails = (options: Parameters<typeof resolveModelConfig>[0], code: string, pattern: RegExp) =>
    assert.throws(() => resolveModelConfig(options), (error: unknown) => {
      assert.ok(error instanceof FerryError, String(error));
      assert.equal(error.code, code);
      assert.match(error.toUserMessage(), pattern);
      return true;
    });
  fails({ arch: 'transformer', preset: 'tiny', overrides: { nHead: 3 }, vocabSize: 10 }, 'invalid_model_config', /3 heads do not divide the model width 16/);
  fails({ arch: 'gru', vocabSize: 10 }, 'unknown_arch', /Unknown architecture "gru".*\n.*lstm, transformer/);
  fails({ arch: 'lstm', preset: 'huge', vocabSize: 10 }, 'unknown_preset', /Unknown preset "huge"[^]*tiny \(lstm\/transformer\), nanogpt-cpu \(transformer\), lstm-char \(lstm\), lstm-classic \(lstm\)/);
  fails({ arch: 'lstm', preset: 'nanogpt-cpu', vocabSize: 10 }, 'preset_arch_mismatch', /no lstm model[^]*tiny, lstm-char, lstm-classic/);
  fails({ preset: 'tiny', vocabSize: 10 }, 'missing_arch', /several architectures[^]*--arch lstm\|transformer/);
  fails({ arch: 'lstm', preset: 'tiny', overrides: { tieWeights: true }, vocabSize: 10 }, 'invalid_model_config', /hiddenSize == embeddingDim, got 32 and 16/);
  fails({ arch: 'lstm', preset: 'tiny', overrides: { hiddenSize: 0 }, vocabSize: 10 }, 'invalid_model_config', /hiddenSize must be a positive integer, got 0/);
  fails({ arch: 'lstm', preset: 'tiny', overrides: { numLayers: 1.5 }, vocabSize: 10 }, 'invalid_model_config', /numLayers must be a positive integer, got 1.5/);
  fails({ arch: 'lstm', preset: 'tiny', vocabSize: 0 }, 'invalid_model_config', /vocabSize must be a positive integer/);
  fails({ arch: 'transformer', preset: 'tiny', overrides: { dropout: 1 }, vocabSize: 10 }, 'invalid_model_config', /dropout must be a number in \[0, 1\), got 1/);
  fails({ arch: 'transformer', preset: 'tiny', overrides: { positional: 'xpos' }, vocabSize: 10 }, 'invalid_model_config', /positional must be "learned", "sinusoidal", "rope", "alibi", got "xpos"/);
  fails({ arch: 'transformer', preset: 'tiny', overrides: { positional: 'rope', nEmbd: 18, nHead: 2 }, vocabSize: 10 }, 'invalid_model_config', /RoPE rotates pairs of features, and the head size 9 is odd/);
  fails({ arch: 'transformer', preset: 'tiny', overrides: { hiddenSize: 8 }, vocabSize: 10 }, 'invalid_model_config', /unknown transformer hyperparameter hiddenSize[^]*nLayer, nHead, nEmbd/);
  assert.throws(() => validateModelConfig({ arch: 'lstm', vocabSize: 3 }), /missing embeddingDim, hiddenSize, numLayers, dropout, tieWeights, blockSize/);
  assert.deepEqual(resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: { hiddenSize: undefined, dropout: 0.25 }, vocabSize: 10 }).dropout, 0.25);
});

test('the same seed gives the same initial weights, another seed others', () => {
  for (const [label, config] of tinyConfigs()) {
    const weightsOf = (seed: number) => {
      const model = createModel(config, { seed });
      const values = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      return values;
    };
    const first = weightsOf(7);
    assert.deepEqual(weightsOf(7), first, label);
    const other = weightsOf(8);
    const changed = first.filter((w, i) => w.some((v, j) => v !== other[i]![j])).length;
    const random = first.filter((w) => new Set(w).size > 2).length;
    assert.equal(changed, random, `${label}: every random weight changes with the seed`);
  }
});

test('orthogonal initial weights have orthonormal rows (or columns) and serialize as Orthogonal', () => {
  for (const [rows, cols] of [[4, 16], [16, 4], [5, 5]] as const) {
    const w = tf.tensor2d(orthogonalMatrix(rows, cols, 1, 3), [rows, cols]);
    const gram = rows <= cols ? tf.matMul(w, w, false, true) : tf.matMul(w, w, true, false);
    assert.ok(maxAbsDiff(gram.arraySync() as number[][], tf.eye(Math.min(rows, cols)).arraySync() as number[][]) < 1e-5, `${rows}x${cols}`);
  }
  assert.deepEqual(orthogonalMatrix(3, 6, 2, 5), orthogonalMatrix(3, 6, 2, 5));
  const model = createModel(resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: {}, vocabSize: VOCAB }), { seed: 1 });
  const lstm = (model.toJSON(undefined, false) as { config: { layers: { class_name: string; config: { recurrent_initializer: { class_name: string } } }[] } })
    .config.layers.find((layer) => layer.class_name === 'LSTM')!;
  assert.equal(lstm.config.recurrent_initializer.class_name, 'Orthogonal');
  assert.equal(new FerryOrthogonal({}).getClassName(), 'Orthogonal');
  model.dispose();
});

test('FerryLayerNormalization equals tfjs LayerNormalization in outputs and gradients, and saves as LayerNormalization', () => {
  const x = tf.randomNormal([2, 3, 8], 0, 2, 'float32', 4);
  const reference = tf.layers.layerNormalization({ axis: -1, epsilon: 1e-5 });
  const ours = new FerryLayerNormalization({ axis: -1, epsilon: 1e-5 });
  reference.apply(x);
  ours.apply(x);
  const weights = [tf.randomNormal([8], 1, 0.5, 'float32', 5), tf.randomNormal([8], 0, 0.5, 'float32', 6)];
  reference.setWeights(weights);
  ours.setWeights(weights);
  const target = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 7);
  const gradients = (layer: tf.layers.Layer) => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, target)) as tf.Scalar,
      layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, target)))(x);
    return [value, ...Object.values(grads), dx, layer.apply(x) as tf.Tensor].map((t) => Array.from(t.dataSync()));
  };
  const expected = gradients(reference);
  gradients(ours).forEach((values, i) => assert.ok(maxAbsDiff(values, expected[i]!) < 1e-4, `output ${i}`));
  assert.equal(ours.getClassName(), 'LayerNormalization');
  assert.deepEqual(ours.getConfig(), { ...reference.getConfig(), name: ours.name });
});

test('RoPE tables pair column i with i + hd/2 at angle p / 10000^(2i/hd); ALiBi slopes follow Press et al. (HF Bloom) for any head count', () => {
  const { cos, sin } = ropeTables(8, 4);
  assert.equal(cos[5 * 4 + 1], Math.fround(Math.cos(5 / 100)));
  assert.equal(cos[5 * 4 + 3], Math.fround(Math.cos(5 / 100)));
  assert.equal(sin[5 * 4 + 0], Math.fround(Math.sin(5)));
  assert.equal(sin[5 * 4 + 2], Math.fround(Math.sin(5)));
  assert.deepEqual(alibiSlopes(8), [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]);
  assert.deepEqual(alibiSlopes(6), [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]);
});

test('RoPE and ALiBi blocks equal the position-free block at position 0 and differ after it; they add no weights', () => {
  const input = tf.randomNormal([1, 5, 8], 0, 1, 'float32', 7);
  const outputs = [undefined, 'rope', 'alibi'].map((positional) => {
    const block = new FerryTransformerBlock({ dim: 8, numHeads: 2, mlpDim: 16, dropout: 0, seed: 5, initStd: 0.5, positional: positional as 'rope' | undefined, maxLength: 8 });
    const out = (block.apply(input) as tf.Tensor).arraySync() as number[][][];
    assert.equal(block.weights.length, 12);
    return out[0]!;
  });
  const [plain, rope, alibi] = outputs as [number[][], number[][], number[][]];
  for (const other of [rope, alibi]) {
    assert.ok(maxAbsDiff(plain[0]!, other[0]!) < 1e-6, 'position 0 sees only itself: no rotation, no bias');
    assert.ok(maxAbsDiff(plain[4]!, other[4]!) > 1e-3, 'later positions weigh their past by distance');
  }
});
