/**
 * Training benchmark against nanoGPT's CPU baseline: tinyshakespeare at char level, 90/10 split,
 * 2000 steps, batch 12, lr 1e-3 (cosine to 1e-4 over the run, warmup 100), dropout 0, eval every
 * 250 steps on 20 batches. With --reference the PyTorch script of the same model and schedule
 * (bench/reference/nanogpt_cpu.py) runs right after ferry on the same machine, and the result
 * holds both times, both val losses and their ratio.
 *
 *   node --import tsx bench/train.ts --reference                # nanogpt-cpu, 2000 steps, ferry and PyTorch
 *   node --import tsx bench/train.ts --steps 30                 # a quick check of the script and the leak check
 *   node --import tsx bench/train.ts --preset lstm-char         # the LSTM preset's full run
 *   node --import tsx bench/train.ts --step-time --preset lstm-char --layers 1 --batch 32 --reference
 *                                                               # median ms per step vs PyTorch's nn.LSTM step
 *
 * --step-time trains warmup + --steps steps (default 5 + 30) and reports the median time of the
 * timed ones (the trainer's own step time: batch, forward, backward, clipping, AdamW, loss read).
 * Every mode samples tfjs's tensor count and RSS after each step and exits 1 if the tensor count
 * grew from step 10 to the end (a leak). --python picks the python3 with torch (default
 * /usr/bin/python3, Debian's python3-torch); --reference-threads N caps torch's and OpenBLAS's
 * threads; --threads N sets ferry's training threads (default: the trainer's choice, 2 on wasm
 * when two cores are idle). Progress goes to stderr; stdout gets one JSON line. See docs/BENCH-TRAIN.md.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseMetrics, type TrainEvent } from '../src/train/metrics.ts';
import { PRESETS } from '../src/train/models/config.ts';
import { createProgressReporter, type ProgressReporter } from '../src/train/progress.ts';
import { train } from '../src/train/trainer.ts';
import { createLeakProbe } from './train-leak.ts';
import { blasWarning, checkPytorch, DEFAULT_PYTHON, runPytorch, type BlasReport } from './train-reference.ts';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'nanogpt-cpu' },
    steps: { type: 'string' },
    batch: { type: 'string', default: '12' },
    layers: { type: 'string' },
    'step-time': { type: 'boolean', default: false },
    warmup: { type: 'string', default: '5' },
    corpus: { type: 'string', default: join(import.meta.dirname, '..', '..', 'shared', 'data', 'tinyshakespeare.txt') },
    backend: { type: 'string', default: 'auto' },
    threads: { type: 'string' },
    out: { type: 'string' },
    reference: { type: 'boolean', default: false },
    python: { type: 'string', default: DEFAULT_PYTHON },
    'reference-threads': { type: 'string' },
  },
});

const stepTime = values['step-time'];
const timedSteps = Number(values.steps ?? (stepTime ? 30 : 2000));
const warmupSteps = stepTime ? Number(values.warmup) : 0;
const steps = timedSteps + warmupSteps;
const batchSize = Number(values.batch);
const preset = PRESETS[values.preset];
if (!preset) throw new Error(`unknown preset ${values.preset}; presets: ${Object.keys(PRESETS).join(', ')}`);
const arch = preset.transformer ? 'transformer' : 'lstm';
const shape = preset.transformer ?? preset.lstm!;
const layers = values.layers === undefined ? undefined : Number(values.layers);
const layerCount = layers ?? ('nLayer' in shape ? shape.nLayer : shape.numLayers);
if (values.reference) {
  const mismatch = stepTime
    ? arch === 'lstm' ? null : '--step-time --reference compares LSTM steps (bench/reference/lstm_step.py); pick an lstm preset'
    : values.preset === 'nanogpt-cpu' && layers === undefined && batchSize === 12
      ? null
      : '--reference runs bench/reference/nanogpt_cpu.py, the nanogpt-cpu preset at batch 12 with its 4 layers';
  if (mismatch) {
    console.error(mismatch);
    process.exit(2);
  }
  try {
    console.error(`PyTorch ${await checkPytorch(values.python)} (${values.python})`);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
}
const out = values.out ?? join(mkdtempSync(join(tmpdir(), 'ferry-bench-')), 'run');

// CPU time per step as well as wall time: on a shared machine the wall time mostly measures the others.
const lines = createProgressReporter({ interactive: false, stream: process.stderr });
const cpuAtStep: number[] = [];
const leakProbe = createLeakProbe(10);
let backendDetail = '';
const reporter: ProgressReporter = {
  ...lines,
  update(state) {
    const { user, system } = process.cpuUsage();
    cpuAtStep.push((user + system) / 1000);
    leakProbe.sample(state.step);
    lines.update(state);
  },
  message(line) {
    if (line.startsWith('backend: ')) backendDetail = line.slice('backend: '.length);
    lines.message(line);
  },
};

const cpuBefore = process.cpuUsage();
const result = await train({
  corpus: values.corpus,
  out,
  arch,
  preset: values.preset,
  model: { dropout: 0, ...(layers === undefined ? {} : arch === 'lstm' ? { numLayers: layers } : { nLayer: layers }) },
  tokenizer: 'char',
  hyperparameters: stepTime
    ? {
      steps, batchSize, lr: 1e-3, minLr: 1e-4, warmupSteps: Math.floor(steps / 2), decaySteps: null,
      evalInterval: steps, evalIters: 1, valFraction: 0.1, logInterval: 1, seed: 1337,
    }
    : {
      steps,
      batchSize,
      lr: 1e-3,
      minLr: 1e-4,
      warmupSteps: Math.min(100, Math.floor(steps / 2)),
      decaySteps: null,
      evalInterval: Math.min(250, steps),
      evalIters: 20,
      valFraction: 0.1,
      logInterval: Math.max(1, Math.min(50, Math.floor(steps / 4))),
      seed: 1337,
    },
  backend: values.backend,
  ...(values.threads === undefined ? {} : { threads: Number(values.threads) }),
  cacheDir: join(tmpdir(), 'ferry-bench-cache'),
  reporter,
});

const cpuSpent = process.cpuUsage(cpuBefore);
const tokensPerStep = batchSize * result.config.blockSize;
const logged = parseMetrics(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).filter((event): event is TrainEvent => event.type === 'train');
const warm = Math.min(5, cpuAtStep.length - 2);
const cpuMsPerStep = (cpuAtStep.at(-1)! - cpuAtStep[warm]!) / (cpuAtStep.length - 1 - warm);
const leak = leakProbe.report();
const ferry = {
  preset: values.preset,
  arch,
  layers: layerCount,
  backend: result.backend,
  backendDetail,
  threads: result.threads,
  vocabSize: result.config.vocabSize,
  steps: result.step,
  batchSize,
  blockSize: result.config.blockSize,
  cpuSeconds: round((cpuSpent.user + cpuSpent.system) / 1e6),
  cpuMsPerStep: round(cpuMsPerStep),
  ...(stepTime ? stepFigures(logged.slice(warmupSteps)) : runFigures(logged)),
};

const python = values.python;
const referenceThreads = values['reference-threads'] === undefined ? undefined : Number(values['reference-threads']);
const reference = values.reference ? await runReference() : undefined;
const ratio = reference === undefined ? undefined : stepTime
  ? { msPerStep: round(ferry.medianMs! / reference.medianMs!, 2), minMs: round(ferry.minMs! / reference.minMs!, 2) }
  : {
    seconds: round(ferry.seconds! / reference.seconds!, 2),
    msPerStep: round(ferry.msPerStep! / reference.msPerStep!, 2),
    cpuSeconds: round(ferry.cpuSeconds / reference.cpuSeconds!, 2),
  };
// Issue #6's targets: val loss <= 1.90 in at most 1.5x PyTorch's wall time (the full run); an LSTM step within 1.5x.
const targets = ratio === undefined ? undefined : stepTime
  ? { stepWithin1_5x: ratio.msPerStep <= 1.5 }
  : { valLossAtMost1_90: (ferry.valLoss ?? Infinity) <= 1.9, wallTimeWithin1_5x: ratio.seconds! <= 1.5 };

const summary = {
  bench: stepTime ? 'train-step' : 'train',
  ...ferry,
  leak,
  ...(reference === undefined
    ? stepTime ? {} : { baseline: { pytorch: { valLoss: 1.8857, seconds: 84, note: 'DESIGN.md section 5; pass --reference to measure it here' } } }
    : { reference, ratio, targets }),
};
if (reference) {
  const warning = blasWarning(reference.blas);
  if (warning) console.error(warning);
  console.error(stepTime
    ? `ferry ${ferry.medianMs} ms/step (min ${ferry.minMs}), PyTorch ${reference.medianMs} ms/step (min ${reference.minMs}) (${reference.blas.kind} with ${reference.blas.threads} threads, torch ${reference.threads}): ${ratio!.msPerStep}x`
    : `ferry ${ferry.seconds} s, val ${ferry.valLoss?.toFixed(4)}; PyTorch ${reference.seconds} s, val ${reference.valLoss.toFixed(4)} `
      + `(${reference.blas.kind} with ${reference.blas.threads} threads, torch ${reference.threads}): ${ratio!.seconds}x the wall time`);
}
if (leak) {
  console.error(`leak check, step ${leak.from.step} -> ${leak.to.step}: tfjs tensors ${leak.from.tensors} -> ${leak.to.tensors}, `
    + `RSS ${leak.from.rssMB} -> ${leak.to.rssMB} MB${leak.leaks ? ' (TENSOR LEAK)' : ''}`);
}
console.log(JSON.stringify(summary));
if (values.out === undefined) rmSync(join(out, '..'), { recursive: true, force: true });
if (leak?.leaks) process.exitCode = 1;

type Figures = {
  valLoss?: number | null;
  bestValLoss?: number | null;
  seconds?: number;
  msPerStep?: number;
  timedSteps?: number;
  medianMs?: number;
  minMs?: number;
  tokensPerSecond?: number;
};

/** Whole-run figures: wall time (with evaluation and checkpoints) and the mean optimizer step from the second log interval on. */
function runFigures(events: TrainEvent[]): Figures {
  const steady = events.length > 1 ? events.slice(1) : events;
  const msPerStep = steady.reduce((total, event) => total + (tokensPerStep / event.tokensPerSecond) * 1000, 0) / steady.length;
  return {
    valLoss: result.lastValLoss,
    bestValLoss: result.bestValLoss,
    seconds: round(result.seconds),
    msPerStep: round(msPerStep),
    tokensPerSecond: Math.round(tokensPerStep / (msPerStep / 1000)),
  };
}

