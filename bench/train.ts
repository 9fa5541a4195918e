/**
 * Training benchmark against nanoGPT's CPU baseline (DESIGN.md section 5: PyTorch, val loss
 * 1.8857 in 84 s): tinyshakespeare at char level, 90/10 split, 2000 steps, batch 12, lr 1e-3
 * (cosine to 1e-4 over the run, warmup 100), dropout 0, eval every 250 steps on 20 batches.
 *
 *   node --import tsx bench/train.ts                      # nanogpt-cpu, the full 2000 steps
 *   node --import tsx bench/train.ts --preset lstm-char   # the LSTM preset
 *   node --import tsx bench/train.ts --steps 20           # a quick ms/step measurement
 *
 * Prints one JSON line with the figures for BENCHMARKS.md.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseMetrics, type TrainEvent } from '../src/train/metrics.ts';
import { PRESETS } from '../src/train/models/config.ts';
import { createProgressReporter, type ProgressReporter } from '../src/train/progress.ts';
import { train } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'nanogpt-cpu' },
    steps: { type: 'string', default: '2000' },
    corpus: { type: 'string', default: join(import.meta.dirname, '..', '..', 'shared', 'data', 'tinyshakespeare.txt') },
    backend: { type: 'string', default: 'auto' },
    out: { type: 'string' },
  },
});

const steps = Number(values.steps);
const preset = PRESETS[values.preset];
if (!preset) throw new Error(`unknown preset ${values.preset}`);
const arch = preset.transformer ? 'transformer' : 'lstm';
const out = values.out ?? join(mkdtempSync(join(tmpdir(), 'ferry-bench-')), 'run');

// CPU time per step as well as wall time: on a shared machine the wall time mostly measures the others.
const lines = createProgressReporter({ interactive: false });
const cpuAtStep: number[] = [];
const reporter: ProgressReporter = {
  ...lines,
  update(state) {
    const { user, system } = process.cpuUsage();
    cpuAtStep.push((user + system) / 1000);
    lines.update(state);
  },
};

const result = await train({
  corpus: values.corpus,
  out,
  arch,
  preset: values.preset,
  model: { dropout: 0 },
  tokenizer: 'char',
  hyperparameters: {
    steps,
    batchSize: 12,
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
  cacheDir: join(tmpdir(), 'ferry-bench-cache'),
  reporter,
});

// Wall time includes evaluation and checkpoints; the step time is the optimizer steps alone,
// from the second log interval on (the first carries the warm-up).
const tokensPerStep = 12 * result.config.blockSize;
const logged = parseMetrics(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).filter((event): event is TrainEvent => event.type === 'train');
const steady = logged.length > 1 ? logged.slice(1) : logged;
const msPerStep = steady.reduce((total, event) => total + (tokensPerStep / event.tokensPerSecond) * 1000, 0) / steady.length;
const warm = Math.min(5, cpuAtStep.length - 2);
const cpuMsPerStep = (cpuAtStep.at(-1)! - cpuAtStep[warm]!) / (cpuAtStep.length - 1 - warm);
console.log(
  JSON.stringify({
    bench: 'train',
    preset: values.preset,
    arch,
    backend: result.backend,
    steps: result.step,
    batchSize: 12,
    blockSize: result.config.blockSize,
    valLoss: result.lastValLoss,
    bestValLoss: result.bestValLoss,
    seconds: Number(result.seconds.toFixed(1)),
    msPerStep: Number(msPerStep.toFixed(1)),
    cpuMsPerStep: Number(cpuMsPerStep.toFixed(1)),
    baseline: { pytorch: { valLoss: 1.8857, seconds: 84 } },
  }),
);
if (values.out === undefined) rmSync(join(out, '..'), { recursive: true, force: true });
