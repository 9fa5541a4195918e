/**
 * `trainT5()`: pairs -> T5 tokenizer (both sides) -> encoded, length-filtered pairs with a seeded
 * held-out split -> the T5 model -> teacher-forced training, into a new run dir or resuming one.
 * The run dir is the LM trainer's (run-dir.ts decides new / resume / refuse): last/ and best/
 * checkpoints (t5-checkpoint.ts), metrics.jsonl and loss.svg.
 *
 * Everything random comes from `seed`: the initial weights (createT5's seed), the batch order
 * (shuffledPairBatches: batch k depends on the pairs, the seed and k alone) and dropout (Math.random
 * seeded per step), so an interrupted and resumed run takes exactly the steps of an uninterrupted one.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { invalidOptions } from '../cli-flags.ts';
import { FerryError } from '../errors.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { trainT5Tokenizer } from '../tokenizer/t5.ts';
import { selectBackend } from './backend.ts';
import { describePairSkips, loadPairSet, pairTexts, readPairs, shuffledPairBatches, type EncodedPair, type PairBatch, type PairInput } from './data/index.ts';
import { resolveHyperparameters, type Hyperparameters } from './hyperparameters.ts';
import { createMetricsLog, parseMetrics, type MetricEvent } from './metrics.ts';
import { countT5Parameters, resolveT5Config, validateT5Config, type T5Config } from './models/t5-config.ts';
import { createT5, disposeT5, setT5Weights, t5Loss, t5Parameters, t5Weights, type T5Model } from './models/t5.ts';
import { createAdamW, DEFAULT_ADAMW, gradientClip, type Parameter } from './optimizer.ts';
import { mixSeed, withSeededRandom } from './parallel/shard.ts';
import { createLineReporter, formatDuration, type ProgressReporter } from './progress.ts';
import { inspectRunDir, OPTIMIZER_FILE, STATE_FILE, trainerFiles, type StopReason } from './run-dir.ts';
import { problemOf } from './run-options.ts';
import { createCosineSchedule } from './schedule.ts';
import { runStepLoop } from './step-loop.ts';
import { readT5Checkpoint, saveT5Checkpoint } from './t5-checkpoint.ts';
import { evenlySpaced, scoreT5, type T5Score } from './t5-evaluate.ts';

/** Held-out pairs scored (loss) and decoded greedily (exact match, CER) at every evaluation. */
export const DEFAULT_EVAL_PAIRS = 200;
/** Batch lengths are rounded up to this, so that tfjs compiles a few shapes, not one per batch. */
const LENGTH_MULTIPLE = 8;
const T5_TOKENIZER_KINDS = ['char', 'word', 'bpe'];

export interface TrainT5Options {
  /** A TSV, JSONL or FreeDict .index file of pairs, or the source side when `targetCorpus` is given. On resume, default: the run's. */
  corpus?: string;
  /** The target side, line-aligned with `corpus`. */
  targetCorpus?: string;
  out: string;
  preset?: string;
  /** T5Config fields that replace the preset's (dModel, nHeads, maxSourceLength, ...). */
  model?: Record<string, unknown>;
  tokenizer?: string;
  vocabSize?: number;
  hyperparameters?: Partial<Hyperparameters>;
  /** Held-out pairs per evaluation (default DEFAULT_EVAL_PAIRS). */
  evalPairs?: number;
  backend?: string;
  resume?: boolean;
  reporter?: ProgressReporter;
  /** Aborting stops the run after the current step, saves `last`, and resolves. */
  signal?: AbortSignal;
}

export interface T5TrainResult {
  runDir: string;
  backend: string;
  config: T5Config;
  hyperparameters: Hyperparameters;
  startStep: number;
  step: number;
  /** Training loss of every step this call ran, in order. */
  losses: number[];
  stopReason: StopReason;
  bestValLoss: number | null;
  lastValLoss: number | null;
  /** The last evaluation's scores (null when this call ran none). */
  lastScore: T5Score | null;
  seconds: number;
}