/** Per-step figures from a run that logged every step (the trainer times each step on its own). */
function stepFigures(events: TrainEvent[]): Figures {
  const times = events.map((event) => (tokensPerStep / event.tokensPerSecond) * 1000).sort((a, b) => a - b);
  return {
    timedSteps: times.length,
    medianMs: round(median(times)),
    minMs: round(times[0]!),
    tokensPerSecond: Math.round(tokensPerStep / (median(times) / 1000)),
  };
}

type ReferenceResult = {
  threads: number;
  blas: BlasReport;
  valLoss: number;
  seconds?: number;
  cpuSeconds?: number;
  msPerStep?: number;
  medianMs?: number;
  minMs?: number;
};

async function runReference(): Promise<ReferenceResult> {
  const common = ['--vocab-size', String(result.config.vocabSize), '--batch-size', String(batchSize)];
  console.error('running the PyTorch reference...');
  if (result.config.arch === 'lstm') {
    const { embeddingDim, hiddenSize, numLayers, blockSize } = result.config;
    return runPytorch<ReferenceResult>(python, 'lstm_step.py', [
      ...common, '--steps', String(timedSteps), '--warmup', String(warmupSteps), '--seq', String(blockSize),
      '--embedding', String(embeddingDim), '--hidden', String(hiddenSize), '--layers', String(numLayers),
    ], referenceThreads);
  }
  return runPytorch<ReferenceResult>(python, 'nanogpt_cpu.py', [...common, '--data', values.corpus, '--steps', String(steps)], referenceThreads);
}

function median(sorted: number[]): number {
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function round(value: number, digits = 1): number {
  return Number(value.toFixed(digits));
}
