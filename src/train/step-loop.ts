/**
 * The step loop both trainers run (loop.ts for language models, t5-trainer.ts for T5): a step at
 * a time until the run's last, stopping cleanly on a signal, failing on a non-finite loss,
 * evaluating (and checkpointing) every evalInterval steps and at the end, stopping early when
 * the evaluation says so. What a step, a log entry and an evaluation are is the caller's.
 */
import { join } from 'node:path';
import { FerryError } from '../errors.ts';
import type { ProgressReporter } from './progress.ts';
import type { StopReason } from './run-dir.ts';

export interface StepLoop {
  /** The run's state; `step` counts the steps done and is advanced here. */
  state: { step: number };
  hyperparameters: { steps: number; evalInterval: number; patience: number; lr: number; logInterval: number };
  runDir: string;
  reporter: ProgressReporter;
  signal: AbortSignal | undefined;
  learningRateAt(step: number): number;
  /** One optimizer step at `lr`; `tokens`: what it read, for the throughput. */
  step(lr: number): Promise<{ loss: number; gradNorm: number; tokens: number }>;
  /** After each step (state.step already counts it): the training log. */
  record(step: { loss: number; gradNorm: number; lr: number; tokens: number; seconds: number }): void;
  /** Evaluates and checkpoints; true to stop early. */
  evaluateAndSave(): Promise<boolean>;
}

/** Runs steps until the last one, a signal or an early stop; returns why it stopped and each step's loss. */
export async function runStepLoop(loop: StepLoop): Promise<{ stopReason: StopReason; losses: number[] }> {
  const { state, hyperparameters: h, reporter, signal } = loop;
  const losses: number[] = [];
  let smoothedTokensPerSecond = 0;
  while (state.step < h.steps) {
    if (signal?.aborted) return { stopReason: 'interrupted', losses };
    const lr = loop.learningRateAt(state.step);
    const started = performance.now();
    const { loss, gradNorm, tokens } = await loop.step(lr);
    const seconds = (performance.now() - started) / 1000;
    if (!Number.isFinite(loss)) {
      throw new FerryError('training_diverged', `The training loss became ${loss} at step ${state.step + 1}.`, {
        hint: `Lower --lr (now ${h.lr}) or keep --grad-clip on; ${join(loop.runDir, 'last')} holds the last good checkpoint, if any.`,
      });
    }
    state.step += 1;
    losses.push(loss);
    const tokensPerSecond = tokens / seconds;
    smoothedTokensPerSecond = smoothedTokensPerSecond === 0 ? tokensPerSecond : 0.9 * smoothedTokensPerSecond + 0.1 * tokensPerSecond;
    loop.record({ loss, gradNorm, lr, tokens, seconds });
    reporter.update({ step: state.step, loss, lr, tokensPerSecond: smoothedTokensPerSecond });
    if (state.step % h.evalInterval === 0 || state.step === h.steps) {
      if (await loop.evaluateAndSave()) {
        reporter.message(`early stop: no better val loss in ${h.patience} evaluations`);
        return { stopReason: 'early-stop', losses };
      }
    }
    // Signals are delivered between macrotasks; a synchronous backend would otherwise starve them.
    await new Promise((resolveTick) => setImmediate(resolveTick));
  }
  return { stopReason: 'completed', losses };
}
