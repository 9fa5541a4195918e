/** A run's training hyperparameters: their defaults and the checks a run's values must pass. */
import { FerryError } from '../errors.ts';

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

export function resolveHyperparameters(saved: Hyperparameters | undefined, given: Partial<Hyperparameters>): Hyperparameters {
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
