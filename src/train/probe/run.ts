/**
 * `ferry probe`: for each task and architecture, one short training run through train() on a
 * generated corpus whose dependency distances are spread log-uniformly over the trainable range,
 * then the checkpoint scored at every distance of the grid on fresh episodes (another seed).
 *
 * One run per task and arch, not one per distance: a model that learned the lookup (or the stack)
 * applies it at any distance, and the grid then shows how far that goes, which is the question.
 * A Transformer with learned positions cannot read past its context, so distances beyond it are
 * reported as such instead of scored; an LSTM runs on any length, so it is scored everywhere,
 * also past the window it was trained on (where it must extrapolate).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../errors.ts';
import { mulberry32 } from '../../random.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import { loadCheckpoint } from '../checkpoint.ts';
import { checkWindow } from '../position-loss.ts';
import type { ProgressReporter } from '../progress.ts';
import { train } from '../trainer.ts';
import { countParameters, type Arch, type ModelConfig } from '../models/index.ts';
import { countCorrect, type AnswerSlot } from './score.ts';
import { ANSWER_ALPHABETS, generateCorpus, generateEpisode, MIN_DISTANCE, PROBE_TASKS, trainingEpisode, type ProbeTask, type Random } from './tasks.ts';

export interface ProbeOptions {
  tasks: readonly ProbeTask[];
  archs: readonly Arch[];
  /** Distances scored, ascending. */
  distances: readonly number[];
  /** Optimizer steps of each training run. */
  steps: number;
  /** Training window of both archs, and the Transformer's context. */
  window: number;
  /** Episodes scored per distance. */
  episodes: number;
  batchSize: number;
  lr: number;
  seed: number;
  backend?: string;
  /** Progress lines (training, scoring); default: none. */
  log?: (line: string) => void;
}

/** The models' shapes (on top of the `tiny` preset), sized so that the default grid fits 15 minutes on 2 cores. */
export const PROBE_MODELS: Readonly<Record<Arch, Record<string, unknown>>> = {
  lstm: { embeddingDim: 32, hiddenSize: 128, numLayers: 1, dropout: 0, tieWeights: false },
  transformer: { nLayer: 2, nHead: 2, nEmbd: 64, dropout: 0, positional: 'learned', tieWeights: false },
};

/** Room the longest training episode leaves in the window: the recall query's pair and the newline. */
const WINDOW_MARGIN = 8;
/** Characters of training text, at most (episodes are cheap; the cap keeps tokenizing short). */
const MAX_CORPUS = 1_000_000;
/** Episodes per forward pass when scoring (an LSTM at distance 512 holds [rows, 515, vocab] logits). */
const SCORE_ROWS = 32;

export interface ProbeScore {
  task: ProbeTask;
  arch: Arch;
  distance: number;
  /** Right answers / episodes; null where the model cannot see that far (`status`). */
  accuracy: number | null;
  correct: number;
  episodes: number;
  /** 1 / the answers a prediction chooses among. */
  chance: number;
  /** scored; beyond_context: the Transformer's positions end before the dependency; beyond_training: a window longer than the training one (an LSTM extrapolating). */
  status: 'scored' | 'beyond_context' | 'beyond_training';
}

export interface ProbeRun {
  task: ProbeTask;
  arch: Arch;
  parameters: number;
  steps: number;
  /** Training distances: log-uniform in [min, max]. */
  trainDistances: [number, number];
  finalLoss: number | null;
  valLoss: number | null;
  trainSeconds: number;
  scoreSeconds: number;
  backend: string;
}

export interface ProbeReport {
  settings: Omit<ProbeOptions, 'log'>;
  runs: ProbeRun[];
  scores: ProbeScore[];
  seconds: number;
}

