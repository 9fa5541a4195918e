import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/train/backend.ts';
import { fusedAdamWStep, hasFusedAdamW } from '../../src/train/kernels/adamw.ts';
import { hasFusedKernel } from '../../src/train/kernels/heap-kernel.ts';
import { createAdamW, DEFAULT_ADAMW } from '../../src/train/optimizer.ts';
import { crossEntropy, FerryLSTM, FerryTransformerBlock, gelu, layerNorm } from '../../src/train/models/index.ts';
import { fusedBiasedAttention, geluTanh, hasFusedBiasedAttention, rmsNorm } from '../../src/train/models/fused.ts';

/**
 * Runs `run` on the reference cpu backend (plain tfjs ops, autodiff) and on wasm (ferry's fused
 * kernels and hand-written gradients) and returns both results as arrays.
 */
async function onBoth(run: () => tf.Tensor[]): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  const collect = () => tf.tidy(() => run().map((t) => ({ values: t.dataSync().slice() as Float32Array, shape: t.shape })));
  await selectBackend('cpu');
  const cpu = collect();
  await selectBackend('wasm');
  const wasm = collect();
  assert.deepEqual(wasm.map((r) => r.shape), cpu.map((r) => r.shape));
  return { cpu: cpu.map((r) => r.values), wasm: wasm.map((r) => r.values) };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, label);
  for (let i = 0; i < actual.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]!));
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance * scale, `${label}: [${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

/** Values and the gradients of sum(f(inputs) * w) for a fixed random w, for every input. */
function valueAndGrads(f: (...inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], seed: number): tf.Tensor[] {
  const y = f(...inputs);
  const weights = tf.randomNormal(y.shape, 0, 1, 'float32', seed);
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), weights)))(inputs);
  return [y, ...grads];
}

test('the fused kernels are what runs on wasm', async () => {
  await selectBackend('wasm');
  assert.ok(hasFusedKernel('FerryGelu') && hasFusedKernel('FerryLayerNorm') && hasFusedKernel('FerryLayerNormGrad'));
  const x = tf.randomNormal([3, 5]);
  const { kernels } = await tf.profile(() => tf.grad((input: tf.Tensor) => tf.sum(gelu(input)))(x));
  assert.deepEqual(kernels.map((k) => k.name).filter((name) => /Erf|Exp/.test(name)), []);
  await selectBackend('cpu');
  assert.equal(hasFusedKernel('FerryGelu'), false);
});

test('fused GELU equals the erf GELU of plain tfjs in value and gradient, tails and odd shapes included', async () => {
  const shapes = [[7], [3, 5, 13], [2, 1, 33, 4]];
  const { cpu, wasm } = await onBoth(() => shapes.flatMap((shape, i) => valueAndGrads(gelu, [tf.randomNormal(shape, 0, 3, 'float32', 1 + i)], 100 + i)
    .concat(valueAndGrads(gelu, [tf.tensor1d([-1e4, -9, -8, -7.99, -3.3, -1e-3, 0, 1e-7, 0.5, 2, 7.999, 8, 12, 1e4])], 200))));
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5, `output ${i}`));
  await selectBackend('wasm');
  assert.ok(Number.isNaN(gelu(tf.tensor1d([NaN])).dataSync()[0]));
});

test('fused tanh GELU (T5) equals the tanh formula of plain tfjs in value and gradient, tails and odd shapes included', async () => {
  const shapes = [[7], [3, 5, 13], [2, 1, 33, 4]];
  const { cpu, wasm } = await onBoth(() => shapes.flatMap((shape, i) => valueAndGrads(geluTanh, [tf.randomNormal(shape, 0, 3, 'float32', 1 + i)], 100 + i)
    .concat(valueAndGrads(geluTanh, [tf.tensor1d([-1e4, -60, -9, -3.3, -1e-3, 0, 1e-7, 0.5, 2, 8, 12, 60, 1e4])], 200))));
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5, `output ${i}`));
  await selectBackend('wasm');
  assert.ok(hasFusedKernel('FerryGeluTanh'));
  const { kernels } = await tf.profile(() => tf.grad((input: tf.Tensor) => tf.sum(geluTanh(input)))(tf.randomNormal([3, 5])));
  assert.deepEqual(kernels.map((k) => k.name).filter((name) => /^(Tanh|Pow)$/.test(name)), []);
});

test('fused LayerNorm equals plain tfjs in value and in the gradients of x, gamma and beta', async () => {
  const cases: [number[], number][] = [[[4, 9], 1e-5], [[3, 7, 128], 1e-5], [[2, 5, 3, 17], 1e-3], [[1, 1], 1e-5]];
  const { cpu, wasm } = await onBoth(() => cases.flatMap(([shape, epsilon], i) => {
    const width = shape.at(-1)!;
    const x = tf.add(tf.randomNormal(shape, 0, 2, 'float32', 1 + i), 3);
    const gamma = tf.randomNormal([width], 1, 0.5, 'float32', 10 + i);
    const beta = tf.randomNormal([width], 0, 0.5, 'float32', 20 + i);
    return valueAndGrads((a, g, b) => layerNorm(a!, g!, b!, epsilon), [x, gamma, beta], 30 + i);
  }));
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5, `case ${Math.floor(i / 4)} output ${i % 4}`));
});

test('fused RMS norm (T5) equals plain tfjs in value and in the gradients of x and gamma', async () => {
  const cases: [number[], number][] = [[[4, 9], 1e-6], [[3, 7, 256], 1e-6], [[2, 5, 3, 17], 1e-3], [[1, 1], 1e-6]];
  const { cpu, wasm } = await onBoth(() => cases.flatMap(([shape, epsilon], i) => {
    const x = tf.add(tf.randomNormal(shape, 0, 2, 'float32', 1 + i), 1);
    const gamma = tf.randomNormal([shape.at(-1)!], 1, 0.5, 'float32', 10 + i);
    return valueAndGrads((a, g) => rmsNorm(a!, g!, epsilon), [x, gamma], 30 + i);
  }));
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5, `case ${Math.floor(i / 3)} output ${i % 3}`));
  await selectBackend('wasm');
  assert.ok(hasFusedKernel('FerryRmsNorm') && hasFusedKernel('FerryRmsNormGrad'));
});

/** T5's attention as plain tfjs ops: softmax(q k^T + bias + mask (+ causal)) v per head, no scale. */
function plainBiasedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, causal: boolean, bias?: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
  const [batch, queries, d] = q.shape as [number, number, number];
  const keys = k.shape[1]!;
  const split = (x: tf.Tensor, steps: number) => tf.transpose(tf.reshape(x, [batch, steps, heads, d / heads]), [0, 2, 1, 3]);
  let scores = tf.matMul(split(q, queries), split(k, keys), false, true);
  if (bias) scores = tf.add(scores, tf.expandDims(bias, 0));
  if (mask) scores = tf.add(scores, tf.reshape(mask, [batch, 1, 1, keys]));
  if (causal) scores = tf.add(scores, tf.tensor2d(Array.from({ length: queries * keys }, (_, i) => (i % keys <= Math.floor(i / keys) ? 0 : -1e9)), [queries, keys]));
  return tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), split(v, keys)), [0, 2, 1, 3]), [batch, queries, d]);
}

test('fused T5 attention (bias, key mask, causal; self from qkv and cross from q and kv) equals plain tfjs ops in value and gradients', async () => {
  // [batch, queries, keys, d, heads, self, causal, bias, mask]: odd head sizes and lengths leave partial vectors and tiles.
  const cases: [number, number, number, number, number, boolean, boolean, boolean, boolean][] = [
    [2, 7, 7, 15, 3, true, true, true, false], [3, 5, 5, 8, 2, true, false, true, true], [2, 6, 9, 10, 2, false, false, false, true],
    [1, 1, 1, 4, 1, true, true, true, true], [4, 32, 32, 256, 4, true, false, true, true],
  ];
  const { cpu, wasm } = await onBoth(() => cases.flatMap(([batch, queries, keys, d, heads, self, causal, withBias, withMask], i) => {
    const q = tf.randomNormal([batch, queries, self ? 3 * d : d], 0, 1, 'float32', 1 + i);
    const kv = self ? undefined : tf.randomNormal([batch, keys, 2 * d], 0, 1, 'float32', 11 + i);
    const bias = withBias ? tf.randomNormal([heads, queries, keys], 0, 1, 'float32', 21 + i) : undefined;
    // The last key of each row past the first is padding.
    const mask = withMask ? tf.tensor2d(Array.from({ length: batch * keys }, (_, j) => (j % keys === keys - 1 && j >= keys ? -1e9 : 0)), [batch, keys]) : undefined;
    const inputs = [q, ...(kv ? [kv] : []), ...(bias ? [bias] : [])];
    const f = (...xs: tf.Tensor[]) => {
      const [qIn, kvIn, biasIn] = self ? [xs[0]!, undefined, xs[1]] : [xs[0]!, xs[1], xs[2]];
      if (hasFusedBiasedAttention(qIn)) return fusedBiasedAttention(qIn, kvIn, { heads, causal, bias: biasIn, mask });
      const [qs, ks, vs] = self ? tf.split(qIn, 3, 2) : [qIn, ...tf.split(kvIn!, 2, 2)];
      return plainBiasedAttention(qs!, ks!, vs!, heads, causal, biasIn, mask);
    };
    return valueAndGrads(f, inputs, 40 + i);
  }));
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 2e-5, `output ${i}`));
});

test('fused causal attention equals the tfjs ops (reshape, transpose, masked softmax) in value and gradients', async () => {
  // Odd sizes: heads of 5, sequences that leave partial vectors and tiles; then nanogpt-cpu's.
  const cases: [batch: number, steps: number, dim: number, heads: number][] = [[2, 7, 15, 3], [1, 1, 8, 2], [3, 13, 12, 1], [2, 64, 128, 4]];
  const { cpu, wasm } = await onBoth(() => cases.flatMap(([batch, steps, dim, heads], i) => {
    const block = new FerryTransformerBlock({ dim, numHeads: heads, mlpDim: 2 * dim, dropout: 0, seed: 60 + i });
    const x = tf.randomNormal([batch, steps, dim], 0, 1, 'float32', 70 + i);
    block.apply(x);
    const weights = block.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(block.apply(x) as tf.Tensor, tf.randomNormal([batch, steps, dim], 0, 1, 'float32', 80 + i))) as tf.Scalar,
      weights);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.square(block.apply(input) as tf.Tensor)))(x);
    return [value, dx, ...weights.map((weight) => grads[weight.name]!)];
  }));
  cpu.forEach((values, i) => {
    const largest = values.reduce((max, v) => Math.max(max, Math.abs(v)), 1);
    assertClose(wasm[i]!, values, 1e-5 * largest, `output ${i}`);
  });
});

test('the fused attention is what runs on wasm, and attention dropout in training takes the tfjs ops', async () => {
  await selectBackend('wasm');
  const run = async (dropout: number, training: boolean) => {
    const block = new FerryTransformerBlock({ dim: 8, numHeads: 2, mlpDim: 16, dropout, seed: 1 });
    const x = tf.randomNormal([1, 4, 8]);
    const { kernels } = await tf.profile(() => block.apply(x, { training }) as tf.Tensor);
    return kernels.map((kernel) => kernel.name);
  };
  assert.ok((await run(0, true)).includes('FerryCausalAttention'));
  assert.ok((await run(0.1, false)).includes('FerryCausalAttention'));
  const withDropout = await run(0.1, true);
  assert.ok(!withDropout.includes('FerryCausalAttention') && withDropout.includes('Softmax'));
});

test('fused cross-entropy equals softmaxCrossEntropy over one-hot labels in value and gradient, saturated logits included', async () => {
  const cases: [number[], number][] = [[[2, 3, 7], 1], [[5, 322], 3], [[1, 1, 2], 0.1]];
  const { cpu, wasm } = await onBoth(() => cases.flatMap(([shape, std], i) => {
    const vocab = shape.at(-1)!;
    const targets = tf.cast(tf.floor(tf.randomUniform(shape.slice(0, -1), 0, vocab, 'float32', 50 + i)), 'int32');
    const logits = tf.randomNormal(shape, 0, std, 'float32', 60 + i);
    return [crossEntropy(logits, targets), tf.grad((z: tf.Tensor) => tf.mul(crossEntropy(z, targets), 1.7))(logits)];
  }).concat((() => {
    // A target 200 nats below the best class: its softmax probability underflows to 0 in float32.
    const logits = tf.tensor2d([[100, -100, 0], [0, 1, 2]]);
    const targets = tf.tensor1d([1, 2], 'int32');
    return [crossEntropy(logits, targets), tf.grad((z: tf.Tensor) => crossEntropy(z, targets))(logits)];
  })()));
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5, `output ${i}`));
  assertClose(wasm.at(-2)!, [(200 + Math.log(1 + Math.exp(-100) + Math.exp(-200)) + 2 - 2 + Math.log(1 + Math.exp(-1) + Math.exp(-2))) / 2], 1e-5, 'saturated loss');
  await selectBackend('wasm');
  assert.throws(() => crossEntropy(tf.zeros([2, 3]), tf.tensor1d([0, 3], 'int32')), /target 3 is not in \[0, 2\]/);
});

test("FerryLSTM's heap-kernel pass equals tfjs's LSTM on odd sizes (two steps, one unit, batch 1) in outputs and gradients", async () => {
  for (const [batch, steps, inputDim, units] of [[1, 2, 3, 1], [2, 9, 1, 5], [3, 4, 7, 33]] as const) {
    const { cpu, wasm } = await onBoth(() => {
      const x = tf.randomNormal([batch, steps, inputDim], 0, 1, 'float32', 70 + units);
      const reference = tf.layers.lstm({ units, returnSequences: true, recurrentActivation: 'sigmoid' });
      reference.apply(x);
      reference.setWeights(reference.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.5, 'float32', 80 + i)));
      const fused = new FerryLSTM({ units, returnSequences: true, recurrentActivation: 'sigmoid' });
      fused.apply(x);
      fused.setWeights(reference.getWeights());
      const target = tf.randomNormal([batch, steps, units], 0, 1, 'float32', 90);
      const run = (layer: tf.layers.Layer) => {
        const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, target)) as tf.Scalar;
        const { grads } = tf.variableGrads(() => loss(x), layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
        return [layer.apply(x, { training: true }) as tf.Tensor, ...Object.values(grads), tf.grad(loss)(x)];
      };
      return [...run(reference), ...run(fused)];
    });
    // wasm's fused layer against tfjs's own LSTM on cpu, output and every gradient.
    const half = cpu.length / 2;
    for (let i = 0; i < half; i++) assertClose(wasm[half + i]!, cpu[i]!, 1e-5, `[${batch},${steps},${inputDim}] x ${units}: output ${i}`);
  }
  await selectBackend('wasm');
  const layer = new FerryLSTM({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid' });
  const x = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 9);
  layer.apply(x);
  const { kernels } = await tf.profile(() => tf.grad((input: tf.Tensor) => tf.sum(layer.apply(input, { training: true }) as tf.Tensor))(x));
  const names = kernels.map((k) => k.name);
  assert.deepEqual([names.filter((n) => n === 'FerryLstmSequence').length, names.filter((n) => n === 'FerryLstmSequenceGrad').length, names.filter((n) => n === 'Tanh').length], [1, 1, 0]);
  assert.ok(kernels.length < 40, `${kernels.length} kernels: ${names.join(' ')}`);
});

test("the fused AdamW step equals optimizer.ts's AdamW over two steps, with decay, without, and a clipping scale", async () => {
  const shapes = [[7, 5], [5], [3, 1, 4]];
  const names = ['dense/kernel', 'dense/bias', 'block/mlp/fc/kernel'];
  const gradients = (step: number) => shapes.map((shape, i) => tf.randomNormal(shape, 0, 1, 'float32', 300 + 10 * step + i));
  const initial = () => shapes.map((shape, i) => tf.randomNormal(shape, 0, 1, 'float32', 200 + i));
  const rates = [1e-2, 5e-3];
  const scale = 0.7;

  await selectBackend('cpu');
  const variables = initial().map((value) => tf.variable(value));
  const optimizer = createAdamW(names.map((name, i) => ({ name, variable: variables[i]! })), DEFAULT_ADAMW);
  rates.forEach((lr, step) => tf.tidy(() => optimizer.applyGradients(gradients(step).map((g) => tf.mul(g, scale)), lr)));
  const expected = variables.map((v) => v.dataSync().slice());
  assert.deepEqual(optimizer.decayMask, [true, false, true]);

  await selectBackend('wasm');
  assert.ok(hasFusedAdamW());
  const { beta1, beta2, epsilon, weightDecay } = DEFAULT_ADAMW;
  let params = initial();
  let moments = shapes.map((shape) => [tf.zeros(shape), tf.zeros(shape)]);
  rates.forEach((lr, step) => {
    const t = step + 1;
    const grads = gradients(step);
    const results = params.map((param, i) => fusedAdamWStep(param, grads[i]!, moments[i]![0]!, moments[i]![1]!, tf.scalar(scale), {
      beta1, beta2, epsilon, stepSize: lr / (1 - beta1 ** t), secondCorrection: Math.sqrt(1 - beta2 ** t),
      decayFactor: optimizer.decayMask[i] ? 1 - lr * weightDecay : 1,
    }));
    params = results.map(([p]) => p);
    moments = results.map(([, m, v]) => [m, v]);
  });
  params.forEach((param, i) => assertClose(param.dataSync(), expected[i]!, 1e-5, names[i]!));

  // optimizer.ts itself takes the fused step on wasm.
  const wasmVariables = initial().map((value) => tf.variable(value));
  const wasmOptimizer = createAdamW(names.map((name, i) => ({ name, variable: wasmVariables[i]! })), DEFAULT_ADAMW);
  const kernelNames: string[] = [];
  for (const [step, lr] of rates.entries()) {
    const profile = await tf.profile(() => tf.tidy(() => wasmOptimizer.applyGradients(gradients(step).map((g) => tf.mul(g, scale)), lr)));
    kernelNames.push(...profile.kernels.map((k) => k.name));
  }
  assert.equal(kernelNames.filter((name) => name === 'FerryAdamW').length, 2 * names.length);
  wasmVariables.forEach((variable, i) => assertClose(variable.dataSync(), expected[i]!, 1e-5, `${names[i]} through createAdamW`));
});
