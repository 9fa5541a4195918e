/**
 * The training loop: corpus -> tokenizer -> tokens -> model, AdamW with warmup + cosine decay and
 * global-norm clipping, periodic evaluation on the val split, `last` and `best` checkpoints, exact
 * resume, early stopping and a clean stop on a signal.
 *
 * Everything random is drawn from `seed`: batches from the data RNG (saved in the checkpoint),
 * weight initialisation and dropout from Math.random seeded per step (tfjs seeds its unseeded
 * random ops from Math.random), so an interrupted and resumed run takes the same steps as an
 * uninterrupted one.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { TOKENIZER_KINDS, trainTokenizer, type Tokenizer, type TokenizerKind } from '../tokenizer/index.ts';
import { selectBackend } from './backend.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { createRng, prepareTokens, readCorpus, sampleBatch, splitTrainVal, type RngState, type TokenSource } from './data/index.ts';
import { defaultCacheDir } from './evaluate.ts';
import { createMetricsLog, formatMetrics, parseMetrics, renderLossCurve, type MetricEvent, type MetricsLog } from './metrics.ts';
import { countParameters, createModel, crossEntropy, PRESETS, resolveModelConfig, validateModelConfig, type ModelConfig } from './models/index.ts';
import { createAdamW, gradientClip, DEFAULT_ADAMW, type AdamW, type Parameter } from './optimizer.ts';
import { createLineReporter, formatDuration, type ProgressReporter } from './progress.ts';
import { createCosineSchedule } from './schedule.ts';
import { createStepGradients, type StepGradients } from './parallel/gradients.ts';
import { mixSeed, withSeededRandom } from './parallel/shard.ts';
import { checkThreads, planThreads } from './parallel/threads.ts';


export interface Hyperparameters {
  /** Total optimizer steps of the run (a resumed run counts the steps already done). */
  steps: number;
  batchSize: number;
  lr: number;
  /** Floor of the cosine decay; default lr / 10 as nanoGPT. */
  minLr: number | null;
  warmupSteps: number;
  /** Step at which the cosine reaches minLr; default `steps`. */
  decaySteps: number | null;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Max global gradient norm; 0 turns clipping off. */
  gradClip: number;
  evalInterval: number;
  /** Batches of the val split averaged per evaluation (the same windows at every evaluation). */
  evalIters: number;
  /** Stop after this many evaluations without a better val loss; 0 never stops early. */
  patience: number;
  seed: number;
  /** Fraction of the corpus's tokens, taken from its end, held out for evaluation. */
  valFraction: number;
  /** Steps between log lines and `train` events in metrics.jsonl. */
  logInterval: number;
}

export const DEFAULT_HYPERPARAMETERS: Hyperparameters = {
  steps: 2000,
  batchSize: 12,
  lr: 1e-3,
  minLr: null,
  warmupSteps: 100,
  decaySteps: null,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.99,
  gradClip: 1,
  evalInterval: 250,
  evalIters: 20,
  patience: 0,
  seed: 1,
  valFraction: 0.1,
  logInterval: 10,
};

export interface TrainOptions {
  /** A text file, a .gz file or a directory of .txt files. On resume, default: the run's corpus. */
  corpus?: string;
  /** The run dir; gets `last/`, `best/`, `metrics.jsonl`, `loss.svg`. */
  out: string;
  arch?: string;
  preset?: string;
  /** ModelConfig fields that replace the preset's (blockSize, dropout, nEmbd, hiddenSize, ...). */
  model?: Record<string, unknown>;
  tokenizer?: string;
  /** Vocabulary size for word and BPE tokenizers. */
  vocabSize?: number;
  /** Only the values to change: defaults for a new run, the saved ones on resume. */
  hyperparameters?: Partial<Hyperparameters>;
  backend?: string;
  /**
   * Threads that share each step's batch (data-parallel; wasm and cpu backends). Default: 2 on
   * wasm when 2 cores are idle and a step is big enough to gain, else 1; on resume, the run's.
   * A seed and thread count always train the same way.
   */
  threads?: number;
  resume?: boolean;
  /** Where tokenized corpora are cached; default $FERRY_CACHE_DIR or ~/.cache/ferry. */
  cacheDir?: string;
  reporter?: ProgressReporter;
  /** Aborting stops the run after the current step, saves `last`, and resolves. */
  signal?: AbortSignal;
}

