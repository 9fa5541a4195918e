/**
 * Where a training step's time goes on a backend: builds a model, runs the trainer's step
 * (forward, backward, gradient clipping, AdamW) on random batches and prints the median CPU and
 * wall ms per step, plus (with --kernels) each kernel's share of the time and launches per step.
 *
 *   node --import tsx bench/profile-train-step.ts                         # nanogpt-cpu, batch 12
 *   node --import tsx bench/profile-train-step.ts --arch lstm --batch 32  # one LSTM(256), emb 64
 *   node --import tsx bench/profile-train-step.ts --kernels               # per-kernel table (--shapes: per kernel and input shapes)
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/train/backend.ts';
import { createModel, crossEntropy, resolveModelConfig } from '../src/train/models/index.ts';
import { createAdamW, DEFAULT_ADAMW, gradientClip } from '../src/train/optimizer.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'transformer' },
    preset: { type: 'string' },
    batch: { type: 'string' },
    layers: { type: 'string' },
    vocab: { type: 'string', default: '322' },
    steps: { type: 'string', default: '20' },
    backend: { type: 'string', default: 'wasm' },
    kernels: { type: 'boolean', default: false },
    shapes: { type: 'boolean', default: false },
  },
});

const arch = values.arch === 'lstm' ? 'lstm' : 'transformer';
const preset = values.preset ?? (arch === 'lstm' ? 'lstm-char' : 'nanogpt-cpu');
// The LSTM target is one layer of 256 at batch 32; nanogpt-cpu runs at batch 12.
const overrides: Record<string, unknown> = arch === 'lstm' ? { numLayers: Number(values.layers ?? 1) } : {};
if (arch === 'transformer' && values.layers !== undefined) overrides.nLayer = Number(values.layers);
const config = resolveModelConfig({ arch, preset, overrides, vocabSize: Number(values.vocab) });
const batch = Number(values.batch ?? (arch === 'lstm' ? 32 : 12));
const steps = Number(values.steps);

await selectBackend(values.backend!);
const model = createModel(config, { seed: 1 });
const parameters = model.weights.map((weight) => ({ name: weight.originalName, variable: (weight as unknown as { val: tf.Variable }).val }));
const optimizer = createAdamW(parameters, DEFAULT_ADAMW);
const variables = parameters.map(({ variable }) => variable);

type KernelStats = { ms: number; count: number };
const kernelStats = new Map<string, KernelStats>();
if (values.kernels) {
  for (const kernel of tf.getKernelsForBackend(tf.getBackend())) {
    const original = kernel.kernelFunc;
    tf.unregisterKernel(kernel.kernelName, kernel.backendName);
    tf.registerKernel({
      ...kernel,
      kernelFunc: ((args: Parameters<tf.KernelFunc>[0]) => {
        const started = process.cpuUsage();
        const out = original(args);
        const used = process.cpuUsage(started);
        const name = values.shapes ? kernelLabel(kernel.kernelName, args) : kernel.kernelName;
        const stats = kernelStats.get(name) ?? { ms: 0, count: 0 };
        stats.ms += (used.user + used.system) / 1000;
        stats.count += 1;
        kernelStats.set(name, stats);
        return out;
      }) as tf.KernelFunc,
    });
  }
}

/** The kernel with its input shapes and non-default flags, e.g. `BatchMatMul 768x128 128x384 tB`. */
function kernelLabel(name: string, args: Parameters<tf.KernelFunc>[0]): string {
  const shapes = Object.values(args.inputs).filter((info) => info !== undefined).map((info) => (info as tf.TensorInfo).shape.join('x'));
  const flags = Object.entries(args.attrs ?? {}).filter(([, value]) => value === true).map(([key]) => key);
  return [name, ...shapes, ...flags].join(' ');
}

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const randomIds = () => tf.tensor2d(Int32Array.from({ length: batch * config.blockSize }, () => Math.floor(random() * config.vocabSize)), [batch, config.blockSize], 'int32');

const phaseMs = { forwardBackward: 0, clip: 0, adamw: 0 };
const cpuNow = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };

async function step(): Promise<number> {
  const inputs = randomIds();
  const targets = randomIds();
  let started = cpuNow();
  const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(inputs, { training: true }) as tf.Tensor, targets), variables);
  phaseMs.forwardBackward += cpuNow() - started;
  started = cpuNow();
  const ordered = variables.map((variable) => grads[variable.name] ?? tf.zerosLike(variable));
  const clip = gradientClip(ordered, 1);
  phaseMs.clip += cpuNow() - started;
  started = cpuNow();
  optimizer.applyGradients(ordered, 1e-3, clip.scale);
  phaseMs.adamw += cpuNow() - started;
  const loss = (await value.data())[0]!;
  await clip.norm.data();
  tf.dispose([inputs, targets, value, ...ordered, clip.norm, clip.scale]);
  return loss;
}

const warmup = 3;
const cpuMs: number[] = [];
const wallMs: number[] = [];
let lastLoss = 0;
for (let i = 0; i < warmup + steps; i++) {
  if (i === warmup) {
    kernelStats.clear();
    Object.assign(phaseMs, { forwardBackward: 0, clip: 0, adamw: 0 });
  }
  const cpu = process.cpuUsage();
  const wall = performance.now();
  lastLoss = await step();
  const used = process.cpuUsage(cpu);
  if (i >= warmup) {
    cpuMs.push((used.user + used.system) / 1000);
    wallMs.push(performance.now() - wall);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const total = [...kernelStats.values()].reduce((sum, s) => sum + s.ms, 0);
console.log(JSON.stringify({
  arch, preset, batch, blockSize: config.blockSize, backend: tf.getBackend(), steps, lastLoss: Number(lastLoss.toFixed(4)),
  cpuMsPerStep: Number(median(cpuMs).toFixed(1)), wallMsPerStep: Number(median(wallMs).toFixed(1)),
  tensors: tf.memory().numTensors,
  phaseCpuMs: Object.fromEntries(Object.entries(phaseMs).map(([phase, ms]) => [phase, Number((ms / steps).toFixed(1))])),
  ...(values.kernels ? { kernelMsPerStep: Number((total / steps).toFixed(1)), launchesPerStep: [...kernelStats.values()].reduce((n, s) => n + s.count, 0) / steps } : {}),
}));
if (values.kernels) {
  const rows = [...kernelStats.entries()].sort((a, b) => b[1].ms - a[1].ms);
  for (const [name, { ms, count }] of rows) {
    console.log(`${name.padEnd(values.shapes ? 56 : 24)} ${(ms / steps).toFixed(2).padStart(8)} ms ${(count / steps).toFixed(0).padStart(6)} launches ${(1000 * ms / count).toFixed(1).padStart(8)} us/launch`);
  }
}
