import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createAdamW, decaysByDefault, gradientClip, type Parameter } from '../../src/train/optimizer.ts';
import { createCosineSchedule } from '../../src/train/schedule.ts';
import { FerryError } from '../../src/errors.ts';

await tf.setBackend('cpu');

function close(actual: ArrayLike<number>, expected: readonly number[], tolerance = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i += 1) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** The same update in plain doubles, following PyTorch's AdamW line by line. */
function referenceAdamW(start: number[], grads: number[][], lrs: number[], decay: boolean): number[] {
  const [b1, b2, eps, wd] = [0.9, 0.99, 1e-8, 0.1];
  const p = [...start];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, stepIndex) => {
    const [t, lr] = [stepIndex + 1, lrs[stepIndex]!];
    for (let i = 0; i < p.length; i += 1) {
      if (decay) p[i] = p[i]! * (1 - lr * wd);
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      p[i] = p[i]! - (lr / (1 - b1 ** t)) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps));
    }
  });
  return p;
}

const hyper = { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1 };

test('AdamW: one step matches the hand computation (decayed matrix, undecayed bias)', () => {
  const kernel = tf.variable(tf.tensor2d([[1, -2]]));
  const bias = tf.variable(tf.tensor1d([0.5, 3]));
  const optimizer = createAdamW(
    [
      { name: 'dense/kernel', variable: kernel },
      { name: 'dense/bias', variable: bias },
    ],
    hyper,
  );
  assert.deepEqual(optimizer.decayMask, [true, false]);
  optimizer.applyGradients([tf.tensor2d([[0.5, -0.25]]), tf.tensor1d([1, -4])], 0.1);
  // By hand: decay 1 - 0.1*0.1 = 0.99; bias-corrected m/sqrt(v) = sign(g) on step 1, so each
  // parameter moves by lr = 0.1 against its gradient.
  close(kernel.dataSync(), [0.99 - 0.1, -1.98 + 0.1]);
  close(bias.dataSync(), [0.5 - 0.1, 3 + 0.1]);
  assert.equal(optimizer.step, 1);
});

test('AdamW: three steps match a double-precision reference', () => {
  const start = [0.3, -1.2, 2.5];
  const grads = [
    [0.1, -0.2, 0.3],
    [-0.5, 0.05, 0.2],
    [0.02, 0.4, -0.6],
  ];
  const w = tf.variable(tf.tensor2d([start]));
  const optimizer = createAdamW([{ name: 'w/kernel', variable: w }], hyper);
  grads.forEach((g, i) => optimizer.applyGradients([tf.tensor2d([g])], 0.05 * (i + 1)));
  close(w.dataSync(), referenceAdamW(start, grads, [0.05, 0.1, 0.15], true), 1e-5);
  const bias = tf.variable(tf.tensor1d(start));
  const biasOptimizer = createAdamW([{ name: 'w/bias', variable: bias }], hyper);
  grads.forEach((g) => biasOptimizer.applyGradients([tf.tensor1d(g)], 0.05));
  close(bias.dataSync(), referenceAdamW(start, grads, [0.05, 0.05, 0.05], false), 1e-5);
});

test('AdamW: saved state reloads into a fresh optimizer and continues identically', async () => {
  const make = () => tf.variable(tf.tensor2d([[0.7, -0.3], [0.2, 0.9]]));
  const a = make();
  const b = make();
  const optA = createAdamW([{ name: 'k', variable: a }], hyper);
  const grad1 = tf.tensor2d([[0.1, 0.2], [-0.3, 0.4]]);
  const grad2 = tf.tensor2d([[-0.2, 0.05], [0.3, 0.1]]);
  optA.applyGradients([grad1], 0.01);
  b.assign(a);
  const optB = createAdamW([{ name: 'k', variable: b }], hyper);
  optB.loadState(await optA.saveState());
  assert.equal(optB.step, 1);
  optA.applyGradients([grad2], 0.01);
  optB.applyGradients([grad2], 0.01);
  assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
});