/** Trainer state beside a T5 checkpoint's weights (`state.json`). */
export interface T5TrainState {
  format: 'ferry-t5-train-state';
  version: 1;
  step: number;
  bestValLoss: number | null;
  bestStep: number | null;
  lastValLoss: number | null;
  evalsWithoutImprovement: number;
  seconds: number;
  pendingLoss: { sum: number; count: number; seconds: number; tokens: number };
  hyperparameters: Hyperparameters;
  evalPairs: number;
  /** Absolute paths, so that --resume finds them from anywhere. */
  pairs: PairInput;
  pairsHash: string;
  stopReason: StopReason | 'running';
}

/** Every problem of a new T5 run's options at once, in flag names. */
export function checkNewT5Run(options: TrainT5Options): { hyperparameters: Hyperparameters; notes: string[]; problems: string[] } {
  const resolved = resolveHyperparameters(undefined, options.hyperparameters ?? {});
  const problems = [...resolved.problems];
  if (options.tokenizer !== undefined && !T5_TOKENIZER_KINDS.includes(options.tokenizer)) {
    problems.push(`--tokenizer must be one of ${T5_TOKENIZER_KINDS.join(', ')}, got "${options.tokenizer}"`);
  }
  if (options.corpus === undefined) problems.push('--corpus is required: a TSV (source<TAB>target), JSONL ({"source", "target"}) or FreeDict .index file, or the source file with --target-corpus');
  if (options.evalPairs !== undefined && !(Number.isInteger(options.evalPairs) && options.evalPairs > 0)) problems.push(`--eval-pairs must be a whole number above 0, got ${options.evalPairs}`);
  try {
    // The vocabulary comes from the pairs later; any size checks the rest of the shape now.
    resolveT5Config({ preset: options.preset, overrides: options.model, vocabSize: 1000 });
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    problems.push(problemOf(error));
  }
  return { ...resolved, problems };
}

export async function trainT5(options: TrainT5Options): Promise<T5TrainResult> {
  const reporter = options.reporter ?? createLineReporter((line) => console.log(line));
  const runDir = resolve(options.out);
  const runKind = inspectRunDir(runDir, options.resume === true);
  const newRun = runKind === 'new' ? checkNewT5Run(options) : undefined;
  if (newRun && newRun.problems.length > 0) throw invalidOptions(newRun.problems, 'train');

  const selected = await selectBackend(options.backend ?? 'auto');
  const resumed = runKind === 'resume' ? await readT5ResumePoint(runDir) : undefined;
  const { hyperparameters, notes, problems } = newRun ?? resolveHyperparameters(resumed!.state.hyperparameters, options.hyperparameters ?? {});
  if (resumed) problems.push(...resumeProblems(options, resumed));
  if (problems.length > 0) throw invalidOptions(problems, 'train');
  reporter.message(`backend: ${selected.detail}`);
  for (const note of notes) reporter.message(note);

  const pairs: PairInput = resumed?.state.pairs ?? pairInput(options);
  const tokenizer = resumed?.tokenizer
    ?? await trainT5Tokenizer(options.tokenizer ?? 'char', pairTexts(readPairs(pairs)), { vocabSize: options.vocabSize });
  const config = resumed?.config ?? resolveT5Config({ preset: options.preset, overrides: options.model, vocabSize: tokenizer.vocabSize });
  const set = await loadPairSet(pairs, tokenizer, { ...config, valFraction: hyperparameters.valFraction, seed: hyperparameters.seed });
  const skipped = describePairSkips(set.skips, config);
  if (skipped) reporter.message(skipped);
  const pairsHash = hashPairs([...set.train, ...set.val]);
  if (resumed && pairsHash !== resumed.state.pairsHash) reporter.message(`warning: the pairs changed since the run started (${resumed.state.pairsHash} -> ${pairsHash})`);
  if (options.signal?.aborted) throw new FerryError('interrupted', 'Interrupted before training started; nothing was written.');

  await mkdir(runDir, { recursive: true });
  const model = createT5(config, { seed: hyperparameters.seed });
  try {
    if (resumed) setT5Weights(model, resumed.weights);
    const state: T5TrainState = resumed?.state ?? {
      format: 'ferry-t5-train-state', version: 1, step: 0, bestValLoss: null, bestStep: null, lastValLoss: null,
      evalsWithoutImprovement: 0, seconds: 0, pendingLoss: { sum: 0, count: 0, seconds: 0, tokens: 0 }, hyperparameters,
      evalPairs: options.evalPairs ?? DEFAULT_EVAL_PAIRS, pairs, pairsHash, stopReason: 'running',
    };
    Object.assign(state, { hyperparameters, pairsHash });
    return await runT5Training({
      runDir, reporter, model, tokenizer, state, backend: selected.name, train: set.train, val: evenlySpaced(set.val, state.evalPairs),
      optimizerState: resumed?.optimizerState, metrics: resumed?.metrics ?? [], signal: options.signal,
    });
  } finally {
    disposeT5(model);
  }
}