export type StopReason = 'completed' | 'early-stop' | 'interrupted';

export interface TrainResult {
  runDir: string;
  backend: string;
  /** Threads that computed each step's gradients. */
  threads: number;
  config: ModelConfig;
  hyperparameters: Hyperparameters;
  /** The step the run started at (0, or the resumed checkpoint's). */
  startStep: number;
  step: number;
  /** Training loss of every step this call ran, in order (step startStep + i + 1). */
  losses: number[];
  stopReason: StopReason;
  bestValLoss: number | null;
  lastValLoss: number | null;
  seconds: number;
}

/** Trainer state beside the weights in a checkpoint (`state.json`). */
interface TrainState {
  format: 'ferry-train-state';
  version: 1;
  step: number;
  rngState: RngState;
  bestValLoss: number | null;
  bestStep: number | null;
  lastValLoss: number | null;
  evalsWithoutImprovement: number;
  seconds: number;
  /** Losses since the last `train` event, so a resumed run's metrics continue the same averages. */
  pendingLoss: { sum: number; count: number; seconds: number };
  hyperparameters: Hyperparameters;
  corpus: string;
  corpusHash: string;
  stopReason: StopReason | 'running';
  /** Threads that computed the steps; a resumed run keeps them, so that it stays byte-identical. Absent before ferry had threads. */
  threads?: number;
}

const STATE_FILE = 'state.json';
const OPTIMIZER_FILE = 'optimizer.bin';

export async function train(options: TrainOptions): Promise<TrainResult> {
  const reporter = options.reporter ?? createLineReporter((line) => console.log(line));
  const runDir = resolve(options.out);
  const runKind = inspectRunDir(runDir, options.resume === true);
  // The cheap checks first, so a typo fails before the corpus is read.
  const newRunHyperparameters = runKind === 'new' ? resolveHyperparameters(undefined, options.hyperparameters ?? {}) : undefined;
  if (runKind === 'new') resolveConfig(options, 1, undefined);
  checkThreads(options.threads);
  const tokenizerKind = resolveTokenizerKind(options.tokenizer, options.preset, undefined);

  const selected = await selectBackend(options.backend ?? 'auto');
  const backend = selected.name;
  const resumed = runKind === 'resume' ? await readResumePoint(runDir) : undefined;
  let model = resumed?.model;
  try {
    const hyperparameters = newRunHyperparameters ?? resolveHyperparameters(resumed?.state.hyperparameters, options.hyperparameters ?? {});
    if (resumed) {
      resolveTokenizerKind(options.tokenizer, options.preset, resumed.tokenizer.kind);
      resolveConfig(options, resumed.config.vocabSize, resumed.config);
    }
    // Absolute, so that `--resume` finds it from any working directory.
    const corpus = options.corpus === undefined ? resumed?.state.corpus : resolve(options.corpus);
    if (corpus === undefined) {
      throw new FerryError('MISSING_CORPUS', 'No corpus given.', { hint: 'Pass --corpus PATH (a text file, a .gz file or a directory of .txt files).' });
    }
    reporter.message(`backend: ${selected.detail}`);
    if (!resumed && tokenizerKind === 'char' && options.vocabSize !== undefined) {
      reporter.message(`note: the char tokenizer takes every character of the corpus; vocabSize ${options.vocabSize} applies to word and bpe only`);
    }

    const tokenizer = resumed?.tokenizer ?? (await buildTokenizer(corpus, tokenizerKind, options.vocabSize ?? presetVocabSize(options.preset)));
    const prepared = await prepareTokens({ corpusPath: corpus, tokenizer, cacheDir: options.cacheDir ?? defaultCacheDir() });
    if (resumed && prepared.corpusHash !== resumed.state.corpusHash) {
      reporter.message(`warning: the corpus changed since the run started (${resumed.state.corpusHash} -> ${prepared.corpusHash})`);
    }
    const config = resumed?.config ?? resolveConfig(options, tokenizer.vocabSize, undefined);
    const { train: trainTokens, val: valTokens } = splitTrainVal(prepared.tokens, hyperparameters.valFraction, config.blockSize);
    if (options.signal?.aborted) {
      throw new FerryError('INTERRUPTED', 'Interrupted before training started; nothing was written.');
    }
    // Everything the user can get wrong has been checked: only now does the run dir appear.
    await mkdir(runDir, { recursive: true });
    model ??= withSeededRandom(hyperparameters.seed, () => createModel(config));
    return await runTraining({
      runDir, reporter, resumed, model, hyperparameters, corpus, corpusHash: prepared.corpusHash, tokenizer, config, backend,
      requestedThreads: options.threads ?? resumed?.state.threads, trainTokens, valTokens, signal: options.signal,
    });
  } finally {
    model?.dispose();
  }
}

