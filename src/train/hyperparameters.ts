/** A run's training hyperparameters: their defaults, their flags, and the checks a run's values must pass. */
import {
  NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, OPEN_UNIT_INTERVAL, POSITIVE_INT, POSITIVE_NUMBER, UNIT_INTERVAL, type NumberRule,
} from '../cli-flags.ts';

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
  /** LSTM only: consecutive windows of each stream carry the state across steps (src/train/stateful.ts). */
  stateful: boolean;
  /** The token embedding is not trained (src/train/embeddings.ts; with --init-embeddings). */
  freezeEmbeddings: boolean;
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
  stateful: false,
  freezeEmbeddings: false,
};

/** The `ferry train` flag of each hyperparameter: problems are reported in the flags' names. */
export const HYPERPARAMETER_FLAGS: Readonly<Record<keyof Hyperparameters, string>> = {
  steps: '--steps', batchSize: '--batch-size', lr: '--lr', minLr: '--min-lr', warmupSteps: '--warmup', decaySteps: '--decay-steps',
  weightDecay: '--weight-decay', beta1: '--beta1', beta2: '--beta2', gradClip: '--grad-clip', evalInterval: '--eval-interval',
  evalIters: '--eval-iters', patience: '--patience', seed: '--seed', valFraction: '--val-fraction', logInterval: '--log-interval',
  stateful: '--stateful', freezeEmbeddings: '--freeze-embeddings',
};

const RULES: Readonly<Partial<Record<keyof Hyperparameters, NumberRule>>> = {
  steps: POSITIVE_INT, batchSize: POSITIVE_INT, evalInterval: POSITIVE_INT, evalIters: POSITIVE_INT, logInterval: POSITIVE_INT,
  warmupSteps: NON_NEGATIVE_INT, patience: NON_NEGATIVE_INT, seed: NON_NEGATIVE_INT, lr: POSITIVE_NUMBER,
  weightDecay: NON_NEGATIVE_NUMBER, gradClip: NON_NEGATIVE_NUMBER, beta1: UNIT_INTERVAL, beta2: UNIT_INTERVAL,
  valFraction: OPEN_UNIT_INTERVAL,
};

/** A short run still evaluates this many times when --eval-interval is left at its default. */
const MIN_EVALUATIONS = 5;

export interface ResolvedHyperparameters {
  hyperparameters: Hyperparameters;
  /** Every invalid value, in flag names (empty when all are valid). */
  problems: string[];
  /** Defaults fitted to a short run, one line each for the log. */
  notes: string[];
}

/**
 * A run's hyperparameters: the saved ones (on resume) or the defaults, replaced by those given.
 * Defaults that do not fit a short run are fitted to it (the warmup shortened, evaluations made
 * more frequent) with a note; values given that do not fit are problems.
 */
export function resolveHyperparameters(saved: Hyperparameters | undefined, given: Partial<Hyperparameters>): ResolvedHyperparameters {
  const defined = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)) as Partial<Hyperparameters>;
  // Runs from before --stateful (--freeze-embeddings) have no such key: they were stateless (trained their embedding).
  const h: Hyperparameters = { ...DEFAULT_HYPERPARAMETERS, ...saved, ...defined };
  const problems: string[] = [];
  const notes: string[] = [];
  const flag = HYPERPARAMETER_FLAGS;
  for (const [key, rule] of Object.entries(RULES) as [keyof Hyperparameters, NumberRule][]) {
    const value = h[key] as number;
    if (!(Number.isFinite(value) && (!rule.integer || Number.isInteger(value)) && rule.accept(value))) {
      problems.push(`${flag[key]} must be ${rule.expected}, got ${value}`);
    }
  }
  if (typeof h.stateful !== 'boolean') problems.push(`${flag.stateful} is a switch, got ${JSON.stringify(h.stateful)}`);
  if (saved && defined.stateful !== undefined && defined.stateful !== (saved.stateful ?? false)) {
    problems.push(`cannot resume a ${saved.stateful ? 'stateful' : 'stateless'} run ${defined.stateful ? 'with' : 'without'} ${flag.stateful}: a resumed run keeps how it was batched`);
  }
  if (typeof h.freezeEmbeddings !== 'boolean') problems.push(`${flag.freezeEmbeddings} is a switch, got ${JSON.stringify(h.freezeEmbeddings)}`);
  if (saved && defined.freezeEmbeddings !== undefined && defined.freezeEmbeddings !== (saved.freezeEmbeddings ?? false)) {
    problems.push(`cannot resume a run ${saved.freezeEmbeddings ? 'with frozen' : 'that trains its'} embeddings ${defined.freezeEmbeddings ? 'with' : 'without'} ${flag.freezeEmbeddings}: a resumed run keeps what it trains`);
  }
  if (h.minLr !== null && !(h.minLr >= 0 && h.minLr <= h.lr)) {
    problems.push(`${flag.minLr} ${h.minLr} must lie between 0 and ${flag.lr} ${h.lr} (leave it out for lr / 10)`);
  }
  const fresh = saved === undefined;
  if (fresh && h.decaySteps === null && h.warmupSteps >= h.steps && defined.warmupSteps === undefined && h.steps > 0) {
    h.warmupSteps = Math.floor(h.steps / 10);
    notes.push(`note: warming up over ${h.warmupSteps} step${h.warmupSteps === 1 ? '' : 's'}, as ${flag.steps} ${h.steps} is shorter than the default ${flag.warmupSteps} ${DEFAULT_HYPERPARAMETERS.warmupSteps} (pass ${flag.warmupSteps} to choose)`);
  }
  if (h.decaySteps !== null && !(Number.isInteger(h.decaySteps) && h.decaySteps > h.warmupSteps)) {
    problems.push(`${flag.decaySteps} ${h.decaySteps} must be a whole number above ${flag.warmupSteps} ${h.warmupSteps} (leave it out to decay over ${flag.steps})`);
  }
  if (h.decaySteps === null && h.warmupSteps >= h.steps) {
    problems.push(`${flag.warmupSteps} ${h.warmupSteps} must be below ${flag.steps} ${h.steps}: lower ${flag.warmupSteps} or raise ${flag.steps}`);
  }
  if (fresh && defined.evalInterval === undefined && h.steps > 0 && h.steps / h.evalInterval < MIN_EVALUATIONS) {
    h.evalInterval = Math.max(1, Math.floor(h.steps / MIN_EVALUATIONS));
    notes.push(`note: evaluating every ${h.evalInterval} steps, so that ${flag.steps} ${h.steps} gets ${Math.floor(h.steps / h.evalInterval)} evaluations (pass ${flag.evalInterval} to choose)`);
  }
  return { hyperparameters: h, problems, notes };
}