function pairInput(options: TrainT5Options): PairInput {
  const source = resolve(options.corpus!);
  return options.targetCorpus === undefined ? source : { source, target: resolve(options.targetCorpus) };
}

/** Flags that would change a resumed run's model, tokenizer or data are refused; hyperparameters may change. */
function resumeProblems(options: TrainT5Options, resumed: T5ResumePoint): string[] {
  const problems: string[] = [];
  const changed = Object.entries(options.model ?? {}).filter(([key, value]) => value !== undefined && resumed.config[key as keyof T5Config] !== value);
  if (changed.length > 0) problems.push(`the model of a resumed run stays as it was (${changed.map(([key]) => key).join(', ')} differ${changed.length === 1 ? 's' : ''}): drop those flags`);
  if (options.preset !== undefined) problems.push('--preset applies to a new run; a resumed run keeps its model');
  if (options.tokenizer !== undefined && options.tokenizer !== resumed.tokenizer.kind) problems.push(`--tokenizer ${options.tokenizer}: the run's tokenizer is ${resumed.tokenizer.kind}`);
  if (options.vocabSize !== undefined) problems.push('--vocab-size applies to a new run; a resumed run keeps its tokenizer');
  if (options.corpus !== undefined || options.targetCorpus !== undefined) problems.push('--corpus: a resumed run reads the pairs it started with');
  if (options.evalPairs !== undefined && options.evalPairs !== resumed.state.evalPairs) problems.push(`--eval-pairs: the run scores ${resumed.state.evalPairs} held-out pairs at every evaluation, so that they compare`);
  return problems;
}

/** A hash of the pairs in file order (train and held out): what resume checks the data against. */
function hashPairs(pairs: readonly EncodedPair[]): string {
  const hash = createHash('sha256');
  for (const pair of pairs) hash.update(`${pair.source}\t${pair.target}\n`);
  return hash.digest('hex').slice(0, 16);
}

/** T5's weight decay: the matrices of attention, feed-forward and head; not the embedding, the position bias or the norms. */
export function decaysInT5({ name, variable }: Parameter): boolean {
  return variable.shape.length >= 2 && name !== 'shared.weight' && !name.endsWith('relative_attention_bias.weight');
}

interface T5ResumePoint {
  config: T5Config;
  tokenizer: Tokenizer;
  weights: Awaited<ReturnType<typeof readT5Checkpoint>>['weights'];
  state: T5TrainState;
  optimizerState: Uint8Array;
  metrics: MetricEvent[];
}

async function readT5ResumePoint(runDir: string): Promise<T5ResumePoint> {
  const checkpoint = await readT5Checkpoint(runDir, { which: 'last' });
  let state: T5TrainState;
  try {
    state = JSON.parse(await checkpoint.extraFiles.readText(STATE_FILE)) as T5TrainState;
  } catch (error) {
    if (error instanceof FerryError) throw error;
    state = {} as T5TrainState;
  }
  if (state.format !== 'ferry-t5-train-state' || state.version !== 1) {
    throw new FerryError('checkpoint_incomplete', `Cannot resume: ${join(checkpoint.dir, STATE_FILE)} is not a ferry T5 trainer state.`, {
      hint: 'Start a new run in another --out.',
    });
  }
  return {
    config: validateT5Config(checkpoint.manifest.model), tokenizer: checkpoint.tokenizer, weights: checkpoint.weights, state,
    optimizerState: await checkpoint.extraFiles.read(OPTIMIZER_FILE),
    metrics: parseMetrics(await checkpoint.extraFiles.readText('metrics.jsonl')),
  };
}