interface RunPlan {
  runDir: string;
  reporter: ProgressReporter;
  resumed: ResumePoint | undefined;
  model: tf.LayersModel;
  hyperparameters: Hyperparameters;
  corpus: string;
  corpusHash: string;
  tokenizer: Tokenizer;
  config: ModelConfig;
  backend: string;
  requestedThreads: number | undefined;
  trainTokens: TokenSource;
  valTokens: TokenSource;
  signal: AbortSignal | undefined;
}

async function runTraining(plan: RunPlan): Promise<TrainResult> {
  const { runDir, reporter, resumed, model, hyperparameters, corpus, corpusHash, tokenizer, config, backend, trainTokens, valTokens } = plan;
  const seed = hyperparameters.seed;
  const parameters: Parameter[] = model.trainableWeights.map((weight) => ({
    name: weight.originalName,
    variable: weight.read() as tf.Variable,
  }));
  const optimizer = createAdamW(parameters, {
    beta1: hyperparameters.beta1,
    beta2: hyperparameters.beta2,
    epsilon: DEFAULT_ADAMW.epsilon,
    weightDecay: hyperparameters.weightDecay,
  });
  if (resumed) optimizer.loadState(resumed.optimizerState);
  const rng = createRng(seed);
  if (resumed) rng.setState(resumed.state.rngState);
  const metrics = createMetricsLog(runDir, resumed?.metrics ?? []);

  const state: TrainState = resumed?.state ?? {
    format: 'ferry-train-state',
    version: 1,
    step: 0,
    rngState: rng.getState(),
    bestValLoss: null,
    bestStep: null,
    lastValLoss: null,
    evalsWithoutImprovement: 0,
    seconds: 0,
    pendingLoss: { sum: 0, count: 0, seconds: 0 },
    hyperparameters,
    corpus,
    corpusHash,
    stopReason: 'running',
  };
  state.hyperparameters = hyperparameters;
  state.corpus = corpus;
  state.corpusHash = corpusHash;

  reporter.message(
    `${resumed ? `resuming ${runDir} at step ${state.step}` : `training into ${runDir}`}: ${config.arch}, ` +
      `${countParameters(config).toLocaleString('en')} parameters, ${tokenizer.kind} tokenizer of ${tokenizer.vocabSize} tokens, ` +
      `${trainTokens.length.toLocaleString('en')} train / ${valTokens.length.toLocaleString('en')} val tokens`,
  );

  const { threads, note } = await planThreads({
    requested: plan.requestedThreads,
    backend,
    flopsPerStep: 6 * countParameters(config) * hyperparameters.batchSize * config.blockSize,
    batchSize: hyperparameters.batchSize,
  });
  if (note) reporter.message(note);
  state.threads = threads;
  let gradients: StepGradients | undefined;
  try {
    gradients = await createStepGradients({ model, variables: parameters.map(({ variable }) => variable), config, backend, threads });
    const session = createSession({
      model, config, tokenizer, optimizer, gradients, rng, metrics, state, backend, runDir, reporter,
      trainTokens, valTokens, signal: plan.signal,
    });
    return await session.run();
  } finally {
    await gradients?.close();
    optimizer.dispose();
  }
}

interface SessionParts {
  model: tf.LayersModel;
  config: ModelConfig;
  tokenizer: Tokenizer;
  optimizer: AdamW;
  gradients: StepGradients;
  rng: ReturnType<typeof createRng>;
  metrics: MetricsLog;
  state: TrainState;
  backend: string;
  runDir: string;
  reporter: ProgressReporter;
  trainTokens: TokenSource;
  valTokens: TokenSource;
  signal: AbortSignal | undefined;
}

