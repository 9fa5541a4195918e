/**
 * T5 checkpoints (docs/FORMATS.md): the weights under their Hugging Face state-dict names in
 * model.safetensors (Dense kernels [in, out], as t5.ts holds them), the T5 tokenizer.json,
 * ferry.json with the T5Config as `model`, and the trainer's extra files. Written whole through
 * writeCheckpointDir, as every checkpoint is; read without tfjs, so export needs none to load one.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';
import type { T5WeightMap } from '../export/t5/graph.ts';
import { decodeSafetensors, encodeSafetensors } from '../safetensors.ts';
import type { Tokenizer, TokenizerKind } from '../tokenizer/index.ts';
import { readTokenizerFile } from '../tokenizer/node.ts';
import { asT5Tokenizer } from '../tokenizer/t5.ts';
import {
  CHECKPOINT_FORMAT, CHECKPOINT_VERSION, checkExtraFileName, checkpointFiles, FERRY_JSON, invalidManifest, readManifestRecord,
  resolveCheckpointDir, T5_WEIGHTS_FILE, TOKENIZER_JSON, writeCheckpointDir, type CheckpointFiles, type TrainingInfo,
} from './checkpoint.ts';
import { t5StateDict, validateT5Config, type T5Config } from './models/t5-config.ts';

export type T5CheckpointManifest = {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  model: T5Config;
  tokenizer: { kind: TokenizerKind };
  training: TrainingInfo;
};

export interface SaveT5CheckpointOptions {
  config: T5Config;
  weights: T5WeightMap;
  tokenizer: Tokenizer;
  training: TrainingInfo;
  /** Trainer state and the like (optimizer.bin, state.json): plain file names. */
  extraFiles?: Record<string, string | Uint8Array>;
}

export async function saveT5Checkpoint(dir: string, options: SaveT5CheckpointOptions): Promise<T5CheckpointManifest> {
  const { weights, tokenizer, extraFiles = {} } = options;
  const manifest: T5CheckpointManifest = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, model: validateT5Config(options.config),
    tokenizer: { kind: tokenizer.kind }, training: options.training,
  };
  checkT5Consistency(`the checkpoint for ${dir}`, manifest.model, weights, tokenizer);
  for (const name of Object.keys(extraFiles)) checkExtraFileName(name);
  // The state dict's order, so that the file reads like HF's.
  const ordered = new Map(t5StateDict(manifest.model).map(({ name }) => [name, weights.get(name)!]));
  await writeCheckpointDir(dir, async (temp) => {
    await writeFile(path.join(temp, T5_WEIGHTS_FILE), encodeSafetensors(ordered, { format: 'pt' }));
    await writeFile(path.join(temp, TOKENIZER_JSON), JSON.stringify(tokenizer.toJSON()));
    for (const [name, data] of Object.entries(extraFiles)) await writeFile(path.join(temp, name), data);
    await writeFile(path.join(temp, FERRY_JSON), `${JSON.stringify(manifest, null, 2)}\n`);
  });
  return manifest;
}

export interface T5Checkpoint {
  /** The checkpoint dir actually read (best/ or last/ of a run dir). */
  dir: string;
  manifest: T5CheckpointManifest;
  weights: T5WeightMap;
  tokenizer: Tokenizer;
  extraFiles: CheckpointFiles;
}

/** Reads a T5 checkpoint dir, or the best/ (or last/) checkpoint of a T5 run dir, and checks that its files agree. */
export async function readT5Checkpoint(dir: string, options: { which?: 'best' | 'last' } = {}): Promise<T5Checkpoint> {
  const resolved = await resolveCheckpointDir(dir, options.which);
  const record = await readManifestRecord(resolved);
  let config: T5Config;
  try {
    config = validateT5Config(record.model);
  } catch (error) {
    throw invalidManifest(record.file, `model: ${(error as Error).message}`);
  }
  const weightsFile = path.join(resolved, T5_WEIGHTS_FILE);
  const bytes = await readFile(weightsFile).catch((error: NodeJS.ErrnoException) => {
    throw new FerryError('checkpoint_incomplete', `The T5 checkpoint ${resolved} has no readable ${T5_WEIGHTS_FILE} (${error.code ?? error.message}).`, {
      hint: 'The checkpoint is damaged; use the run\'s other checkpoint (best/ or last/), or train again.', cause: error,
    });
  });
  const weights = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), weightsFile);
  const tokenizer = asT5Tokenizer(await readTokenizerFile(path.join(resolved, TOKENIZER_JSON)));
  const manifest: T5CheckpointManifest = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, model: config, tokenizer: record.tokenizer, training: record.training };
  if (tokenizer.kind !== manifest.tokenizer.kind) {
    throw inconsistent(resolved, [`the tokenizer is ${tokenizer.kind} but ferry.json says ${manifest.tokenizer.kind}`]);
  }
  checkT5Consistency(resolved, config, weights, tokenizer);
  return { dir: resolved, manifest, weights, tokenizer, extraFiles: checkpointFiles(resolved) };
}

/** The weights are exactly the config's state dict, and the tokenizer's vocabulary its size. */
function checkT5Consistency(where: string, config: T5Config, weights: T5WeightMap, tokenizer: Tokenizer): void {
  const problems: string[] = [];
  if (tokenizer.vocabSize !== config.vocabSize) problems.push(`the tokenizer has ${tokenizer.vocabSize} tokens but the model config says ${config.vocabSize}`);
  const expected = t5StateDict(config);
  for (const { name, shape } of expected) {
    const weight = weights.get(name);
    if (!weight) problems.push(`the weights lack ${name}`);
    else if (weight.shape.join(',') !== shape.join(',')) problems.push(`${name} is [${weight.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
  }
  const names = new Set(expected.map(({ name }) => name));
  const extra = [...weights.keys()].filter((name) => !names.has(name));
  if (extra.length > 0) problems.push(`the weights have entries the config has no place for: ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ` and ${extra.length - 3} more` : ''}`);
  for (const [name, { data }] of weights) {
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) problems.push(`${name} holds ${data[bad]} at index ${bad}`);
  }
  if (problems.length > 0) throw inconsistent(where, problems.slice(0, 5));
}

function inconsistent(where: string, problems: string[]): FerryError {
  return new FerryError('inconsistent_checkpoint', `In ${where}, ${problems.join('; ')}.`, {
    hint: 'The files of a checkpoint must come from one training run; a non-finite weight means the run diverged (use an earlier checkpoint).',
  });
}
