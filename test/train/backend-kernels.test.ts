import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/train/backend.ts';
import { FerryLSTM } from '../../src/train/models/index.ts';

/** Runs `run` on cpu and on wasm (with ferry's kernels) and returns both results as plain arrays. */
async function onBoth(run: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: Float32Array[]; wasm: Float32Array[]; shapes: number[][] }> {
  const collect = () => tf.tidy(() => {
    const out = run();
    return (Array.isArray(out) ? out : [out]).map((t) => ({ values: t.dataSync().slice() as Float32Array, shape: t.shape }));
  });
  await selectBackend('cpu');
  const cpu = collect();
  await selectBackend('wasm');
  const wasm = collect();
  assert.deepEqual(wasm.map((r) => r.shape), cpu.map((r) => r.shape));
  return { cpu: cpu.map((r) => r.values), wasm: wasm.map((r) => r.values), shapes: cpu.map((r) => r.shape) };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, label);
  for (let i = 0; i < actual.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]!));
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance * scale, `${label}: [${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

test('wasm matMul equals cpu for every transpose combination, batch shape and broadcast', async () => {
  const cases: [number[], number[]][] = [
    [[5, 7], [7, 3]], [[1, 5, 7], [1, 7, 3]], [[4, 5, 7], [4, 7, 3]], [[2, 3, 5, 7], [2, 3, 7, 3]],
    [[4, 5, 7], [1, 7, 3]], [[1, 5, 7], [4, 7, 3]], [[4, 5, 7], [7, 3]], [[6, 1], [1, 4]], [[3, 0, 2], [3, 2, 4]],
    // Rows and columns that leave partial 4 x 8 tiles, and depths past one 256-deep block.
    [[37, 300], [300, 19]], [[2, 13, 513], [2, 513, 11]], [[3, 9, 260], [260, 17]], [[4, 8], [8, 16]],
    [[40, 9], [9, 3]], [[3, 40, 9], [3, 9, 2]], [[40, 9], [3, 9, 2]], [[3, 40, 9], [9, 2]], [[2, 3, 4], [2, 4, 0]], [[2, 3, 0], [2, 0, 4]],
    // A batch axis of 1 on one side only still appears in the output shape.
    [[5, 7], [1, 7, 3]], [[2, 1, 5, 7], [7, 3]], [[3, 5, 7], [1, 1, 7, 3]],
  ];
  for (const [shapeA, shapeB] of cases) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const a = transposeA ? [...shapeA.slice(0, -2), shapeA.at(-1)!, shapeA.at(-2)!] : shapeA;
        const b = transposeB ? [...shapeB.slice(0, -2), shapeB.at(-1)!, shapeB.at(-2)!] : shapeB;
        const { cpu, wasm } = await onBoth(() => tf.matMul(tf.randomNormal(a, 0, 1, 'float32', 1), tf.randomNormal(b, 0, 1, 'float32', 2), transposeA, transposeB));
        // Relative to the product's largest entry: a sum over hundreds of terms carries rounding
        // of that size in either backend, whatever the size of the entry it sums to.
        const largest = cpu[0]!.reduce((max, x) => Math.max(max, Math.abs(x)), 1);
        assertClose(wasm[0]!, cpu[0]!, 1e-5 * largest, `${a} x ${b} ${transposeA} ${transposeB}`);
      }
    }
  }
});

test('wasm fused matMul (a dense layer) equals cpu with a bias, transposes, a batch and an activation', async () => {
  const random = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  const { cpu, wasm, shapes } = await onBoth(() => [
    tf.fused.matMul({ a: random([37, 19], 1), b: random([19, 11], 2), bias: random([11], 3) }),
    tf.fused.matMul({ a: random([19, 37], 1), b: random([11, 19], 2), bias: random([11], 3), transposeA: true, transposeB: true }),
    tf.fused.matMul({ a: random([3, 5, 7], 4), b: random([7, 6], 5), bias: random([6], 6) }),
    tf.fused.matMul({ a: random([5, 7], 4), b: random([7, 6], 5) }),
    // A bias of one number, broadcast (the stock kernel got it wrong); an activation (handed to the stock kernel).
    tf.fused.matMul({ a: random([5, 7], 4), b: random([7, 6], 5), bias: random([1], 7) }),
    tf.fused.matMul({ a: random([5, 7], 4), b: random([7, 6], 5), bias: random([6], 6), activation: 'relu' }),
  ]);
  assert.deepEqual(shapes, [[37, 11], [37, 11], [3, 5, 6], [5, 6], [5, 6], [5, 6]]);
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5 * values.reduce((max, x) => Math.max(max, Math.abs(x)), 1), `fused ${i}`));
});

test('wasm matMul refuses inner dimensions that do not match, as the stock kernel does', async () => {
  await selectBackend('wasm');
  assert.throws(() => tf.matMul(tf.zeros([4, 6]), tf.zeros([3, 6]), false, false), /inner shapes \(6\) and \(3\)/);
  assert.throws(() => tf.matMul(tf.zeros([2, 4, 6]), tf.zeros([2, 5, 3]), true, true), /inner shapes \(4\) and \(3\)/);
});

test('wasm Transpose equals cpu for matrix, batched and other permutations, odd sizes included', async () => {
  const cases: [number[], number[]][] = [
    [[37, 53], [1, 0]], [[5, 33, 70], [0, 2, 1]], [[1, 7, 1, 9], [3, 1, 2, 0]], [[3, 4, 5, 6], [0, 2, 1, 3]],
    [[2, 3, 4], [2, 0, 1]], [[4, 1, 6], [2, 1, 0]], [[6, 5], [0, 1]], [[0, 4], [1, 0]], [[3, 4, 5], [1, 0, 2]],
  ];
  const { cpu, wasm } = await onBoth(() => cases.flatMap(([shape, perm], i) => [
    tf.transpose(tf.randomNormal(shape, 0, 1, 'float32', 20 + i), perm),
    tf.transpose(tf.cast(tf.mul(tf.randomUniform(shape, 0, 100, 'float32', 40 + i), 1), 'int32'), perm),
  ]));
  cpu.forEach((values, i) => assert.deepEqual(Array.from(wasm[i]!), Array.from(values), `case ${cases[i >> 1]}`));
});

test('wasm Sum over leading axes equals cpu, with and without keepDims', async () => {
  const x = () => tf.randomNormal([7, 5, 13], 0, 1, 'float32', 11);
  const { cpu, wasm, shapes } = await onBoth(() => [
    tf.sum(x(), 0), tf.sum(x(), [0, 1]), tf.sum(x(), [1, 0], true), tf.sum(x(), -1), tf.sum(x(), [0, 2]), tf.sum(x()),
    tf.sum(tf.zeros([0, 4]), 0),
    // Row counts and widths that leave a partial group of four rows and of four columns.
    tf.sum(tf.randomNormal([7, 13], 0, 1, 'float32', 14), 0), tf.sum(tf.randomNormal([769, 130], 0, 1, 'float32', 15), 0),
  ]);
  assert.deepEqual(shapes, [[5, 13], [13], [1, 1, 13], [7, 5], [5], [], [4], [13], [130]]);
  cpu.forEach((values, i) => assertClose(wasm[i]!, values, 1e-5, `sum ${i}`));
});

test('wasm Gather of rows equals cpu and refuses an index out of range', async () => {
  const { cpu, wasm, shapes } = await onBoth(() => [
    tf.gather(tf.randomNormal([11, 3, 5], 0, 1, 'float32', 12), tf.tensor2d([[0, 10, 3], [3, 3, 7]], [2, 3], 'int32')),
    tf.gather(tf.randomNormal([4, 6], 0, 1, 'float32', 13), tf.tensor1d([1, 3], 'int32'), 1),
  ]);
  assert.deepEqual(shapes, [[2, 3, 3, 5], [4, 2]]);
  cpu.forEach((values, i) => assert.deepEqual(Array.from(wasm[i]!), Array.from(values), `gather ${i}`));
  await selectBackend('wasm');
  const before = tf.memory().numTensors;
  assert.throws(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([1, 3], 'int32')), /index value 3 is not in \[0, 2\]/);
  assert.equal(tf.memory().numTensors, before + 2);
});

test('wasm Identity and same-dtype Cast share memory, and the memory lives until the last reference goes', async () => {
  await selectBackend('wasm');
  const x = tf.tensor1d([1, 2, 3]);
  const copies = [tf.clone(x), tf.cast(x, 'float32')];
  const ints = tf.cast(x, 'int32');
  x.dispose();
  assert.deepEqual(copies.map((c) => Array.from(c.dataSync())), [[1, 2, 3], [1, 2, 3]]);
  assert.equal(ints.dtype, 'int32');
  assert.deepEqual(Array.from(ints.dataSync()), [1, 2, 3]);
  const grad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.square(input), tf.clone(input))))(copies[0]!);
  assert.deepEqual(Array.from(grad.dataSync()), [3, 12, 27]);
  tf.dispose([...copies, ints, grad]);
});

test('wasm Slice, split and unstack equal cpu on any axis and rank', async () => {
  const x = () => tf.reshape(tf.range(0, 2 * 3 * 4 * 5), [2, 3, 4, 5]);
  const { cpu, wasm, shapes } = await onBoth(() => [
    tf.slice(x(), [1, 0, 1, 2], [1, 3, 2, -1]),
    tf.slice(x(), [0, 1, 0, 0], [2, 2, 4, 5]),
    tf.slice(x(), [1, 2, 3, 4], [1, 1, 1, 1]),
    tf.slice(tf.range(0, 10), [3], [4]),
    tf.slice(x(), [0, 0, 0, 0], [2, 0, 4, 5]),
    ...tf.split(x(), [1, 2], 1),
    ...tf.split(x(), 5, 3),
    ...tf.unstack(x(), 2),
    ...tf.unstack(x(), 0),
    ...tf.unstack(tf.range(0, 6, 1, 'int32').reshape([3, 2]), 1),
  ]);
  assert.equal(shapes.length, 5 + 2 + 5 + 4 + 2 + 2);
  cpu.forEach((values, i) => assert.deepEqual(Array.from(wasm[i]!), Array.from(values), `output ${i}`));
  await selectBackend('wasm');
  assert.deepEqual(tf.unstack(tf.tensor1d(['a', 'b'], 'string')).map((t) => t.arraySync()), ['a', 'b']);
});

test('the Tile gradient sums the repeated blocks', async () => {
  const { cpu, wasm } = await onBoth(() => {
    const x = tf.randomNormal([2, 3], 0, 1, 'float32', 3);
    const dy = tf.randomNormal([6, 6], 0, 1, 'float32', 4);
    return tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.tile(input, [3, 2]), dy)))(x);
  });
  await selectBackend('cpu');
  const dy = tf.randomNormal([6, 6], 0, 1, 'float32', 4).arraySync() as number[][];
  const expected: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
    let sum = 0;
    for (let r = 0; r < 3; r++) for (let s = 0; s < 2; s++) sum += dy[r * 2 + i]![s * 3 + j]!;
    expected.push(sum);
  }
  assertClose(cpu[0]!, expected, 1e-5, 'cpu');
  assertClose(wasm[0]!, expected, 1e-5, 'wasm');
  const rank3 = await onBoth(() => tf.grad((input: tf.Tensor) => tf.sum(tf.square(tf.tile(input, [2, 1, 3]))))(tf.range(0, 8).reshape([2, 2, 2])));
  assert.deepEqual(Array.from(rank3.cpu[0]!), Array.from({ length: 8 }, (_, k) => 2 * k * 6));
});

test("FerryLSTM's fused pass equals tfjs's LSTM in outputs and in every gradient", async () => {
  for (const returnSequences of [true, false]) {
    const { cpu, wasm } = await onBoth(() => {
      const x = tf.randomNormal([3, 7, 5], 0, 1, 'float32', 5);
      const reference = tf.layers.lstm({ units: 6, returnSequences, recurrentActivation: 'sigmoid' });
      const fused = new FerryLSTM({ units: 6, returnSequences, recurrentActivation: 'sigmoid' });
      reference.apply(x);
      fused.apply(x);
      fused.setWeights(reference.getWeights().map((w, i) => tf.add(w, tf.randomNormal(w.shape, 0, 0.3, 'float32', 10 + i))));
      reference.setWeights(fused.getWeights());
      const target = tf.randomNormal(returnSequences ? [3, 7, 6] : [3, 6], 0, 1, 'float32', 6);
      const gradients = (layer: tf.layers.Layer) => {
        const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, target)) as tf.Scalar;
        const { value, grads } = tf.variableGrads(() => loss(x), layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
        return [value, ...Object.values(grads), tf.grad(loss)(x), layer.apply(x) as tf.Tensor];
      };
      return [...gradients(reference), ...gradients(fused)];
    });
    for (const [backend, results] of [['cpu', cpu], ['wasm', wasm]] as const) {
      const half = results.length / 2;
      for (let i = 0; i < half; i++) assertClose(results[half + i]!, results[i]!, 2e-5, `${backend} returnSequences=${returnSequences} output ${i}`);
    }
  }
});

test('FerryLSTM projects all time steps with one matMul (the fused pass runs)', async () => {
  await selectBackend('wasm');
  const layer = new FerryLSTM({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid' });
  const x = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 9);
  layer.apply(x);
  const { kernels } = await tf.profile(() => layer.apply(x, { training: true }) as tf.Tensor);
  const inputProjections = kernels.filter((k) => /MatMul/.test(k.name) && k.inputShapes[0]?.join() === '10,3');
  assert.equal(inputProjections.length, 1, kernels.map((k) => `${k.name} ${k.inputShapes.join(' ')}`).join('; '));
});

test('FerryLSTM is saved as a standard LSTM and falls back to tfjs for what it does not fuse', async () => {
  await selectBackend('cpu');
  const layer = new FerryLSTM({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid', name: 'rnn' });
  assert.equal(layer.getClassName(), 'LSTM');
  const input = tf.input({ shape: [null, 3] });
  const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
  const topology = model.toJSON(undefined, false) as { config: { layers: { class_name: string }[] } };
  assert.deepEqual(topology.config.layers.map((l) => l.class_name), ['InputLayer', 'LSTM']);
  const restored = await tf.models.modelFromJSON(topology as unknown as tf.io.ModelJSON);
  assert.ok(restored.getLayer('rnn') instanceof FerryLSTM);

  const hard = new FerryLSTM({ units: 4, returnSequences: true, recurrentActivation: 'hardSigmoid' });
  const reference = tf.layers.lstm({ units: 4, returnSequences: true, recurrentActivation: 'hardSigmoid' });
  const x = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 9);
  reference.apply(x);
  hard.apply(x);
  hard.setWeights(reference.getWeights());
  assert.deepEqual((hard.apply(x) as tf.Tensor).arraySync(), (reference.apply(x) as tf.Tensor).arraySync());
});