function createSession(parts: SessionParts) {
  const { model, config, tokenizer, optimizer, gradients, rng, metrics, state, backend, runDir, reporter, signal } = parts;
  const h = state.hyperparameters;
  const { blockSize } = config;
  const batchShape = { blockSize, batchSize: h.batchSize };
  const learningRateAt = createCosineSchedule({
    lr: h.lr,
    minLr: h.minLr ?? h.lr / 10,
    warmupSteps: h.warmupSteps,
    decaySteps: h.decaySteps ?? h.steps,
  });
  const startStep = state.step;
  const startSeconds = state.seconds;
  const started = performance.now();
  const elapsed = () => startSeconds + (performance.now() - started) / 1000;
  const losses: number[] = [];

  async function trainStep(lr: number): Promise<{ loss: number; gradNorm: number }> {
    const batch = sampleBatch(parts.trainTokens, batchShape, rng);
    const { loss, grads } = await gradients.compute(batch, mixSeed(h.seed, state.step));
    const clip = gradientClip(grads, h.gradClip);
    optimizer.applyGradients(grads, lr, clip.scale);
    const gradNorm = (await clip.norm.data())[0]!;
    tf.dispose([...grads, clip.norm, clip.scale]);
    return { loss, gradNorm };
  }

  async function evaluate(): Promise<number> {
    // A fresh RNG per evaluation: every evaluation scores the same val windows, so they compare.
    const evalRng = createRng(mixSeed(h.seed, -1));
    let total = 0;
    for (let i = 0; i < h.evalIters; i += 1) {
      const batch = sampleBatch(parts.valTokens, batchShape, evalRng);
      const loss = tf.tidy(() =>
        crossEntropy(
          model.apply(tf.tensor2d(batch.inputs, [h.batchSize, blockSize], 'int32'), { training: false }) as tf.Tensor,
          tf.tensor2d(batch.targets, [h.batchSize, blockSize], 'int32'),
        ),
      );
      total += (await loss.data())[0]!;
      loss.dispose();
    }
    return total / h.evalIters;
  }

  async function save(name: 'last' | 'best'): Promise<void> {
    state.rngState = rng.getState();
    state.seconds = elapsed();
    await saveCheckpoint(join(runDir, name), {
      model,
      tokenizer,
      manifest: {
        model: config,
        training: {
          step: state.step,
          corpusHash: state.corpusHash,
          backend,
          seed: h.seed,
          valLoss: state.lastValLoss,
          bestValLoss: state.bestValLoss,
          seconds: Number(state.seconds.toFixed(3)),
          hyperparameters: { ...h },
        },
      },
      extraFiles: {
        [OPTIMIZER_FILE]: await optimizer.saveState(),
        [STATE_FILE]: `${JSON.stringify(state, null, 2)}\n`,
        'metrics.jsonl': formatMetrics(metrics.events),
        'loss.svg': renderLossCurve(metrics.events),
      },
    });
  }

  async function evaluateAndSave(): Promise<boolean> {
    const valLoss = await evaluate();
    const improved = state.bestValLoss === null || valLoss < state.bestValLoss;
    state.lastValLoss = valLoss;
    if (improved) {
      state.bestValLoss = valLoss;
      state.bestStep = state.step;
      state.evalsWithoutImprovement = 0;
    } else {
      state.evalsWithoutImprovement += 1;
    }
    metrics.record({
      type: 'eval',
      step: state.step,
      valLoss,
      valPerplexity: Math.exp(valLoss),
      bestValLoss: state.bestValLoss!,
      seconds: elapsed(),
    });
    metrics.drawCurve();
    reporter.message(
      `step ${state.step}: val loss ${valLoss.toFixed(4)}, perplexity ${Math.exp(valLoss).toFixed(2)}` +
        (improved ? ' (best so far, saved best/)' : ` (best ${state.bestValLoss!.toFixed(4)} at step ${state.bestStep})`),
    );
    if (improved) await save('best');
    await save('last');
    return h.patience > 0 && state.evalsWithoutImprovement >= h.patience;
  }

  function recordTrainLog(loss: number, lr: number, gradNorm: number, stepSeconds: number): void {
    const pending = state.pendingLoss;
    pending.sum += loss;
    pending.count += 1;
    pending.seconds += stepSeconds;
    if (state.step % h.logInterval !== 0 && state.step !== h.steps) return;
    metrics.record({
      type: 'train',
      step: state.step,
      loss: pending.sum / pending.count,
      lr,
      gradNorm,
      tokensPerSecond: (pending.count * h.batchSize * blockSize) / pending.seconds,
      seconds: elapsed(),
    });
    state.pendingLoss = { sum: 0, count: 0, seconds: 0 };
  }

  async function run(): Promise<TrainResult> {
    let stopReason: StopReason = 'completed';
    let smoothedTokensPerSecond = 0;
    reporter.begin(state.step, h.steps, h.logInterval);
    try {
      while (state.step < h.steps) {
        if (signal?.aborted) {
          stopReason = 'interrupted';
          break;
        }
        const lr = learningRateAt(state.step);
        const stepStarted = performance.now();
        const { loss, gradNorm } = await trainStep(lr);
        const stepSeconds = (performance.now() - stepStarted) / 1000;
        if (!Number.isFinite(loss)) {
          throw new FerryError('TRAINING_DIVERGED', `The training loss became ${loss} at step ${state.step + 1}.`, {
            hint: `Lower --lr (now ${h.lr}) or keep --grad-clip on; ${join(runDir, 'last')} holds the last good checkpoint, if any.`,
          });
        }
        state.step += 1;
        losses.push(loss);
        const tokensPerSecond = (h.batchSize * blockSize) / stepSeconds;
        smoothedTokensPerSecond = smoothedTokensPerSecond === 0 ? tokensPerSecond : 0.9 * smoothedTokensPerSecond + 0.1 * tokensPerSecond;
        recordTrainLog(loss, lr, gradNorm, stepSeconds);
        reporter.update({ step: state.step, loss, lr, tokensPerSecond: smoothedTokensPerSecond });
        if (state.step % h.evalInterval === 0 || state.step === h.steps) {
          if (await evaluateAndSave()) {
            stopReason = 'early-stop';
            reporter.message(`early stop: no better val loss in ${h.patience} evaluations`);
            break;
          }
        }
        // Signals are delivered between macrotasks; a synchronous backend would otherwise starve them.
        await new Promise((resolveTick) => setImmediate(resolveTick));
      }
      state.stopReason = stopReason === 'interrupted' ? 'running' : stopReason;
      await save('last');
      metrics.drawCurve();
    } finally {
      reporter.end();
    }
    reporter.message(
      `${stopReason === 'interrupted' ? 'interrupted' : 'done'} at step ${state.step} after ${formatDuration(elapsed())}` +
        (state.bestValLoss === null ? '' : `; best val loss ${state.bestValLoss.toFixed(4)} at step ${state.bestStep}`) +
        `; checkpoints in ${runDir}`,
    );
    return {
      runDir,
      backend,
      threads: gradients.threads,
      config,
      hyperparameters: h,
      startStep,
      step: state.step,
      losses,
      stopReason,
      bestValLoss: state.bestValLoss,
      lastValLoss: state.lastValLoss,
      seconds: elapsed(),
    };
  }

  return { run };
}