/** The training distances of a task in a window: from the task's shortest to what the window holds with room for the answer. */
export function trainingRange(task: ProbeTask, window: number): [number, number] {
  const max = window - WINDOW_MARGIN;
  if (max < MIN_DISTANCE[task]) {
    throw new FerryError('invalid_flag', `--window ${window} is too short for ${task} episodes (at least ${MIN_DISTANCE[task] + WINDOW_MARGIN}).`, {
      hint: `Pass --window ${MIN_DISTANCE[task] + WINDOW_MARGIN} or more.`,
    });
  }
  return [MIN_DISTANCE[task], max];
}

export interface ScoringSet {
  /** Every row the same length: the text before each answer, the episode led in by the end of the episode before it. */
  inputs: string[];
  /** Each row's answer: the character after its input. */
  answers: string[];
}

/**
 * `episodes` fresh episodes at `distance`, each cut to end just before its answer and to one
 * length (the longest answer index of the lot), the shortfall taken from a preceding episode,
 * as a window of the training stream would have it.
 */
export function scoringSet(task: ProbeTask, distance: number, episodes: number, range: [number, number], random: Random): ScoringSet {
  const drawn = Array.from({ length: episodes }, () => {
    const before = trainingEpisode(task, range, random);
    const episode = generateEpisode(task, distance, random);
    return { text: before + episode.text, answer: before.length + episode.answer, lead: before.length };
  });
  const length = Math.max(...drawn.map((d) => d.answer - d.lead));
  return {
    inputs: drawn.map((d) => d.text.slice(d.answer - length, d.answer)),
    answers: drawn.map((d) => d.text[d.answer]!),
  };
}

