/**
 * Where ferry's training speed comes from: tokens/s of one training step configuration on tfjs's
 * pure-JS `cpu` backend, on the stock `wasm` backend, and on `wasm` with ferry's kernels.
 *
 *   node --import tsx bench/train-backends.ts                                   # nanogpt-cpu, batch 12
 *   node --import tsx bench/train-backends.ts --preset lstm-char --layers 1 --batch 32
 *
 * Each backend runs in its own process (kernel registrations are global). A step is the trainer's
 * (src/train/trainer.ts): forward, cross-entropy, gradients of every weight, global-norm clipping,
 * AdamW, loss read back, on random ids of a char vocabulary. Stock wasm lacks UnsortedSegmentSum,
 * the gradient of the embedding lookup, so it cannot train these models at all: the bench records
 * its error and measures `wasm+segsum`, stock wasm with only ferry's UnsortedSegmentSum added (the
 * least it takes to train), which shows what ferry's matMul/slicing/tile kernels add on top.
 * The models are ferry's in every row (its fused LSTM and LayerNorm layers included).
 * Prints one JSON line; progress on stderr.
 */
import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/train/backend.ts';
import { unsortedSegmentSumConfig } from '../src/train/kernels/unsorted-segment-sum.ts';
import { createModel, PRESETS, resolveModelConfig } from '../src/train/models/index.ts';
import { createAdamW, DEFAULT_ADAMW, gradientClip } from '../src/train/optimizer.ts';
import { crossEntropy } from '../src/train/models/index.ts';
import { createLeakProbe, type LeakReport } from './train-leak.ts';

const VARIANTS = ['cpu', 'wasm-stock', 'wasm+segsum', 'wasm'] as const;
type Variant = (typeof VARIANTS)[number];
/** Warm-up and timed steps: the cpu backend takes seconds per step. */
const DEFAULT_STEPS: Record<Variant, [number, number]> = { cpu: [1, 2], 'wasm-stock': [1, 3], 'wasm+segsum': [1, 4], wasm: [3, 20] };
/** ferry's char vocabulary of tinyshakespeare: <|endoftext|>, 65 characters, 256 byte tokens. */
const TINYSHAKESPEARE_VOCAB = 322;
const CHARACTERS = 65;

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'nanogpt-cpu' },
    batch: { type: 'string', default: '12' },
    layers: { type: 'string' },
    only: { type: 'string' },
    child: { type: 'string' },
  },
});

type Row = {
  backend: Variant;
  detail: string;
  steps?: number;
  medianMs?: number;
  /** CPU time of the process per step: on a shared machine steadier than the wall time. */
  cpuMedianMs?: number;
  tokensPerSecond?: number;
  leak?: LeakReport | null;
  error?: string;
};

if (values.child !== undefined) {
  console.log(JSON.stringify(await measure(values.child as Variant)));
} else {
  const variants = values.only === undefined ? VARIANTS : (values.only.split(',') as Variant[]);
  const rows: Row[] = [];
  for (const variant of variants) {
    if (!VARIANTS.includes(variant)) throw new Error(`unknown backend ${variant}; choose from ${VARIANTS.join(', ')}`);
    const args = [...process.execArgv, import.meta.filename, '--child', variant, '--preset', values.preset, '--batch', values.batch];
    if (values.layers !== undefined) args.push('--layers', values.layers);
    const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1 << 20 });
    const row = JSON.parse(stdout.trim().split('\n').at(-1)!) as Row;
    console.error(row.error === undefined
      ? `${variant}: ${row.medianMs} ms/step (CPU ${row.cpuMedianMs} ms), ${row.tokensPerSecond} tokens/s (${row.detail})`
      : `${variant}: cannot train: ${row.error}`);
    rows.push(row);
  }
  const ferry = rows.find((row) => row.backend === 'wasm')?.tokensPerSecond;
  console.log(JSON.stringify({
    bench: 'train-backends',
    preset: values.preset,
    batchSize: Number(values.batch),
    layers: values.layers === undefined ? undefined : Number(values.layers),
    rows: rows.map((row) => ({
      ...row,
      ferrySpeedup: ferry && row.tokensPerSecond ? Number((ferry / row.tokensPerSecond).toFixed(1)) : undefined,
    })),
  }));
}

async function measure(variant: Variant): Promise<Row> {
  const detail = await activate(variant);
  const arch = PRESETS[values.preset]?.transformer ? 'transformer' : 'lstm';
  const layers = values.layers === undefined ? {} : { [arch === 'lstm' ? 'numLayers' : 'nLayer']: Number(values.layers) };
  const config = resolveModelConfig({ arch, preset: values.preset, overrides: { dropout: 0, ...layers }, vocabSize: TINYSHAKESPEARE_VOCAB });
  const batchSize = Number(values.batch);
  const model = createModel(config, { seed: 1 });
  const parameters = model.trainableWeights.map((weight) => ({ name: weight.originalName, variable: weight.read() as tf.Variable }));
  const optimizer = createAdamW(parameters, { ...DEFAULT_ADAMW });
  const variables = parameters.map(({ variable }) => variable);

  async function step(): Promise<void> {
    const ids = new Int32Array(batchSize * (config.blockSize + 1)).map(() => 1 + Math.floor(Math.random() * CHARACTERS));
    const window = tf.tensor2d(ids, [batchSize, config.blockSize + 1], 'int32');
    const inputs = tf.slice(window, [0, 0], [batchSize, config.blockSize]);
    const targets = tf.slice(window, [0, 1], [batchSize, config.blockSize]);
    const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(inputs, { training: true }) as tf.Tensor, targets), variables);
    const ordered = variables.map((variable) => grads[variable.name] ?? tf.zerosLike(variable));
    const clip = gradientClip(ordered, 1);
    optimizer.applyGradients(ordered, 1e-4, clip.scale);
    await value.data();
    tf.dispose([window, inputs, targets, value, ...ordered, clip.norm, clip.scale]);
  }

  const [warmup, timed] = DEFAULT_STEPS[variant];
  try {
    for (let i = 0; i < warmup; i++) await step();
  } catch (error) {
    return { backend: variant, detail, error: (error as Error).message.split('\n')[0] };
  }
  const probe = createLeakProbe(0);
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let i = 0; i < timed; i++) {
    const [started, cpuStarted] = [performance.now(), process.cpuUsage()];
    await step();
    const cpu = process.cpuUsage(cpuStarted);
    times.push(performance.now() - started);
    cpuTimes.push((cpu.user + cpu.system) / 1000);
    probe.sample(i + 1);
  }
  const medianMs = median(times);
  return {
    backend: variant,
    detail,
    steps: timed,
    medianMs: Number(medianMs.toFixed(1)),
    cpuMedianMs: Number(median(cpuTimes).toFixed(1)),
    tokensPerSecond: Math.round((batchSize * config.blockSize) / (medianMs / 1000)),
    leak: probe.report(),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function activate(variant: Variant): Promise<string> {
  if (variant === 'cpu' || variant === 'wasm') return (await selectBackend(variant)).detail;
  await import('@tensorflow/tfjs-backend-wasm');
  if (variant === 'wasm+segsum') tf.registerKernel(unsortedSegmentSumConfig);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return `stock tfjs wasm (${simd ? 'SIMD' : 'no SIMD'}, single-threaded)${variant === 'wasm+segsum' ? " + ferry's UnsortedSegmentSum only" : ''}`;
}