type RunKind = 'new' | 'resume';

/** Decides what `--out` is: a place for a new run, a run to resume, or something to refuse. */
function inspectRunDir(runDir: string, resume: boolean): RunKind {
  if (!existsSync(runDir)) {
    if (resume) {
      throw new FerryError('NOTHING_TO_RESUME', `Cannot resume: ${runDir} does not exist.`, {
        hint: 'Pass the --out of an earlier `ferry train` run, or drop --resume to start a new run.',
      });
    }
    return 'new';
  }
  if (!statSync(runDir).isDirectory()) {
    throw new FerryError('OUTPUT_NOT_A_RUN', `--out ${runDir} is a file, not a directory.`, { hint: 'Choose a new directory for --out.' });
  }
  const entries = readdirSync(runDir);
  if (entries.length === 0 && !resume) return 'new';
  if (entries.includes('ferry.json')) {
    throw new FerryError('OUTPUT_IS_CHECKPOINT', `--out ${runDir} is a checkpoint dir, not a run dir.`, {
      hint: `A run dir holds last/ and best/; pass its parent (${resolve(runDir, '..')}) or a new directory.`,
    });
  }
  const isRun = existsSync(join(runDir, 'last', 'ferry.json')) || entries.includes('metrics.jsonl');
  if (!isRun) {
    throw new FerryError('OUTPUT_NOT_A_RUN', `--out ${runDir} exists and is not a ferry run (it holds ${describeEntries(entries)}).`, {
      hint: 'Choose a new or empty directory for --out; ferry does not write into other directories.',
    });
  }
  if (!resume) {
    throw new FerryError('RUN_EXISTS', `--out ${runDir} already holds a ferry run.`, {
      hint: 'Pass --resume to continue it, or choose another --out.',
    });
  }
  if (!existsSync(join(runDir, 'last', 'ferry.json'))) {
    throw new FerryError('NOTHING_TO_RESUME', `Cannot resume: ${runDir} has no checkpoint yet (no last/ferry.json).`, {
      hint: 'Start it again without --resume in a new --out.',
    });
  }
  return 'resume';
}

