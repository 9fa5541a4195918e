/**
 * Issue #17's training target: one step of a 4+4-layer, width-256 T5 (the t5-small-char preset,
 * dropout 0) within 1.5x of PyTorch's. ferry's step is what its trainer does per step
 * (t5Loss forward, backward, gradientClip at 1, createAdamW's update, loss read); PyTorch's is
 * bench/reference/t5_step.py, the same model at the same shapes. Both run side by side: rounds of
 * --steps steps alternate between ferry (this process) and PyTorch (a child waiting on stdin),
 * so that both see the same load on a shared machine, and the result holds the medians over all
 * rounds and their ratio.
 *
 *   node --import tsx bench/t5-train.ts                       # batch 32, source/target 32, 1 thread each, 5 rounds of 6 steps
 *   node --import tsx bench/t5-train.ts --no-reference        # ferry alone
 *   node --import tsx bench/t5-train.ts --rounds 3 --steps 4 --batch 16
 *
 * --threads N sets PyTorch's intra-op threads and OpenBLAS's pool (ferry's wasm step runs on one
 * thread; the trainer's data-parallel threads are not used here), so 1 (the default) is the like
 * for like. --python picks the python3 with torch (default /usr/bin/python3). Progress goes to
 * stderr; stdout gets one JSON line.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/train/backend.ts';
import type { PairBatch } from '../src/train/data/pair-batch.ts';
import { countT5Parameters, resolveT5Config } from '../src/train/models/t5-config.ts';
import { createT5, t5Loss, t5Parameters } from '../src/train/models/t5.ts';
import { createAdamW, DEFAULT_ADAMW, gradientClip } from '../src/train/optimizer.ts';
import { mulberry32 } from '../src/random.ts';
import { blasWarning, checkPytorch, DEFAULT_PYTHON, type BlasReport } from './train-reference.ts';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 't5-small-char' },
    batch: { type: 'string', default: '32' },
    'source-length': { type: 'string', default: '32' },
    'target-length': { type: 'string', default: '32' },
    vocab: { type: 'string', default: '330' },
    steps: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'wasm' },
    threads: { type: 'string', default: '1' },
    reference: { type: 'boolean', default: true },
    'no-reference': { type: 'boolean', default: false },
    python: { type: 'string', default: DEFAULT_PYTHON },
  },
});

const batchSize = Number(values.batch);
const sourceLength = Number(values['source-length']);
const targetLength = Number(values['target-length']);
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);
const threads = Number(values.threads);
const withReference = values.reference && !values['no-reference'];
const config = resolveT5Config({ preset: values.preset, overrides: { dropout: 0 }, vocabSize: Number(values.vocab) });

const backend = await selectBackend(values.backend!);
console.error(`backend: ${backend.detail}`);
const model = createT5(config, { seed: 1 });
const parameters = t5Parameters(model);
const optimizer = createAdamW(parameters, DEFAULT_ADAMW);
const variables = parameters.map((p) => p.variable);

// Ids from a char vocabulary's characters (past pad, eos, unk), full masks: the cost does not depend on which.
const random = mulberry32(7);
const characters = Math.min(70, config.vocabSize - 3);
const ids = (n: number) => Int32Array.from({ length: n }, () => 3 + Math.floor(random() * characters));
function randomBatch(): PairBatch {
  const labels = ids(batchSize * targetLength);
  const decoderInputIds = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) decoderInputIds[i] = i % targetLength === 0 ? 0 : labels[i - 1]!;
  return {
    batch: batchSize, sourceLength, targetLength, sourceIds: ids(batchSize * sourceLength),
    sourceMask: new Float32Array(batchSize * sourceLength).fill(1), decoderInputIds, labels, labelMask: new Float32Array(labels.length).fill(1),
  };
}

let lastLoss = NaN;
async function step(): Promise<number> {
  const batch = randomBatch();
  const { value, grads } = tf.variableGrads(() => t5Loss(model, batch, { training: true }), variables);
  const ordered = variables.map((variable) => grads[variable.name]!);
  const clip = gradientClip(ordered, 1);
  optimizer.applyGradients(ordered, 1e-3, clip.scale);
  lastLoss = (await value.data())[0]!;
  tf.dispose([value, ...ordered, clip.norm, clip.scale]);
  return lastLoss;
}

async function timedSteps(count: number): Promise<{ times: number[]; cpuTimes: number[] }> {
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let i = 0; i < count; i++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await step();
    times.push(performance.now() - started);
    const used = process.cpuUsage(cpu);
    cpuTimes.push((used.user + used.system) / 1000);
  }
  return { times, cpuTimes };
}

type ReferenceHeader = { torch: string; threads: number; blas: BlasReport; parameters: number };
type Round = { times: number[]; cpuTimes: number[] };

/** The PyTorch child in its interleaved mode: one JSON header, then one JSON line per round asked for. */
async function startReference() {
  console.error(`PyTorch ${await checkPytorch(values.python!)} (${values.python})`);
  const args = [
    join(import.meta.dirname, 'reference', 't5_step.py'), '--rounds', String(rounds), '--steps', String(steps), '--warmup', String(warmup),
    '--batch-size', String(batchSize), '--source-length', String(sourceLength), '--target-length', String(targetLength),
    '--vocab-size', String(config.vocabSize), '--d-model', String(config.dModel), '--d-kv', String(config.dKv), '--d-ff', String(config.dFf),
    '--heads', String(config.nHeads), '--encoder-layers', String(config.nEncoderLayers), '--decoder-layers', String(config.nDecoderLayers),
    '--buckets', String(config.relativeBuckets), '--max-distance', String(config.relativeMaxDistance), '--threads', String(threads),
    ...(config.tieWeights ? ['--tied'] : []),
  ];
  const child = spawn(values.python!, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads) } });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async <T>(): Promise<T> => {
    const line = await lines.next();
    if (line.done) throw new Error('bench/reference/t5_step.py ended early');
    return JSON.parse(line.value) as T;
  };
  const header = await next<ReferenceHeader>();
  return {
    header,
    async round(): Promise<Round> {
      child.stdin.write('go\n');
      return next<Round>();
    },
    close: () => child.stdin.end(),
  };
}

