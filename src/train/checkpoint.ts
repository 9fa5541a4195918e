/**
 * Checkpoint dirs (docs/FORMATS.md): model.json + weights.bin, tokenizer.json, ferry.json and the
 * trainer's extra files. A checkpoint is written whole into a hidden temp dir next to its place
 * and renamed over it, so a crash or an error never leaves half a checkpoint behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { readTokenizerFile } from '../tokenizer/node.ts';
import { TOKENIZER_KINDS, type Tokenizer, type TokenizerKind } from '../tokenizer/index.ts';
import { validateModelConfig, type ModelConfig } from './models/index.ts';
import { fileSystemIO, MODEL_JSON, WEIGHTS_BIN } from './tfjs-io.ts';

export const CHECKPOINT_FORMAT = 'ferry-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const FERRY_JSON = 'ferry.json';
export const TOKENIZER_JSON = 'tokenizer.json';
/** A T5 checkpoint's weights, by Hugging Face state-dict name (src/train/t5-checkpoint.ts). */
export const T5_WEIGHTS_FILE = 'model.safetensors';
const RESERVED_FILES = [MODEL_JSON, WEIGHTS_BIN, TOKENIZER_JSON, FERRY_JSON, T5_WEIGHTS_FILE];

/** How the weights were trained (`training` in ferry.json); the trainer may add more keys. */
export type TrainingInfo = {
  step: number;
  corpusHash: string;
  backend: string;
  seed: number;
  valLoss: number | null;
  seconds: number;
  hyperparameters: Record<string, unknown>;
  [key: string]: unknown;
};

export type CheckpointManifest = {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  model: ModelConfig;
  tokenizer: { kind: TokenizerKind };
  training: TrainingInfo;
};

export type SaveCheckpointOptions = {
  model: tf.LayersModel;
  tokenizer: Tokenizer;
  /** format, version and tokenizer.kind are filled in. */
  manifest: { model: ModelConfig; training: TrainingInfo };
  /** Trainer state and the like (optimizer.bin, state.json): plain file names. */
  extraFiles?: Record<string, string | Uint8Array>;
};

/** Writes a complete checkpoint to `dir`, replacing the checkpoint there, atomically. */
export async function saveCheckpoint(dir: string, options: SaveCheckpointOptions): Promise<CheckpointManifest> {
  const { model, tokenizer, extraFiles = {} } = options;
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION,
    model: validateModelConfig(options.manifest.model),
    tokenizer: { kind: tokenizer.kind },
    training: options.manifest.training,
  };
  checkConsistency(`the checkpoint for ${dir}`, manifest, model, tokenizer);
  for (const name of Object.keys(extraFiles)) checkExtraFileName(name);

  await writeCheckpointDir(dir, async (temp) => {
    await model.save(fileSystemIO(temp));
    await writeFile(path.join(temp, TOKENIZER_JSON), JSON.stringify(tokenizer.toJSON()));
    for (const [name, data] of Object.entries(extraFiles)) await writeFile(path.join(temp, name), data);
    await writeFile(path.join(temp, FERRY_JSON), `${JSON.stringify(manifest, null, 2)}\n`);
  });
  return manifest;
}

/**
 * Writes a checkpoint dir whole: `fill` writes the files into a hidden temp dir beside `dir`, which
 * then replaces `dir` (a checkpoint or nothing; anything else is refused) in one rename. A save
 * killed earlier is repaired first. Every kind of checkpoint (tfjs layers, T5) is written by it.
 */
