/**
 * Where a training step's time goes on a backend: builds a model, runs the trainer's step
 * (forward, backward, gradient clipping, AdamW) on random batches and prints the median CPU and
 * wall ms per step, plus (with --kernels) each kernel's share of the time and launches per step.
 *
 *   node --import tsx bench/profile-train-step.ts                         # nanogpt-cpu, batch 12
 *   node --import tsx bench/profile-train-step.ts --arch lstm --batch 32  # one LSTM(256), emb 64
 *   node --import tsx bench/profile-train-step.ts --kernels               # per-kernel table (--shapes: per kernel and input shapes)
 *   node --import tsx bench/profile-train-step.ts --arch t5 --kernels     # t5-small-char, batch 32, source/target 32 (bench/t5-train.ts's step)
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/train/backend.ts';
import type { PairBatch } from '../src/train/data/pair-batch.ts';
import { createModel, crossEntropy, resolveModelConfig } from '../src/train/models/index.ts';
import { resolveT5Config } from '../src/train/models/t5-config.ts';
import { createT5, t5Loss, t5Parameters } from '../src/train/models/t5.ts';
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

const arch = values.arch === 'lstm' ? 'lstm' : values.arch === 't5' ? 't5' : 'transformer';
const preset = values.preset ?? (arch === 'lstm' ? 'lstm-char' : arch === 't5' ? 't5-small-char' : 'nanogpt-cpu');
// The LSTM target is one layer of 256 at batch 32; nanogpt-cpu runs at batch 12.
const overrides: Record<string, unknown> = arch === 'lstm' ? { numLayers: Number(values.layers ?? 1) } : {};
if (arch === 'transformer' && values.layers !== undefined) overrides.nLayer = Number(values.layers);
// The T5 runs bench/t5-train.ts's shapes: dropout 0, source and target 32, vocabulary 330 unless --vocab.
const t5 = arch === 't5' ? resolveT5Config({ preset, overrides: { dropout: 0 }, vocabSize: Number(values.vocab === '322' ? 330 : values.vocab) }) : null;
const config = t5 ? { blockSize: 32, vocabSize: t5.vocabSize } : resolveModelConfig({ arch: arch as 'lstm' | 'transformer', preset, overrides, vocabSize: Number(values.vocab) });
const batch = Number(values.batch ?? (arch === 'transformer' ? 12 : 32));
const steps = Number(values.steps);

await selectBackend(values.backend!);
const model = t5 ? null : createModel(config as ReturnType<typeof resolveModelConfig>, { seed: 1 });
const t5Model = t5 ? createT5(t5, { seed: 1 }) : null;
const parameters = t5Model
  ? t5Parameters(t5Model)
  : model!.weights.map((weight) => ({ name: weight.originalName, variable: (weight as unknown as { val: tf.Variable }).val }));
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

/** A T5 batch of random ids with full masks (the cost does not depend on which). */
function t5Batch(): PairBatch {
  const length = config.blockSize;
  const n = batch * length;
  const draw = () => Int32Array.from({ length: n }, () => 3 + Math.floor(random() * Math.min(70, config.vocabSize - 3)));
  const labels = draw();
  return {
    batch, sourceLength: length, targetLength: length, sourceIds: draw(), sourceMask: new Float32Array(n).fill(1),
    decoderInputIds: labels.map((_, i) => (i % length === 0 ? 0 : labels[i - 1]!)), labels, labelMask: new Float32Array(n).fill(1),
  };
}

const phaseMs = { forwardBackward: 0, clip: 0, adamw: 0 };
const cpuNow = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };

async function step(): Promise<number> {
  const inputs = randomIds();
  const targets = randomIds();
  let started = cpuNow();
  const { value, grads } = tf.variableGrads(
    () => (t5Model ? t5Loss(t5Model, t5Batch(), { training: true }) : crossEntropy(model!.apply(inputs, { training: true }) as tf.Tensor, targets)),
    variables,
  );
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
