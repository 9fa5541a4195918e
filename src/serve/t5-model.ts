/**
 * A T5 package (arch "t5", docs/FORMATS.md) served on /v1/completions: its encoder and merged
 * decoder sessions under the seq2seq decoder, run by a lane of its own (seq2seq-scheduler.ts).
 * The prompt is the source text and the completion its target, as TGI serves T5.
 */
import path from 'node:path';
import { stat } from 'node:fs/promises';
import { FerryError } from '../errors.ts';
import { modelFileOf, type Precision, type T5Manifest } from '../package/index.ts';
import { createSeq2SeqDecoder } from '../package/seq2seq.ts';
import { asT5Tokenizer, loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';
import type { ServedModel } from './model.ts';
import { readJson } from './package.ts';
import type { Runtime } from './runtime/types.ts';
import { createSeq2SeqScheduler } from './seq2seq-scheduler.ts';

/** T5's fixed special ids (src/train/models/t5-config.ts T5_SPECIAL_IDS; serving does not import src/train). */
const T5_IDS = { pad: 0, eos: 1 } as const;

export interface OpenT5ModelOptions {
  runtime: Runtime;
  maxBatch: number;
  maxQueue: number;
  precision?: Precision;
  id?: string;
  threads?: number;
}

export async function openT5Model(dir: string, manifest: T5Manifest, options: OpenT5ModelOptions): Promise<ServedModel> {
  const precision = options.precision ?? 'fp32';
  const source = path.join(dir, 'ferry.json');
  const fileOf = async (file: string) => {
    const resolved = path.resolve(dir, file);
    await stat(resolved).catch((cause: unknown) => {
      throw new FerryError('missing_model_file', `${dir}: ferry.json names ${file}, which does not exist`, { hint: 're-export the package', cause });
    });
    return resolved;
  };
  const encoderPath = await fileOf(modelFileOf({ ...manifest, files: manifest.encoderFiles }, precision, source));
  const decoderPath = await fileOf(modelFileOf(manifest, precision, source));
  const tokenizer = await loadT5Tokenizer(dir, manifest);
  const sessionOptions = { cpuOnlyNodes: manifest.cpuOnlyNodes, intraOpThreads: options.threads };
  const encoder = await options.runtime.createSession(encoderPath, sessionOptions);
  const decoderSession = await options.runtime.createSession(decoderPath, sessionOptions);
  const { model } = manifest;
  const decoder = createSeq2SeqDecoder(encoder, decoderSession, {
    vocabSize: model.vocabSize, decoderLayers: model.nDecoderLayers, heads: model.nHeads, headDim: model.dKv,
    startId: T5_IDS.pad, eosId: T5_IDS.eos, padId: T5_IDS.pad,
  });
  // Warm-up: one encoder run of a padded batch and the decoder's first step and one with caches.
  const first = await decoder.step(await decoder.encode([[T5_IDS.eos], [T5_IDS.eos, T5_IDS.eos]]), [T5_IDS.pad, T5_IDS.pad]);
  await decoder.step(first.batch, [T5_IDS.pad, T5_IDS.pad]);
  return {
    id: options.id ?? manifest.name,
    dir,
    arch: manifest.arch,
    provider: encoder.provider,
    contextLength: model.maxSourceLength,
    tokenizer,
    defaults: manifest.generation,
    scheduler: createSeq2SeqScheduler(decoder, tokenizer, { maxBatch: options.maxBatch, maxQueue: options.maxQueue, maxSourceLength: model.maxSourceLength }),
    created: Math.floor(Date.now() / 1000),
    close: async () => {
      await encoder.release();
      await decoderSession.release();
    },
  };
}

async function loadT5Tokenizer(dir: string, manifest: T5Manifest): Promise<Tokenizer> {
  let tokenizer: Tokenizer;
  try {
    tokenizer = asT5Tokenizer(loadTokenizer(await readJson(path.join(dir, 'tokenizer.json'), dir, 'tokenizer.json')));
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError('bad_tokenizer', `${dir}/tokenizer.json: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (tokenizer.vocabSize > manifest.model.vocabSize) {
    throw new FerryError('bad_tokenizer', `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${manifest.model.vocabSize}`, {
      hint: 'the tokenizer.json belongs to another model; re-export the package',
    });
  }
  return tokenizer;
}