export async function writeCheckpointDir(dir: string, fill: (temp: string) => Promise<void>): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const base = path.basename(target);
  await mkdir(parent, { recursive: true });
  await recoverInterruptedSave(parent, base);
  const kind = await inspectDir(target);
  if (kind !== 'missing' && kind !== 'empty' && kind !== 'checkpoint') {
    throw new FerryError('not_a_checkpoint', `${target} exists and is not a ferry checkpoint, so it is not overwritten.`, {
      hint: 'Choose a new output directory, or remove that one.',
    });
  }
  // mkdir (not mkdtemp, which makes it 0700) so that the checkpoint gets the umask's permissions.
  const temp = path.join(parent, `.${base}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(temp);
  try {
    await fill(temp);
    await replaceDir(temp, target, parent, base);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Renames `temp` to `target`; an existing target is moved aside first and removed after. */
async function replaceDir(temp: string, target: string, parent: string, base: string): Promise<void> {
  if ((await inspectDir(target)) === 'missing') {
    await rename(temp, target);
    return;
  }
  const old = path.join(parent, `.${base}.old-${process.pid}-${Date.now()}`);
  await rename(target, old);
  try {
    await rename(temp, target);
  } catch (error) {
    await rename(old, target);
    throw error;
  }
  await rm(old, { recursive: true, force: true });
}

/** Undoes what a killed save left: restores a checkpoint moved aside, drops unfinished temp dirs. */
async function recoverInterruptedSave(parent: string, base: string): Promise<void> {
  const siblings = await readdir(parent);
  const moved = siblings.filter((name) => name.startsWith(`.${base}.old-`)).sort();
  const targetMissing = (await inspectDir(path.join(parent, base))) === 'missing';
  for (const [i, name] of moved.entries()) {
    if (targetMissing && i === moved.length - 1) await rename(path.join(parent, name), path.join(parent, base));
    else await rm(path.join(parent, name), { recursive: true, force: true });
  }
  for (const name of siblings.filter((name) => name.startsWith(`.${base}.tmp-`))) {
    await rm(path.join(parent, name), { recursive: true, force: true });
  }
}

export function checkExtraFileName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || RESERVED_FILES.includes(name)) {
    throw new FerryError('invalid_checkpoint_file', `"${name}" cannot be an extra checkpoint file.`, {
      hint: `Use a plain file name other than ${RESERVED_FILES.join(', ')}.`, status: 500,
    });
  }
}

/** The model, its tokenizer and ferry.json of one checkpoint agree on the vocabulary and the tokenizer kind. */
export function checkConsistency(where: string, manifest: CheckpointManifest, model: tf.LayersModel, tokenizer: Tokenizer): void {
  const outputVocab = model.outputs[0]?.shape.at(-1);
  const problems = [
    tokenizer.vocabSize !== manifest.model.vocabSize && `the tokenizer has ${tokenizer.vocabSize} tokens but the model config says ${manifest.model.vocabSize}`,
    outputVocab !== manifest.model.vocabSize && `the model outputs ${outputVocab} logits but the config says ${manifest.model.vocabSize}`,
    tokenizer.kind !== manifest.tokenizer.kind && `the tokenizer is ${tokenizer.kind} but ferry.json says ${manifest.tokenizer.kind}`,
  ].filter((problem): problem is string => typeof problem === 'string');
  if (problems.length > 0) {
    throw new FerryError('inconsistent_checkpoint', `In ${where}, ${problems.join('; ')}.`, {
      hint: 'The files of a checkpoint must come from one training run.',
    });
  }
}

export type DirKind = 'missing' | 'empty' | 'checkpoint' | 'run' | 'file' | 'other';

/** What is at `dir`: nothing, an empty dir, a checkpoint, a run dir (holding best/ or last/), or something else. */
export async function inspectDir(dir: string): Promise<DirKind> {
  const info = await stat(dir).catch(() => null);
  if (info === null) return 'missing';
  if (!info.isDirectory()) return 'file';
  if (await isFile(path.join(dir, FERRY_JSON))) return 'checkpoint';
  const entries = await readdir(dir);
  if (entries.length === 0) return 'empty';
  for (const which of ['best', 'last']) {
    if (entries.includes(which) && await isFile(path.join(dir, which, FERRY_JSON))) return 'run';
  }
  return 'other';
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then((s) => s.isFile(), () => false);
}

/**
 * The checkpoint dir to read: `dir` itself when it is a checkpoint; for a run dir its `best/`
 * (or `last/` when asked, or when no eval has written best/ yet).
 */
export async function resolveCheckpointDir(dir: string, which: 'best' | 'last' = 'best'): Promise<string> {
  const kind = await inspectDir(dir);
  if (kind === 'checkpoint') return dir;
  if (kind === 'run') {
    for (const candidate of which === 'best' ? ['best', 'last'] : ['last']) {
      const sub = path.join(dir, candidate);
      if ((await inspectDir(sub)) === 'checkpoint') return sub;
    }
    throw new FerryError('checkpoint_not_found', `The run dir ${dir} has no ${which}/ checkpoint.`, {
      hint: 'Leave out the choice of checkpoint to use best/.', status: 404,
    });
  }
  throw new FerryError(kind === 'missing' ? 'checkpoint_not_found' : 'not_a_checkpoint',
    kind === 'missing' ? `No checkpoint at ${dir}: it does not exist.` : `${dir} is not a ferry checkpoint (it has no ${FERRY_JSON}).`, {
      hint: 'Give the directory written by `ferry train --out DIR` (or its best/ or last/).',
      status: kind === 'missing' ? 404 : 400,
    });
}

/** The fields every checkpoint's ferry.json has, checked; `model` is left to the caller, which knows the arch. */
export type ManifestRecord = {
  file: string;
  model: unknown;
  tokenizer: { kind: TokenizerKind };
  training: TrainingInfo;
};

/** Reads a checkpoint's ferry.json and checks its format, version, tokenizer kind and training record. */
export async function readManifestRecord(dir: string): Promise<ManifestRecord> {
  const file = path.join(dir, FERRY_JSON);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new FerryError(missing ? 'not_a_checkpoint' : 'invalid_checkpoint',
      missing ? `${dir} is not a ferry checkpoint (it has no ${FERRY_JSON}).` : `${file} is not readable JSON: ${(error as Error).message}.`, {
        hint: 'Give the directory written by `ferry train --out DIR` (or its best/ or last/).', cause: error,
      });
  }
  const record = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (record.format !== CHECKPOINT_FORMAT) throw invalidManifest(file, `format is ${JSON.stringify(record.format)}, not "${CHECKPOINT_FORMAT}"`);
  if (record.version !== CHECKPOINT_VERSION) {
    throw new FerryError('unsupported_checkpoint_version', `${file} has version ${JSON.stringify(record.version)}; this ferry reads version ${CHECKPOINT_VERSION}.`, {
      hint: 'Use the ferry version that wrote it.',
    });
  }
  const tokenizer = record.tokenizer as { kind?: unknown } | undefined;
  if (!TOKENIZER_KINDS.includes(tokenizer?.kind as TokenizerKind)) throw invalidManifest(file, `tokenizer.kind is ${JSON.stringify(tokenizer?.kind)}`);
  const training = record.training as Record<string, unknown> | undefined;
  if (typeof training !== 'object' || training === null || typeof training.step !== 'number') throw invalidManifest(file, 'training.step is missing');
  return { file, model: record.model, tokenizer: { kind: tokenizer!.kind as TokenizerKind }, training: training as TrainingInfo };
}

export function invalidManifest(file: string, problem: string): FerryError {
  return new FerryError('invalid_checkpoint', `${file}: ${problem}.`, { hint: 'The checkpoint is damaged; train again or restore it.' });
}

/** The `model.arch` a checkpoint's ferry.json names (undefined when it names none or is unreadable). */
export async function checkpointArch(dir: string): Promise<string | undefined> {
  try {
    const json = JSON.parse(await readFile(path.join(dir, FERRY_JSON), 'utf8')) as { model?: { arch?: unknown } };
    return typeof json.model?.arch === 'string' ? json.model.arch : undefined;
  } catch {
    return undefined;
  }
}

/** Reads and validates a language-model checkpoint's ferry.json; a T5 checkpoint is refused with what to do instead. */
export async function readCheckpointManifest(dir: string): Promise<CheckpointManifest> {
  const { file, model: modelRecord, tokenizer, training } = await readManifestRecord(dir);
  if ((modelRecord as { arch?: unknown } | undefined)?.arch === 't5') {
    throw new FerryError('t5_checkpoint', `${dir} holds a T5 encoder-decoder checkpoint; this command reads language-model checkpoints.`, {
      hint: 'Export it (`ferry export RUN --out DIR`), then run the package with `ferry generate DIR --prompt TEXT` or `ferry serve DIR`.',
    });
  }
  let model: ModelConfig;
  try {
    model = validateModelConfig(modelRecord);
  } catch (error) {
    throw invalidManifest(file, `model: ${(error as Error).message}`);
  }
  return { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, model, tokenizer, training };
}

/** Read access to the other files of a checkpoint (trainer state). */
export type CheckpointFiles = {
  names(): Promise<string[]>;
  has(name: string): Promise<boolean>;
  read(name: string): Promise<Uint8Array>;
  readText(name: string): Promise<string>;
};

export type LoadedCheckpoint = {
  /** The checkpoint dir actually read (best/ or last/ of a run dir). */
  dir: string;
  model: tf.LayersModel;
  tokenizer: Tokenizer;
  manifest: CheckpointManifest;
  extraFiles: CheckpointFiles;
};

/** Loads a checkpoint dir, or the best/ (or last/) checkpoint of a run dir, on the current tfjs backend. */
export async function loadCheckpoint(dir: string, options: { which?: 'best' | 'last' } = {}): Promise<LoadedCheckpoint> {
  const resolved = await resolveCheckpointDir(dir, options.which);
  const manifest = await readCheckpointManifest(resolved);
  const tokenizer = await readTokenizerFile(path.join(resolved, TOKENIZER_JSON));
  const model = await tf.loadLayersModel(fileSystemIO(resolved));
  try {
    checkConsistency(resolved, manifest, model, tokenizer);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { dir: resolved, model, tokenizer, manifest, extraFiles: checkpointFiles(resolved) };
}

export function checkpointFiles(dir: string): CheckpointFiles {
  const read = async (name: string): Promise<Uint8Array> => {
    checkExtraFileName(name);
    try {
      return new Uint8Array(await readFile(path.join(dir, name)));
    } catch (error) {
      throw new FerryError('checkpoint_file_missing', `The checkpoint ${dir} has no readable ${name}.`, {
        hint: 'It was written without trainer state; start a new run instead of resuming.', cause: error,
      });
    }
  };
  return {
    names: async () => (await readdir(dir)).filter((name) => !RESERVED_FILES.includes(name)).sort(),
    has: (name) => isFile(path.join(dir, name)),
    read,
    readText: async (name) => new TextDecoder().decode(await read(name)),
  };
}
