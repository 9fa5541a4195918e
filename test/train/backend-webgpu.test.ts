/**
 * ferry on tfjs's WebGPU backend (Dawn, from npm), checked against the reference cpu backend.
 * Without a GPU this runs on Mesa's llvmpipe through Dawn's OpenGL backend (CI installs
 * libegl-dev libegl-mesa0 libgl1-mesa-dri); where no adapter exists at all it skips and says why.
 *
 * Tolerances: the GPU kernels compute in float32 like cpu, but sum in other orders (tiled and
 * vec4 matMuls, tree reductions) and use the GPU's exp/tanh, so each op differs from cpu by a
 * few float32 ulps of its largest terms rather than bit for bit. Measured on llvmpipe: layer
 * outputs and gradients within 2.2e-7 of their scale (tolerance 1e-5), losses within 1e-7
 * relative (1e-5); weights after four AdamW steps within 3.3e-6 of their scale (1e-4: Adam
 * divides by the gradient's running RMS, which magnifies the ulps of small gradients).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/train/backend.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { FerryLSTM, FerryTransformerBlock } from '../../src/train/models/index.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { registerWebGpuBackend } from '../../src/train/webgpu.ts';
import { collectingReporter, tempDir, writePatternCorpus } from './trainer-helpers.ts';

const probe = await registerWebGpuBackend();
const skip = probe.ok ? false : `no WebGPU adapter: ${probe.reason}. ${probe.hint}`;
if (skip) console.log(`# skipping the webgpu tests (${skip})`);

/** Runs `build` on `backend` and reads every tensor it returns (with data(): WebGPU reads are asynchronous). */
async function valuesOn(backend: 'cpu' | 'webgpu', build: () => tf.Tensor[]): Promise<Float32Array[]> {
  await selectBackend(backend);
  assert.equal(tf.getBackend(), backend);
  const tensors = tf.tidy(build);
  const values = await Promise.all(tensors.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(tensors);
  return values;
}

/** |actual - expected| <= tolerance * (1 + max |expected|), element by element; returns the worst ratio. */
function assertClose(actual: Float32Array, expected: Float32Array, tolerance: number, label: string): number {
  assert.equal(actual.length, expected.length, label);
  const scale = 1 + expected.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / scale);
  assert.ok(worst <= tolerance, `${label}: differs by ${worst.toExponential(2)} of its scale (tolerance ${tolerance})`);
  return worst;
}

test('--backend webgpu starts and names the adapter it runs on', { skip }, async () => {
  const selected = await selectBackend('webgpu');
  assert.equal(selected.name, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.ok(probe.ok);
  assert.match(selected.detail, new RegExp(`^webgpu on .*\\b${probe.adapter.backend}\\b`));
  if (probe.adapter.software) {
    assert.match(selected.detail, /software \(\w+\): no GPU found, slower than wasm$/);
  } else {
    assert.doesNotMatch(selected.detail, /software/);
  }
  const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]));
  assert.deepEqual(Array.from(await product.data()), [19, 22, 43, 50]);
  product.dispose();
});

test('addN of more terms than one shader can bind (gradient clipping sums one per weight) adds them all', { skip }, async () => {
  const terms = () => Array.from({ length: 41 }, (_, i) => tf.tensor1d([i, -2 * i, 0.5]));
  const [sum] = await valuesOn('webgpu', () => [tf.addN(terms())]);
  assert.deepEqual(Array.from(sum!), [820, -1640, 20.5]);
  const [few] = await valuesOn('webgpu', () => [tf.addN(terms().slice(0, 3))]);
  assert.deepEqual(Array.from(few!), [3, -6, 1.5]);
});

/** The layer's output, the gradient of a weighted sum of it for the input and for every weight. */
function outputAndGradients(layer: tf.layers.Layer, x: tf.Tensor, target: tf.Tensor): tf.Tensor[] {
  const output = layer.apply(x) as tf.Tensor;
  const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, target)) as tf.Scalar;
  const { value, grads } = tf.variableGrads(() => loss(x), layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
  return [output, value, tf.grad(loss)(x), ...layer.trainableWeights.map((w) => grads[w.originalName]!)];
}

test('FerryLSTM and FerryTransformerBlock: outputs and all gradients on webgpu equal cpu (odd sizes)', { skip }, async () => {
  const cases: [string, () => tf.Tensor[]][] = [
    ['lstm', () => {
      const x = tf.randomNormal([3, 7, 5], 0, 1, 'float32', 1);
      const layer = new FerryLSTM({ units: 9, returnSequences: true, recurrentActivation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), recurrentInitializer: tf.initializers.glorotNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ seed: 4, stddev: 0.1 }) });
      return outputAndGradients(layer, x, tf.randomNormal([3, 7, 9], 0, 1, 'float32', 5));
    }],
    ['lstm last step, 20 steps (more than one shader binds: concat in chunks)', () => {
      const x = tf.randomNormal([2, 20, 3], 0, 1, 'float32', 6);
      const layer = new FerryLSTM({ units: 4, recurrentActivation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 7 }), recurrentInitializer: tf.initializers.glorotNormal({ seed: 8 }) });
      return outputAndGradients(layer, x, tf.randomNormal([2, 4], 0, 1, 'float32', 9));
    }],
    ['transformer block', () => {
      const x = tf.randomNormal([2, 7, 12], 0, 1, 'float32', 10);
      const layer = new FerryTransformerBlock({ dim: 12, numHeads: 3, mlpDim: 20, dropout: 0, initStd: 0.2, seed: 11 });
      return outputAndGradients(layer, x, tf.randomNormal([2, 7, 12], 0, 1, 'float32', 12));
    }],
  ];
  for (const [label, build] of cases) {
    const cpu = await valuesOn('cpu', build);
    const gpu = await valuesOn('webgpu', build);
    const names = ['output', 'loss', 'input gradient', ...cpu.slice(3).map((_, i) => `weight ${i} gradient`)];
    const worst = cpu.map((expected, i) => assertClose(gpu[i]!, expected, 1e-5, `${label} ${names[i]}`));
    console.log(`# ${label}: worst difference ${Math.max(...worst).toExponential(2)} of scale`);
  }
});