const reference = withReference ? await startReference() : undefined;
for (let i = 0; i < warmup; i++) await step();
const ferryRounds: Round[] = [];
const referenceRounds: Round[] = [];
for (let r = 0; r < rounds; r++) {
  ferryRounds.push(await timedSteps(steps));
  if (reference) referenceRounds.push(await reference.round());
  const f = median(ferryRounds.at(-1)!.times);
  const p = reference ? median(referenceRounds.at(-1)!.times) : undefined;
  console.error(`round ${r + 1}/${rounds}: ferry ${f.toFixed(0)} ms/step${p === undefined ? '' : `, PyTorch ${p.toFixed(0)} ms/step (${(f / p).toFixed(2)}x)`}, loss ${lastLoss.toFixed(3)}`);
}
reference?.close();

const figures = (all: Round[]) => {
  const times = all.flatMap((round) => round.times);
  return {
    medianMs: round1(median(times)), minMs: round1(Math.min(...times)), cpuMedianMs: round1(median(all.flatMap((round) => round.cpuTimes))),
    roundMedians: all.map((round) => round1(median(round.times))),
  };
};
const ferry = { backend: backend.name, backendDetail: backend.detail, parameters: countT5Parameters(config), lastLoss: Number(lastLoss.toFixed(4)), ...figures(ferryRounds) };
const pytorch = reference ? { ...reference.header, ...figures(referenceRounds) } : undefined;
const ratio = pytorch ? Number((ferry.medianMs / pytorch.medianMs).toFixed(2)) : undefined;
// CPU time per step: on a loaded machine the wall time mostly measures the other processes.
const cpuRatio = pytorch ? Number((ferry.cpuMedianMs / pytorch.cpuMedianMs).toFixed(2)) : undefined;
if (pytorch) {
  const warning = blasWarning(pytorch.blas);
  if (warning) console.error(warning);
  console.error(`ferry ${ferry.medianMs} ms/step, PyTorch ${pytorch.medianMs} ms/step (${pytorch.blas.kind}, ${threads} thread${threads > 1 ? 's' : ''}): ${ratio}x; `
    + `CPU ${ferry.cpuMedianMs} vs ${pytorch.cpuMedianMs} ms/step: ${cpuRatio}x`);
}
console.log(JSON.stringify({
  bench: 't5-train-step', preset: values.preset, batchSize, sourceLength, targetLength, vocabSize: config.vocabSize, threads, rounds, stepsPerRound: steps,
  loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  ferry, ...(pytorch ? { pytorch, ratio, cpuRatio, targets: { stepWithin1_5x: ratio! <= 1.5 } } : {}),
}));

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]! ) / 2;
}

function round1(value: number): number {
  return Number(value.toFixed(1));
}