export async function runProbe(options: ProbeOptions): Promise<ProbeReport> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const runs: ProbeRun[] = [];
  const scores: ProbeScore[] = [];
  const scratch = await mkdtemp(join(tmpdir(), 'ferry-probe-'));
  try {
    for (const task of options.tasks) {
      const range = trainingRange(task, options.window);
      const corpus = join(scratch, `${task}.txt`);
      const characters = Math.min(MAX_CORPUS, options.steps * options.batchSize * options.window);
      // The corpus is the same for both archs (they differ in the model alone), and the same
      // whichever other tasks run: its seed goes by the task, not by its place in --tasks.
      await writeFile(corpus, generateCorpus(task, range, Math.max(characters, 20 * options.window), options.seed + PROBE_TASKS.indexOf(task)));
      for (const arch of options.archs) {
        const { run, taskScores } = await probeOne(task, arch, range, corpus, join(scratch, `${task}-${arch}`), options, log);
        runs.push(run);
        scores.push(...taskScores);
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const { log: _log, ...settings } = options;
  return { settings, runs, scores, seconds: (performance.now() - started) / 1000 };
}

async function probeOne(
  task: ProbeTask, arch: Arch, range: [number, number], corpus: string, runDir: string, options: ProbeOptions, log: (line: string) => void,
): Promise<{ run: ProbeRun; taskScores: ProbeScore[] }> {
  const name = `${task}/${arch}`;
  const trainStarted = performance.now();
  const result = await train({
    corpus, out: runDir, arch, preset: 'tiny', tokenizer: 'char', backend: options.backend,
    model: { ...PROBE_MODELS[arch], blockSize: options.window },
    hyperparameters: {
      steps: options.steps, batchSize: options.batchSize, lr: options.lr, warmupSteps: Math.floor(options.steps / 10), seed: options.seed,
      // One evaluation, at the end: the probe scores the model itself, val loss is only a sanity line.
      evalInterval: options.steps, evalIters: 4, valFraction: 0.05, logInterval: Math.max(1, Math.floor(options.steps / 5)),
    },
    cacheDir: join(runDir, '..', 'cache'),
    reporter: probeReporter(name, log),
  });
  const trainSeconds = (performance.now() - trainStarted) / 1000;

  const scoreStarted = performance.now();
  const { model, tokenizer, manifest } = await loadCheckpoint(runDir, { which: 'last' });
  const taskScores: ProbeScore[] = [];
  try {
    const candidates = [...ANSWER_ALPHABETS[task]].map((char) => encodeChar(tokenizer, char));
    // Fresh episodes: another stream than the corpus's, the same for every arch and run.
    const random = mulberry32(options.seed + 0x9e3779b9);
    for (const distance of options.distances) {
      const set = scoringSet(task, distance, options.episodes, range, random);
      const base = { task, arch, distance, episodes: options.episodes, chance: 1 / candidates.length };
      if (!fits(manifest.model, set.inputs[0]!.length)) {
        taskScores.push({ ...base, accuracy: null, correct: 0, status: 'beyond_context' });
        continue;
      }
      const correct = await scoreSet(model, tokenizer, set, candidates);
      taskScores.push({
        ...base, accuracy: correct / options.episodes, correct, status: set.inputs[0]!.length > options.window ? 'beyond_training' : 'scored',
      });
      log(`${name}: distance ${distance}: ${correct}/${options.episodes} right`);
    }
  } finally {
    model.dispose();
  }
  const run: ProbeRun = {
    task, arch, parameters: countParameters(manifest.model), steps: result.step, trainDistances: range,
    finalLoss: result.losses.at(-1) ?? null, valLoss: result.lastValLoss, trainSeconds,
    scoreSeconds: (performance.now() - scoreStarted) / 1000, backend: result.backend,
  };
  return { run, taskScores };
}

/** Whether the model can read `length` positions (a Transformer's position table ends at its context). */
function fits(config: ModelConfig, length: number): boolean {
  try {
    checkWindow(config, length);
    return true;
  } catch (error) {
    if (error instanceof FerryError && error.code === 'window_too_long') return false;
    throw error;
  }
}

function encodeChar(tokenizer: Tokenizer, char: string): number {
  const ids = tokenizer.encode(char);
  if (ids.length !== 1) throw new FerryError('invalid_checkpoint_file', `The probe's tokenizer encodes "${char}" as ${ids.length} tokens, not one.`, { status: 500 });
  return ids[0]!;
}

/** Right answers over the set, teacher-forced, in batches of SCORE_ROWS. */
async function scoreSet(model: tf.LayersModel, tokenizer: Tokenizer, set: ScoringSet, candidates: number[]): Promise<number> {
  const length = set.inputs[0]!.length;
  let correct = 0;
  for (let first = 0; first < set.inputs.length; first += SCORE_ROWS) {
    const rows = set.inputs.slice(first, first + SCORE_ROWS);
    const ids = new Int32Array(rows.length * length);
    rows.forEach((text, row) => {
      const encoded = tokenizer.encode(text);
      if (encoded.length !== length) throw new FerryError('invalid_checkpoint_file', 'The probe\'s char tokenizer did not give one token per character.', { status: 500 });
      ids.set(encoded, row * length);
    });
    // Only the last position predicts the answer: keep its logits, drop the rest inside the tidy.
    const last = tf.tidy(() => {
      const logits = model.predict(tf.tensor2d(ids, [rows.length, length], 'int32')) as tf.Tensor3D;
      return logits.slice([0, length - 1, 0], [rows.length, 1, logits.shape[2]]);
    });
    const values = (await last.data()) as Float32Array;
    const vocab = last.shape[2]!;
    last.dispose();
    const answers: AnswerSlot[] = rows.map((_, row) => ({ row, position: 0, target: encodeChar(tokenizer, set.answers[first + row]!) }));
    correct += countCorrect(values, { rows: rows.length, length: 1, vocab }, answers, candidates);
  }
  return correct;
}

function probeReporter(name: string, log: (line: string) => void): ProgressReporter {
  let every = 1;
  return {
    begin(_start, _total, logInterval) {
      every = logInterval;
    },
    update({ step, loss, tokensPerSecond }) {
      if (step % every === 0) log(`${name}: step ${step}, loss ${loss.toFixed(3)}, ${Math.round(tokensPerSecond)} tok/s`);
    },
    message(line) {
      if (line.startsWith('done') || line.startsWith('backend') || line.includes('val loss')) log(`${name}: ${line}`);
    },
    end() {},
  };
}
