/**
 * The training loop of one run: steps (AdamW with warmup + cosine decay and global-norm
 * clipping), periodic evaluation on the val split, `last` and `best` checkpoints, early stopping
 * and a clean stop on a signal.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Tokenizer } from '../tokenizer/index.ts';
import { saveCheckpoint } from './checkpoint.ts';
import { createRng, sampleBatch, type TokenSource } from './data/index.ts';
import type { Hyperparameters } from './hyperparameters.ts';
import type { MetricsLog } from './metrics.ts';
import { crossEntropy, type ModelConfig } from './models/index.ts';
import { gradientClip, type AdamW } from './optimizer.ts';
import type { StepGradients } from './parallel/gradients.ts';
import { mixSeed } from './parallel/shard.ts';
import { formatDuration, type ProgressReporter } from './progress.ts';
import { trainerFiles, type StopReason, type TrainState } from './run-dir.ts';
import { createCosineSchedule } from './schedule.ts';
import { runStepLoop } from './step-loop.ts';
import { isStateful, statefulBatch } from './stateful.ts';

export interface TrainResult {
  runDir: string;
  backend: string;
  /** Threads that computed each step's gradients. */
  threads: number;
  /** Shards each batch was split into. */
  shards: number;
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

export interface LoopParts {
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

export function createTrainingLoop(parts: LoopParts) {
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
    const batch = h.stateful ? statefulBatch(parts.trainTokens, batchShape, state.step) : sampleBatch(parts.trainTokens, batchShape, rng);
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
    if (isStateful(gradients)) state.carriedState = gradients.carried();
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
          ...(state.embeddings ? { embeddings: state.embeddings } : {}),
        },
      },
      extraFiles: await trainerFiles(optimizer, state, metrics),
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
    reporter.begin(state.step, h.steps, h.logInterval);
    let stopReason: StopReason;
    try {
      const result = await runStepLoop({
        state, hyperparameters: h, runDir, reporter, signal, learningRateAt,
        step: async (lr) => ({ ...(await trainStep(lr)), tokens: h.batchSize * blockSize }),
        record: ({ loss, lr, gradNorm, seconds }) => recordTrainLog(loss, lr, gradNorm, seconds),
        evaluateAndSave,
      });
      stopReason = result.stopReason;
      losses.push(...result.losses);
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
      shards: gradients.shards,
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