function trainOptions(dir: string, corpus: string, arch: 'lstm' | 'transformer', backend: string): TrainOptions {
  return {
    corpus,
    out: join(dir, `${arch}-${backend}`),
    arch,
    preset: 'tiny',
    model: arch === 'lstm' ? { hiddenSize: 24, embeddingDim: 12, blockSize: 12 } : { nLayer: 1, nHead: 2, nEmbd: 16, blockSize: 12 },
    tokenizer: 'char',
    backend,
    cacheDir: join(dir, 'cache'),
    reporter: collectingReporter(),
    hyperparameters: { steps: 4, batchSize: 4, lr: 1e-2, warmupSteps: 0, evalInterval: 4, evalIters: 1, logInterval: 2, seed: 3 },
  };
}

async function weightsOf(runDir: string): Promise<Float32Array[]> {
  await selectBackend('cpu');
  const { model } = await loadCheckpoint(runDir, { which: 'last' });
  const values = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  return values;
}

test('ferry train --backend webgpu: a tiny Transformer and a tiny LSTM take the same steps as on cpu', { skip }, async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 40, 'to be or not to be\n');
  for (const arch of ['transformer', 'lstm'] as const) {
    const cpu = await train(trainOptions(dir, corpus, arch, 'cpu'));
    const gpu = await train(trainOptions(dir, corpus, arch, 'webgpu'));
    assert.equal(gpu.backend, 'webgpu');
    assert.equal(gpu.losses.length, 4);
    gpu.losses.forEach((loss, i) => assert.ok(Math.abs(loss - cpu.losses[i]!) <= 1e-5 * cpu.losses[i]!, `${arch} step ${i + 1}: loss ${loss} vs cpu ${cpu.losses[i]}`));
    assert.ok(cpu.losses.at(-1)! < cpu.losses[0]!, `${arch}: the loss falls (${cpu.losses.join(', ')})`);
    assert.ok(Math.abs(gpu.lastValLoss! - cpu.lastValLoss!) <= 1e-5 * cpu.lastValLoss!, `${arch}: val loss ${gpu.lastValLoss} vs ${cpu.lastValLoss}`);
    const [cpuWeights, gpuWeights] = [await weightsOf(cpu.runDir), await weightsOf(gpu.runDir)];
    const worst = cpuWeights.map((expected, i) => assertClose(gpuWeights[i]!, expected, 1e-4, `${arch} weight ${i}`));
    const lossDifference = Math.max(...gpu.losses.map((loss, i) => Math.abs(loss - cpu.losses[i]!) / cpu.losses[i]!));
    console.log(`# ${arch}: losses ${gpu.losses.map((l) => l.toFixed(5)).join(', ')} (worst relative difference from cpu ${lossDifference.toExponential(2)}); worst weight difference ${Math.max(...worst).toExponential(2)} of scale`);
  }
});

test('ferry train --backend webgpu with no adapter at all is a FerryError that says what to install', async (t) => {
  if (probe.ok && probe.adapter.backend !== 'opengl') {
    t.skip(`Dawn finds an adapter through ${probe.adapter.backend} here, which this test cannot hide`);
    return;
  }
  if (!probe.ok && !probe.reason.startsWith('Dawn found no WebGPU adapter')) {
    t.skip(probe.reason);
    return;
  }
  const dir = tempDir();
  const corpus = writePatternCorpus(dir);
  const out = join(dir, 'run');
  const env: NodeJS.ProcessEnv = { ...process.env, EGL_PLATFORM: 'x11' }; // without a display EGL cannot start: no software adapter either
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  const cli = join(import.meta.dirname, '..', '..', 'bin', 'ferry.js');
  const args = [cli, 'train', '--backend', 'webgpu', '--arch', 'lstm', '--preset', 'tiny', '--corpus', corpus, '--out', out, '--steps', '2', '--warmup', '0'];
  const failure = await promisify(execFile)(process.execPath, args, { env, timeout: 60_000 }).then(() => null, (error: { code: number; stderr: string }) => error);
  assert.ok(failure, 'the run must fail');
  assert.equal(failure.code, 1);
  assert.match(failure.stderr, /ferry: The webgpu backend is unavailable: Dawn found no WebGPU adapter \(vulkan: no adapter; opengl: no adapter\)\./);
  assert.match(failure.stderr, /apt-get install libvulkan1[^]*apt-get install libegl-dev libegl-mesa0 libgl1-mesa-dri[^]*--backend wasm/);
  assert.doesNotMatch(failure.stderr, /\n\s+at .*\.[jt]s:\d+:\d+/, 'no JavaScript stack trace');
  assert.equal(existsSync(out), false, 'no run dir is left behind');
});
