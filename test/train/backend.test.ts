import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { AUTO_ORDER, selectBackend } from '../../src/train/backend.ts';
import { adapterAttempts, autoUsesAdapter, chooseAdapter, describeAdapter, probeAdapterIsolated } from '../../src/train/webgpu.ts';
import { registerWasmKernels } from '../../src/train/kernels/index.ts';
import { createModel, resolveModelConfig, type ModelConfig } from '../../src/train/models/index.ts';
import { FerryError } from '../../src/errors.ts';

const nativeInstalled = await import('@tensorflow/tfjs-node' as string).then(() => true, () => false);

function ferryError(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof FerryError, String(error));
    assert.equal(error.code, code);
    assert.match(error.toUserMessage(), pattern);
    return true;
  };
}

async function onBackend<T>(name: 'cpu' | 'wasm', run: () => T): Promise<T> {
  await selectBackend(name);
  assert.equal(tf.getBackend(), name);
  return run();
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

test('unknown and missing backends are FerryErrors that say what to do', async () => {
  await assert.rejects(selectBackend('tpu'), ferryError('unknown_backend', /Unknown backend "tpu"[^]*auto, tfjs-node-gpu, tfjs-node, wasm, cpu, webgpu/));
  if (nativeInstalled) {
    console.log('# @tensorflow/tfjs-node is installed here: its missing-package message is not tested');
  } else {
    await assert.rejects(selectBackend('tfjs-node'),
      ferryError('backend_unavailable', /tfjs-node backend is not installed[^]*npm install @tensorflow\/tfjs-node` on a machine that can reach its binary host/));
  }
  await assert.rejects(selectBackend('tfjs-node-gpu'), ferryError('backend_unavailable', /npm install @tensorflow\/tfjs-node-gpu/));
});

test('auto picks the fastest backend that starts and names the ones it skipped', async () => {
  const selected = await selectBackend();
  assert.equal(tf.getBackend(), selected.name.startsWith('tfjs-node') ? 'tensorflow' : selected.name);
  const gpu = autoUsesAdapter(await probeAdapterIsolated());
  console.log(`# webgpu for auto here: ${gpu.use ? 'a real GPU' : gpu.reason}`);
  if (nativeInstalled) {
    console.log('# @tensorflow/tfjs-node is installed here: auto takes it, the order below it is not tested');
  } else if (gpu.use) {
    assert.equal(selected.name, 'webgpu');
    assert.match(selected.detail, /^webgpu on .*; skipped tfjs-node-gpu \(not installed\), tfjs-node \(not installed\)$/);
  } else {
    assert.equal(selected.name, 'wasm');
    assert.match(selected.detail, /^wasm \(.*with ferry's training kernels.*skipped tfjs-node-gpu \(not installed\), tfjs-node \(not installed\), webgpu \(/);
    assert.ok(selected.detail.endsWith(`, webgpu (${gpu.reason})`), selected.detail);
  }
  const cpu = await selectBackend('cpu');
  assert.deepEqual([cpu.name, tf.getBackend()], ['cpu', 'cpu']);
});

test('auto tries native TensorFlow, then WebGPU on a real GPU, then wasm, then cpu', () => {
  assert.deepEqual(AUTO_ORDER, ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu']);
});

test('WebGPU adapters: a real GPU first, else a software one (named as such), else a reason and what to install', () => {
  assert.deepEqual(adapterAttempts('linux').map((a) => [a.backend, a.flags, a.options.featureLevel ?? 'core', a.env]), [
    ['vulkan', ['backend=vulkan'], 'core', {}],
    ['opengl', ['backend=opengl'], 'compatibility', { EGL_PLATFORM: 'surfaceless' }],
  ]);
  assert.deepEqual(adapterAttempts('darwin').map((a) => a.backend), ['metal']);
  assert.deepEqual(adapterAttempts('win32').map((a) => a.backend), ['d3d12']);

  const nvidia = { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA: 550.54.14' };
  const llvmpipe = { vendor: '', architecture: '', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL version 4.5 (Core Profile) Mesa 22.3.6' };
  const lavapipe = { vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', description: 'Mesa 22.3.6 (LLVM 15.0.6) lavapipe' };

  const gpu = chooseAdapter([{ backend: 'vulkan', info: nvidia }, { backend: 'opengl', info: llvmpipe }]);
  assert.ok(gpu.ok);
  assert.deepEqual([gpu.index, gpu.adapter.software], [0, null]);
  assert.equal(describeAdapter(gpu.adapter), 'NVIDIA H200 (nvidia, hopper, vulkan, NVIDIA: 550.54.14)');
  assert.deepEqual(autoUsesAdapter({ ok: true, adapter: gpu.adapter }), { use: true });

  const software = chooseAdapter([{ backend: 'vulkan', info: null }, { backend: 'opengl', info: llvmpipe }]);
  assert.ok(software.ok);
  assert.deepEqual([software.index, software.adapter.software], [1, 'llvmpipe']);
  assert.equal(describeAdapter(software.adapter), 'llvmpipe-llvm-15-0-6-256-bits- (opengl, OpenGL version 4.5 (Core Profile) Mesa 22.3.6), software (llvmpipe)');
  assert.deepEqual(autoUsesAdapter({ ok: true, adapter: software.adapter }), {
    use: false,
    reason: `only a software adapter, ${describeAdapter(software.adapter)}: slower than wasm`,
  });

  const hardwareAfterSoftware = chooseAdapter([{ backend: 'vulkan', info: lavapipe }, { backend: 'opengl', info: { ...nvidia, description: 'OpenGL ES 3.2 NVIDIA 550.54.14' } }]);
  assert.ok(hardwareAfterSoftware.ok);
  assert.deepEqual([hardwareAfterSoftware.index, hardwareAfterSoftware.adapter.backend], [1, 'opengl']);
  const fallback = chooseAdapter([{ backend: 'vulkan', info: { ...nvidia, isFallbackAdapter: true } }]);
  assert.ok(fallback.ok);
  assert.equal(fallback.adapter.software, 'a fallback adapter');

  const none = chooseAdapter([{ backend: 'vulkan', info: null, error: 'Vulkan init failed' }, { backend: 'opengl', info: null }], 'linux');
  assert.ok(!none.ok);
  assert.equal(none.reason, 'Dawn found no WebGPU adapter (vulkan: Vulkan init failed; opengl: no adapter)');
  assert.match(none.hint, /apt-get install libvulkan1[^]*apt-get install libegl-dev libegl-mesa0 libgl1-mesa-dri[^]*--backend wasm/);
  assert.deepEqual(autoUsesAdapter(none), { use: false, reason: none.reason });
});

test('wasm UnsortedSegmentSum equals cpu for any shapes, dropping out-of-range ids', async () => {
  registerWasmKernels();
  const cases: { xShape: number[]; ids: number[]; idsShape: number[]; numSegments: number }[] = [
    { xShape: [5], ids: [0, 2, 2, 1, 0], idsShape: [5], numSegments: 3 },
    { xShape: [6, 3], ids: [3, 0, 3, 3, 1, 0], idsShape: [6], numSegments: 5 },
    { xShape: [2, 3, 4], ids: [1, 0, 1, 2, 2, 0], idsShape: [2, 3], numSegments: 4 },
    { xShape: [4, 2, 2, 3], ids: [0, 1, 0, 1], idsShape: [4], numSegments: 2 },
    { xShape: [5, 2], ids: [0, -1, 4, 7, 2], idsShape: [5], numSegments: 5 },
    { xShape: [3, 0], ids: [0, 1, 0], idsShape: [3], numSegments: 2 },
  ];
  for (const [index, { xShape, ids, idsShape, numSegments }] of cases.entries()) {
    const x = Array.from({ length: xShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7 + index));
    const rowShape = xShape.slice(idsShape.length);
    const rowSize = rowShape.reduce((a, b) => a * b, 1);
    const reference = new Array<number>(numSegments * rowSize).fill(0);
    ids.forEach((id, i) => {
      if (id >= 0 && id < numSegments) for (let j = 0; j < rowSize; j++) reference[id * rowSize + j]! += x[i * rowSize + j]!;
    });
    const run = () => tf.tidy(() => {
      const segmentIds: tf.Tensor = tf.tensor(ids, idsShape, 'int32');
      const result = tf.unsortedSegmentSum(tf.tensor(x, xShape), segmentIds as tf.Tensor1D, numSegments);
      return { shape: result.shape, values: result.dataSync().slice() };
    });
    const actual = await onBackend('wasm', run);
    assert.deepEqual(actual.shape, [numSegments, ...rowShape], `case ${index}`);
    assert.ok(maxAbsDiff(actual.values, reference) < 1e-6, `case ${index}`);
    if (idsShape.length === 1) { // tfjs's cpu kernel handles only 1-D ids
      const expected = await onBackend('cpu', run);
      assert.ok(maxAbsDiff(actual.values, expected.values) < 1e-6, `case ${index} vs cpu`);
    }
  }
  const dropped = await onBackend('wasm', () => tf.unsortedSegmentSum(tf.tensor1d([1, 2, 4, 8]), tf.tensor1d([1, -1, 5, 1], 'int32'), 2).arraySync());
  assert.deepEqual(dropped, [0, 9]);
});

test('an Embedding layer gradient step on wasm equals the same step on cpu', async () => {
  const step = () => tf.tidy(() => {
    const embedding = tf.layers.embedding({ inputDim: 50, outputDim: 8, embeddingsInitializer: tf.initializers.randomNormal({ seed: 11 }) });
    const ids = tf.tensor2d([[3, 7, 3, 49], [0, 3, 7, 12]], [2, 4], 'int32');
    const target = tf.randomNormal([2, 4, 8], 0, 1, 'float32', 12);
    embedding.apply(ids);
    const before = embedding.getWeights()[0]!.arraySync() as number[][];
    tf.train.sgd(0.5).minimize(() => tf.mean(tf.square(tf.sub(embedding.apply(ids) as tf.Tensor, target))) as tf.Scalar);
    const after = embedding.getWeights()[0]!.arraySync() as number[][];
    return { before, after };
  });
  const expected = await onBackend('cpu', step);
  const actual = await onBackend('wasm', step);
  assert.ok(maxAbsDiff(actual.after.flat(), expected.after.flat()) < 1e-5);
  const moved = actual.after.map((row, i) => maxAbsDiff(row, actual.before[i]!) > 0);
  assert.deepEqual(moved.flatMap((m, i) => (m ? [i] : [])), [0, 3, 7, 12, 49], 'exactly the looked-up rows move');
});

/**
 * One SGD step of a model on `backend` from given initial weights: the loss and the updated
 * weights. Not Adam: its first step moves every weight by about lr * sign(g), so a gradient of
 * ~1e-8 (near Adam's epsilon) turns a 1e-9 difference between backends into 1e-5 in a weight,
 * and random initial weights made that a coin toss.
 */
async function trainingStep(backend: 'cpu' | 'wasm', config: ModelConfig, initial: Float32Array[]) {
  return onBackend(backend, () => {
    const model = createModel(config);
    model.setWeights(model.weights.map((w, i) => tf.tensor(initial[i]!, w.shape as number[])));
    const x = tf.tensor2d([[1, 4, 2, 8, 5, 7], [9, 3, 0, 6, 2, 2]], [2, 6], 'int32');
    const y = tf.oneHot(tf.tensor2d([[4, 2, 8, 5, 7, 1], [3, 0, 6, 2, 2, 10]], [2, 6], 'int32'), config.vocabSize);
    const optimizer = tf.train.sgd(0.5);
    const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true)!;
    const result = { loss: loss.dataSync()[0]!, weights: model.getWeights().map((w) => w.dataSync().slice() as Float32Array) };
    tf.dispose([x, y, loss]);
    optimizer.dispose();
    model.dispose();
    return result;
  });
}

test('one training step of each tiny model on wasm equals the step on cpu (all gradients exist on wasm)', async () => {
  const configs: [string, ModelConfig][] = [
    ['lstm', resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: { numLayers: 2 }, vocabSize: 11 })],
    ['lstm tied', resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: { tieWeights: true, hiddenSize: 16 }, vocabSize: 11 })],
    ['transformer', resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: {}, vocabSize: 11 })],
    ['transformer tied sinusoidal', resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { tieWeights: true, positional: 'sinusoidal' }, vocabSize: 11 })],
    // RoPE rotates q and k ahead of ferry's fused attention kernel; ALiBi takes the plain ops.
    ['transformer rope', resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { positional: 'rope' }, vocabSize: 11 })],
    ['transformer alibi', resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { positional: 'alibi' }, vocabSize: 11 })],
  ];
  for (const [label, config] of configs) {
    const initial = await onBackend('cpu', () => {
      const model = createModel(config);
      const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      model.dispose();
      return weights;
    });
    const cpu = await trainingStep('cpu', config, initial);
    const wasm = await trainingStep('wasm', config, initial);
    assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-5, `${label}: loss ${cpu.loss} vs ${wasm.loss}`);
    assert.ok(Math.abs(cpu.loss - Math.log(11)) < 1, `${label}: initial loss ${cpu.loss} is near ln(vocab)`);
    cpu.weights.forEach((w, i) => {
      assert.ok(maxAbsDiff(w, wasm.weights[i]!) < 1e-5, `${label}: weight ${i} differs by ${maxAbsDiff(w, wasm.weights[i]!)}`);
      assert.ok(maxAbsDiff(w, initial[i]!) > 0, `${label}: weight ${i} was updated`);
    });
  }
});