function describeEntries(entries: string[]): string {
  const shown = entries.slice(0, 3).join(', ');
  return entries.length > 3 ? `${shown} and ${entries.length - 3} more` : shown;
}

interface ResumePoint {
  model: tf.LayersModel;
  tokenizer: Tokenizer;
  config: ModelConfig;
  state: TrainState;
  optimizerState: Uint8Array;
  metrics: MetricEvent[];
}

async function readResumePoint(runDir: string): Promise<ResumePoint> {
  const checkpoint = await loadCheckpoint(runDir, { which: 'last' });
  try {
    const state = JSON.parse(await checkpoint.extraFiles.readText(STATE_FILE)) as TrainState;
    if (state.format !== 'ferry-train-state' || state.version !== 1) {
      throw new FerryError('CHECKPOINT_INCOMPLETE', `Cannot resume: ${join(checkpoint.dir, STATE_FILE)} is not a ferry trainer state.`, {
        hint: 'Start a new run in another --out.',
      });
    }
    return {
      model: checkpoint.model,
      tokenizer: checkpoint.tokenizer,
      config: checkpoint.manifest.model,
      state,
      optimizerState: await checkpoint.extraFiles.read(OPTIMIZER_FILE),
      metrics: parseMetrics(await checkpoint.extraFiles.readText('metrics.jsonl')),
    };
  } catch (error) {
    checkpoint.model.dispose();
    throw error;
  }
}

function resolveHyperparameters(saved: Hyperparameters | undefined, given: Partial<Hyperparameters>): Hyperparameters {
  const defined = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined));
  const h: Hyperparameters = { ...(saved ?? DEFAULT_HYPERPARAMETERS), ...defined };
  const fail = (problem: string, hint: string) => new FerryError('INVALID_HYPERPARAMETER', problem, { hint });
  for (const key of ['steps', 'batchSize', 'evalInterval', 'evalIters', 'logInterval'] as const) {
    if (!Number.isInteger(h[key]) || h[key] <= 0) throw fail(`${key} must be a positive integer, got ${h[key]}.`, 'Pass a whole number above 0.');
  }
  for (const key of ['warmupSteps', 'patience', 'seed'] as const) {
    if (!Number.isInteger(h[key]) || h[key] < 0) throw fail(`${key} must be a whole number >= 0, got ${h[key]}.`, 'Pass a whole number.');
  }
  if (!(h.lr > 0)) throw fail(`lr must be above 0, got ${h.lr}.`, 'nanoGPT-sized models train well at 1e-3.');
  if (h.minLr !== null && !(h.minLr >= 0 && h.minLr <= h.lr)) {
    throw fail(`minLr ${h.minLr} must lie between 0 and lr ${h.lr}.`, 'Leave --min-lr out for lr / 10.');
  }
  if (h.decaySteps !== null && !(Number.isInteger(h.decaySteps) && h.decaySteps > h.warmupSteps)) {
    throw fail(`decaySteps ${h.decaySteps} must be a whole number above warmupSteps ${h.warmupSteps}.`, 'Leave --decay-steps out to decay over --steps.');
  }
  if (h.decaySteps === null && h.warmupSteps >= h.steps) {
    throw fail(`warmupSteps ${h.warmupSteps} must be below steps ${h.steps}.`, 'Lower --warmup or raise --steps.');
  }
  if (!(h.weightDecay >= 0)) throw fail(`weightDecay must be >= 0, got ${h.weightDecay}.`, 'nanoGPT uses 0.1.');
  for (const key of ['beta1', 'beta2'] as const) {
    if (!(h[key] >= 0 && h[key] < 1)) throw fail(`${key} must lie in [0, 1), got ${h[key]}.`, 'Typical: beta1 0.9, beta2 0.99.');
  }
  if (!(h.gradClip >= 0)) throw fail(`gradClip must be >= 0 (0 turns clipping off), got ${h.gradClip}.`, 'nanoGPT uses 1.');
  if (!(h.valFraction > 0 && h.valFraction < 1)) {
    throw fail(`valFraction must lie strictly between 0 and 1, got ${h.valFraction}.`, 'The usual split holds out 0.1.');
  }
  return h;
}