test('AdamW: state of another shape or a corrupt file is a FerryError', async () => {
  const opt = createAdamW([{ name: 'k', variable: tf.variable(tf.zeros([2, 3])) }], hyper);
  const other = createAdamW([{ name: 'k', variable: tf.variable(tf.zeros([3, 2])) }], hyper);
  await assert.rejects(async () => other.loadState(await opt.saveState()), (error: unknown) => {
    assert.ok(error instanceof FerryError);
    assert.match(error.message, /shape \[2,3\].*\[3,2\]/);
    return true;
  });
  assert.throws(() => opt.loadState(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])), /not a ferry AdamW state/);
  const bytes = await opt.saveState();
  assert.throws(() => opt.loadState(bytes.subarray(0, bytes.length - 4)), /expected 48 bytes/);
});

test('decaysByDefault: matrices decay; biases, LayerNorm and embeddings do not', () => {
  const param = (name: string, shape: number[]): Parameter => ({ name, variable: tf.variable(tf.zeros(shape)) });
  assert.equal(decaysByDefault(param('block_0/attn/qkv/kernel', [4, 12])), true);
  assert.equal(decaysByDefault(param('lstm/recurrent_kernel', [4, 16])), true);
  assert.equal(decaysByDefault(param('block_0/attn/qkv/bias', [12])), false);
  assert.equal(decaysByDefault(param('block_0/ln1/gamma', [4])), false);
  assert.equal(decaysByDefault(param('embedding/embeddings', [10, 4])), false);
  assert.equal(decaysByDefault(param('position/embeddings', [8, 4])), false);
  const custom = createAdamW([param('embedding/embeddings', [3, 2])], { ...hyper, decays: () => true });
  assert.deepEqual(custom.decayMask, [true]);
  const noDecay = createAdamW([param('dense/kernel', [3, 2])], { ...hyper, weightDecay: 0 });
  assert.deepEqual(noDecay.decayMask, [false]);
});

test('gradientClip gives the global norm and a scale that brings it to the max norm only when above it', () => {
  const grads = [tf.tensor1d([3, 0]), tf.tensor2d([[0, 4]])]; // global norm 5
  const clipped = gradientClip(grads, 1);
  close(clipped.norm.dataSync(), [5], 1e-6);
  close(clipped.scale.dataSync(), [1 / (5 + 1e-6)], 1e-7);
  close(gradientClip(grads, 10).scale.dataSync(), [1]);
  const disabled = gradientClip(grads, 0);
  close(disabled.scale.dataSync(), [1]);
  close(disabled.norm.dataSync(), [5]);
});

test('applyGradients with a scale equals applyGradients on the scaled gradients', () => {
  const make = () => createAdamW([
    { name: 'dense/kernel', variable: tf.variable(tf.tensor2d([[1, -2]])) },
    { name: 'dense/bias', variable: tf.variable(tf.tensor1d([0.5, 3])) },
  ], hyper);
  const scaled = make();
  const reference = make();
  const grads = [tf.tensor2d([[0.5, -0.25]]), tf.tensor1d([1, -4])];
  scaled.applyGradients(grads, 0.1, tf.scalar(0.3));
  reference.applyGradients(grads.map((g) => tf.mul(g, 0.3)), 0.1);
  scaled.parameters.forEach(({ variable }, i) => close(variable.dataSync(), Array.from(reference.parameters[i]!.variable.dataSync()), 1e-7));
});

test('cosine schedule: linear warmup, cosine to minLr, flat after', () => {
  const lrAt = createCosineSchedule({ lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 });
  close([lrAt(0)], [1e-3 / 11], 1e-12);
  close([lrAt(9)], [1e-3 * 10 / 11], 1e-12);
  close([lrAt(10)], [1e-3], 1e-12);
  close([lrAt(60)], [1e-4 + 0.5 * (1e-3 - 1e-4)], 1e-12); // half way: cos(pi/2) = 0
  close([lrAt(35)], [1e-4 + 0.5 * (1 + Math.cos(Math.PI / 4)) * 9e-4], 1e-12);
  close([lrAt(110)], [1e-4], 1e-12);
  close([lrAt(5000)], [1e-4], 1e-12);
  const noWarmup = createCosineSchedule({ lr: 0.5, minLr: 0.5, warmupSteps: 0, decaySteps: 10 });
  assert.equal(noWarmup(0), 0.5);
  assert.equal(noWarmup(7), 0.5);
});
