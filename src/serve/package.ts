import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';
import { modelFileOf, parseLanguageModelManifest, parseManifest, type LanguageModelManifest, type Manifest, type Precision } from '../package/index.ts';

/** An ONNX package dir (docs/FORMATS.md), checked and ready for a runtime. */
export interface ModelPackage {
  readonly dir: string;
  readonly id: string;
  readonly manifest: LanguageModelManifest;
  readonly tokenizer: Tokenizer;
  readonly modelPath: string;
  readonly precision: Precision;
}

/** The ferry.json of a package dir of any kind, checked; a training checkpoint is named as one. */
export async function readManifest(dir: string): Promise<Manifest> {
  return parseManifest(await readRawManifest(dir), path.join(dir, 'ferry.json'));
}

async function readRawManifest(dir: string): Promise<unknown> {
  const raw = await readJson(path.join(dir, 'ferry.json'), dir, 'ferry.json');
  if ((raw as { format?: unknown } | null)?.format === TRAINING_CHECKPOINT_FORMAT) throw trainingCheckpoint(dir);
  return raw;
}

export async function loadPackage(dir: string, options: { precision?: Precision } = {}): Promise<ModelPackage> {
  const manifestPath = path.join(dir, 'ferry.json');
  const manifest = parseLanguageModelManifest(await readRawManifest(dir), manifestPath);

  const precision = options.precision ?? 'fp32';
  const modelPath = await existingModelFile(dir, modelFileOf(manifest, precision, dir));

  let tokenizer: Tokenizer;
  try {
    tokenizer = loadTokenizer(await readJson(path.join(dir, 'tokenizer.json'), dir, 'tokenizer.json'));
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError('bad_tokenizer', `${dir}/tokenizer.json: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (tokenizer.vocabSize > manifest.model.vocabSize) {
    throw new FerryError('bad_tokenizer', `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${manifest.model.vocabSize}`, {
      hint: 'the tokenizer.json belongs to another model; re-export the package',
    });
  }
  return { dir, id: manifest.name, manifest, tokenizer, modelPath, precision };
}

/** A model file a package's ferry.json names, resolved against the dir; missing_model_file when it is not there. */
export async function existingModelFile(dir: string, file: string): Promise<string> {
  const resolved = path.resolve(dir, file);
  await stat(resolved).catch((cause: unknown) => {
    throw new FerryError('missing_model_file', `${dir}: ferry.json names ${file}, which does not exist`, { hint: 're-export the package', cause });
  });
  return resolved;
}

/** The `format` of the checkpoints `ferry train` writes (docs/FORMATS.md), which serving cannot run. */
const TRAINING_CHECKPOINT_FORMAT = 'ferry-checkpoint';

function trainingCheckpoint(dir: string): FerryError {
  // best/ and last/ of a run: exporting the run dir picks the right one.
  const inRun = ['best', 'last'].includes(path.basename(path.resolve(dir)));
  const source = inRun ? path.dirname(dir) : dir;
  const name = path.basename(path.resolve(inRun ? path.dirname(path.resolve(dir)) : dir));
  return new FerryError('training_checkpoint', `${dir} is a training checkpoint (written by \`ferry train\`), not an ONNX package`, {
    hint: `export it first: ferry export ${source} --out models/${name}`,
    status: 404,
  });
}

export async function readJson(file: string, dir: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new FerryError('not_a_package', `${dir} is not an ONNX package dir: ${what} is missing`, {
      hint: 'pass a directory written by `ferry export` (it holds ferry.json, tokenizer.json and onnx/model.onnx)',
      status: 404,
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new FerryError('bad_manifest', `${file} is not valid JSON: ${(cause as Error).message}`, { hint: 're-export the package', cause });
  }
}