/** The tokenizer a run uses: --tokenizer, else the preset's, else char; on resume the run's, which --tokenizer may only repeat. */
function resolveTokenizerKind(given: string | undefined, presetName: string | undefined, saved: TokenizerKind | undefined): TokenizerKind {
  if (given !== undefined && !(TOKENIZER_KINDS as readonly string[]).includes(given)) {
    throw new FerryError('UNKNOWN_TOKENIZER', `Unknown tokenizer "${given}".`, { hint: `Valid tokenizers: ${TOKENIZER_KINDS.join(', ')}.` });
  }
  if (saved !== undefined) {
    if (given !== undefined && given !== saved) {
      throw new FerryError('RESUME_MISMATCH', `Cannot resume with --tokenizer ${given}: the run was trained with a ${saved} tokenizer.`, {
        hint: 'Drop --tokenizer, or start a new run in another --out.',
      });
    }
    return saved;
  }
  const preset = presetName === undefined ? undefined : PRESETS[presetName];
  return (given as TokenizerKind | undefined) ?? preset?.tokenizer ?? 'char';
}

function presetVocabSize(presetName: string | undefined): number | undefined {
  return presetName === undefined ? undefined : PRESETS[presetName]?.vocabSize;
}

async function buildTokenizer(corpus: string, kind: TokenizerKind, vocabSize: number | undefined): Promise<Tokenizer> {
  return trainTokenizer(kind, readCorpus(corpus), vocabSize === undefined ? {} : { vocabSize });
}

/** A new run's config from arch/preset/flags; on resume, the checkpoint's, which flags may only repeat. */
function resolveConfig(options: TrainOptions, vocabSize: number, saved: ModelConfig | undefined): ModelConfig {
  const overrides = options.model ?? {};
  if (saved === undefined) {
    return resolveModelConfig({ arch: options.arch, preset: options.preset, overrides, vocabSize });
  }
  if (options.arch !== undefined && options.arch !== saved.arch) {
    throw new FerryError('RESUME_MISMATCH', `Cannot resume a ${saved.arch} checkpoint as --arch ${options.arch}.`, {
      hint: `The run in ${options.out} is a ${saved.arch} model; drop --arch, or start a new run in another --out.`,
    });
  }
  const wanted = options.preset === undefined
    ? validateModelConfig({ ...saved, ...definedOnly(overrides) })
    : resolveModelConfig({ arch: saved.arch, preset: options.preset, overrides, vocabSize: saved.vocabSize });
  const differing = (Object.keys(saved) as (keyof ModelConfig)[]).filter((key) => wanted[key] !== saved[key]);
  if (differing.length > 0) {
    const describe = differing.map((key) => `${key} ${String(saved[key])} -> ${String(wanted[key])}`).join(', ');
    throw new FerryError('RESUME_MISMATCH', `Cannot resume with a different model: ${describe}.`, {
      hint: 'A resumed run keeps its model; drop those flags, or start a new run in another --out.',
    });
  }
  return saved;
}

function definedOnly(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}
