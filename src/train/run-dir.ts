/**
 * The run dir: what `--out` holds (a place for a new run, a run to resume, or something to
 * refuse), the trainer state saved beside each checkpoint's weights, and reading it back to resume.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { loadCheckpoint } from './checkpoint.ts';
import type { RngState } from './data/index.ts';
import type { EmbeddingsCoverage } from './embeddings.ts';
import type { Hyperparameters } from './hyperparameters.ts';
import { formatMetrics, parseMetrics, type MetricEvent, type MetricsLog } from './metrics.ts';
import type { AdamW } from './optimizer.ts';
import type { ModelConfig } from './models/index.ts';

export type StopReason = 'completed' | 'early-stop' | 'interrupted';

/** Trainer state beside the weights in a checkpoint (`state.json`). */
export interface TrainState {
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
  /** Threads that computed the last steps; for the record only, as they never change a number. Absent before ferry had threads. */
  threads?: number;
  /**
   * Shards each batch is split into: with the seed, what fixes the numbers, so a resumed run
   * keeps it. Absent in runs from before shards, which split each batch by `threads`.
   */
  shards?: number;
  /** `stateful` runs: the LSTM state carried into the next step, h then c per layer ([batchSize * hiddenSize] each). */
  carriedState?: number[][];
  /** A run started with --init-embeddings: the file and how many tokens it covered (also `training.embeddings` in ferry.json). */
  embeddings?: EmbeddingsCoverage;
}

export const STATE_FILE = 'state.json';
export const OPTIMIZER_FILE = 'optimizer.bin';

/** What a checkpoint holds beside the weights so that a run resumes where it stopped (either trainer's state). */
export async function trainerFiles(optimizer: AdamW, state: object, metrics: MetricsLog): Promise<Record<string, string | Uint8Array>> {
  return {
    [OPTIMIZER_FILE]: await optimizer.saveState(),
    [STATE_FILE]: `${JSON.stringify(state, null, 2)}\n`,
    'metrics.jsonl': formatMetrics(metrics.events),
    'loss.svg': metrics.curve(),
  };
}

export type RunKind = 'new' | 'resume';

/** Decides what `--out` is: a place for a new run, a run to resume, or something to refuse. */
export function inspectRunDir(runDir: string, resume: boolean): RunKind {
  if (!existsSync(runDir)) {
    if (resume) {
      throw new FerryError('nothing_to_resume', `Cannot resume: ${runDir} does not exist.`, {
        hint: 'Pass the --out of an earlier `ferry train` run, or drop --resume to start a new run.',
      });
    }
    return 'new';
  }
  if (!statSync(runDir).isDirectory()) {
    throw new FerryError('output_not_a_run', `--out ${runDir} is a file, not a directory.`, { hint: 'Choose a new directory for --out.' });
  }
  const entries = readdirSync(runDir);
  if (entries.length === 0 && !resume) return 'new';
  if (entries.includes('ferry.json')) {
    throw new FerryError('output_is_checkpoint', `--out ${runDir} is a checkpoint dir, not a run dir.`, {
      hint: `A run dir holds last/ and best/; pass its parent (${resolve(runDir, '..')}) or a new directory.`,
    });
  }
  const isRun = existsSync(join(runDir, 'last', 'ferry.json')) || entries.includes('metrics.jsonl');
  if (!isRun) {
    throw new FerryError('output_not_a_run', `--out ${runDir} exists and is not a ferry run (it holds ${describeEntries(entries)}).`, {
      hint: 'Choose a new or empty directory for --out; ferry does not write into other directories.',
    });
  }
  if (!resume) {
    throw new FerryError('run_exists', `--out ${runDir} already holds a ferry run.`, {
      hint: 'Pass --resume to continue it, or choose another --out.',
    });
  }
  if (!existsSync(join(runDir, 'last', 'ferry.json'))) {
    throw new FerryError('nothing_to_resume', `Cannot resume: ${runDir} has no checkpoint yet (no last/ferry.json).`, {
      hint: 'Start it again without --resume in a new --out.',
    });
  }
  return 'resume';
}

function describeEntries(entries: string[]): string {
  const shown = entries.slice(0, 3).join(', ');
  return entries.length > 3 ? `${shown} and ${entries.length - 3} more` : shown;
}

export interface ResumePoint {
  model: tf.LayersModel;
  tokenizer: Tokenizer;
  config: ModelConfig;
  state: TrainState;
  optimizerState: Uint8Array;
  metrics: MetricEvent[];
}

export async function readResumePoint(runDir: string): Promise<ResumePoint> {
  const checkpoint = await loadCheckpoint(runDir, { which: 'last' });
  try {
    const state = JSON.parse(await checkpoint.extraFiles.readText(STATE_FILE)) as TrainState;
    if (state.format !== 'ferry-train-state' || state.version !== 1) {
      throw new FerryError('checkpoint_incomplete', `Cannot resume: ${join(checkpoint.dir, STATE_FILE)} is not a ferry trainer state.`, {
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