interface T5RunPlan {
  runDir: string;
  reporter: ProgressReporter;
  model: T5Model;
  tokenizer: Tokenizer;
  state: T5TrainState;
  backend: string;
  train: EncodedPair[];
  /** The held-out pairs every evaluation scores. */
  val: EncodedPair[];
  optimizerState: Uint8Array | undefined;
  metrics: MetricEvent[];
  signal: AbortSignal | undefined;
}

async function runT5Training(plan: T5RunPlan): Promise<T5TrainResult> {
  const { runDir, reporter, model, tokenizer, state, backend, signal } = plan;
  const { config } = model;
  const h = state.hyperparameters;
  const parameters = t5Parameters(model);
  const variables = parameters.map((p) => p.variable);
  const optimizer = createAdamW(parameters, { beta1: h.beta1, beta2: h.beta2, epsilon: DEFAULT_ADAMW.epsilon, weightDecay: h.weightDecay, decays: decaysInT5 });
  if (plan.optimizerState) optimizer.loadState(plan.optimizerState);
  const parameterCount = countT5Parameters(config);
  const metrics = createMetricsLog(runDir, plan.metrics, `${basename(runDir)}: t5, ${parameterCount.toLocaleString('en')} parameters, ${tokenizer.kind} tokenizer`);
  const learningRateAt = createCosineSchedule({ lr: h.lr, minLr: h.minLr ?? h.lr / 10, warmupSteps: h.warmupSteps, decaySteps: h.decaySteps ?? h.steps });
  const batches = shuffledPairBatches(plan.train, { batchSize: h.batchSize, seed: h.seed, firstBatch: state.step, lengthMultiple: LENGTH_MULTIPLE });
  const startStep = state.step;
  const startSeconds = state.seconds;
  const started = performance.now();
  const elapsed = () => startSeconds + (performance.now() - started) / 1000;
  let lastScore: T5Score | null = null;

  reporter.message(
    `${startStep > 0 ? `resuming ${runDir} at step ${startStep}` : `training into ${runDir}`}: t5, ${parameterCount.toLocaleString('en')} parameters ` +
      `(${config.nEncoderLayers}+${config.nDecoderLayers} layers, width ${config.dModel}), ${tokenizer.kind} tokenizer of ${tokenizer.vocabSize} tokens, ` +
      `${plan.train.length.toLocaleString('en')} train pairs, ${plan.val.length.toLocaleString('en')} held-out pairs scored per evaluation`,
  );

  async function trainStep(batch: PairBatch, lr: number): Promise<{ loss: number; gradNorm: number }> {
    const { value, grads } = withSeededRandom(mixSeed(h.seed, state.step), () => tf.variableGrads(() => t5Loss(model, batch, { training: true }), variables));
    const ordered = variables.map((variable) => grads[variable.name]!);
    const clip = gradientClip(ordered, h.gradClip);
    optimizer.applyGradients(ordered, lr, clip.scale);
    const loss = (await value.data())[0]!;
    const gradNorm = (await clip.norm.data())[0]!;
    tf.dispose([value, ...ordered, clip.norm, clip.scale]);
    return { loss, gradNorm };
  }

  async function save(name: 'last' | 'best'): Promise<void> {
    state.seconds = elapsed();
    await saveT5Checkpoint(join(runDir, name), {
      config, weights: await t5Weights(model), tokenizer,
      training: {
        step: state.step, corpusHash: state.pairsHash, backend, seed: h.seed, valLoss: state.lastValLoss, bestValLoss: state.bestValLoss,
        exactMatch: lastScore?.exactMatch ?? null, cer: lastScore?.cer ?? null, evalPairs: plan.val.length,
        seconds: Number(state.seconds.toFixed(3)), hyperparameters: { ...h },
      },
      extraFiles: await trainerFiles(optimizer, state, metrics),
    });
  }

  async function evaluateAndSave(): Promise<boolean> {
    const score = await scoreT5(model, tokenizer, plan.val, { batchSize: Math.max(h.batchSize, 32) });
    lastScore = score;
    const improved = state.bestValLoss === null || score.loss < state.bestValLoss;
    state.lastValLoss = score.loss;
    if (improved) {
      state.bestValLoss = score.loss;
      state.bestStep = state.step;
      state.evalsWithoutImprovement = 0;
    } else {
      state.evalsWithoutImprovement += 1;
    }
    metrics.record({
      type: 'eval', step: state.step, valLoss: score.loss, valPerplexity: score.perplexity, bestValLoss: state.bestValLoss!,
      exactMatch: score.exactMatch, cer: score.cer, seconds: elapsed(),
    });
    metrics.drawCurve();
    reporter.message(
      `step ${state.step}: val loss ${score.loss.toFixed(4)}, perplexity ${score.perplexity.toFixed(2)}, exact match ${(100 * score.exactMatch).toFixed(1)}%, ` +
        `CER ${(100 * score.cer).toFixed(1)}% over ${score.decoded} held-out pairs` +
        (improved ? ' (best so far, saved best/)' : ` (best ${state.bestValLoss!.toFixed(4)} at step ${state.bestStep})`),
    );
    for (const { source, target, output } of score.examples) reporter.message(`  ${JSON.stringify(source)} -> ${JSON.stringify(output)} (expected ${JSON.stringify(target)})`);
    if (improved) await save('best');
    await save('last');
    return h.patience > 0 && state.evalsWithoutImprovement >= h.patience;
  }

  let stopReason: StopReason;
  let losses: number[];
  reporter.begin(state.step, h.steps, h.logInterval);
  try {
    ({ stopReason, losses } = await runStepLoop({
      state, hyperparameters: h, runDir, reporter, signal, learningRateAt,
      step: async (lr) => {
        const batch = batches.next().value!;
        // Real tokens on both sides (padding excluded): what the model read and predicted.
        const tokens = batch.sourceMask.reduce((a: number, b: number) => a + b, 0) + batch.labelMask.reduce((a: number, b: number) => a + b, 0);
        return { ...(await trainStep(batch, lr)), tokens };
      },
      record: ({ loss, lr, gradNorm, tokens, seconds }) => {
        const pending = state.pendingLoss;
        pending.sum += loss;
        pending.count += 1;
        pending.seconds += seconds;
        pending.tokens += tokens;
        if (state.step % h.logInterval !== 0 && state.step !== h.steps) return;
        metrics.record({ type: 'train', step: state.step, loss: pending.sum / pending.count, lr, gradNorm, tokensPerSecond: pending.tokens / pending.seconds, seconds: elapsed() });
        state.pendingLoss = { sum: 0, count: 0, seconds: 0, tokens: 0 };
      },
      evaluateAndSave,
    }));
    state.stopReason = stopReason === 'interrupted' ? 'running' : stopReason;
    await save('last');
    metrics.drawCurve();
  } finally {
    reporter.end();
    optimizer.dispose();
  }
  reporter.message(
    `${stopReason === 'interrupted' ? 'interrupted' : 'done'} at step ${state.step} after ${formatDuration(elapsed())}` +
      (state.bestValLoss === null ? '' : `; best val loss ${state.bestValLoss.toFixed(4)} at step ${state.bestStep}`) + `; checkpoints in ${runDir}`,
  );
  return {
    runDir, backend, config, hyperparameters: h, startStep, step: state.step, losses, stopReason,
    bestValLoss: state.bestValLoss, lastValLoss: state.lastValLoss, lastScore, seconds: elapsed(),
  };
}
