/**
 * A T5 package (arch "t5", docs/FORMATS.md) served on /v1/completions: its encoder and merged
 * decoder sessions under the seq2seq decoder, run by a lane of its own (seq2seq-scheduler.ts).
 * The prompt is the source text and the completion its target, as TGI serves T5. `openT5Model`
 * reads a package dir on Node; `serveT5Sessions` is the part every runtime shares (the browser
 * client and the edge worker open their sessions from bytes: src/serve/browser/model.ts).
 */
import path from 'node:path';
import { FerryError } from '../errors.ts';
import { modelFileOf, type Precision, type T5Manifest } from '../package/index.ts';
import { createSeq2SeqDecoder } from '../package/seq2seq.ts';
import { asT5Tokenizer, loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';
import type { ServedModel } from './model.ts';
import { existingModelFile, readJson } from './package.ts';
import type { Runtime } from './runtime/types.ts';
import type { Session } from '../package/session.ts';
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
  const encoderPath = await existingModelFile(dir, modelFileOf({ ...manifest, files: manifest.encoderFiles }, precision, source));
  const decoderPath = await existingModelFile(dir, modelFileOf(manifest, precision, source));
  const tokenizer = t5TokenizerOf(await readJson(path.join(dir, 'tokenizer.json'), dir, 'tokenizer.json'), dir, manifest);
  const sessionOptions = { cpuOnlyNodes: manifest.cpuOnlyNodes, intraOpThreads: options.threads };
  const encoder = await options.runtime.createSession(encoderPath, sessionOptions);
  const decoder = await options.runtime.createSession(decoderPath, sessionOptions).catch(async (error: unknown) => {
    await encoder.release();
    throw error;
  });
  return serveT5Sessions(manifest, tokenizer, { encoder, decoder }, { id: options.id ?? manifest.name, dir, maxBatch: options.maxBatch, maxQueue: options.maxQueue });
}

/**
 * A T5 model over its two sessions, wherever they run (onnxruntime-node here, onnxruntime-web in
 * a page or the edge worker: src/serve/browser/model.ts): the seq2seq decoder, warmed up, under
 * the seq2seq lane. The sessions are released when the model is closed, or when the warm-up fails.
 */
export async function serveT5Sessions(
  manifest: T5Manifest, tokenizer: Tokenizer, sessions: { encoder: Session; decoder: Session },
  options: { id: string; dir: string; maxBatch: number; maxQueue: number },
): Promise<ServedModel> {
  const { encoder, decoder: decoderSession } = sessions;
  const close = async () => {
    await encoder.release();
    await decoderSession.release();
  };
  const { model } = manifest;
  let decoder;
  try {
    decoder = createSeq2SeqDecoder(encoder, decoderSession, {
      vocabSize: model.vocabSize, decoderLayers: model.nDecoderLayers, heads: model.nHeads, headDim: model.dKv,
      startId: T5_IDS.pad, eosId: T5_IDS.eos, padId: T5_IDS.pad,
    });
    // Warm-up: one encoder run of a padded batch and the decoder's first step and one with caches.
    const first = await decoder.step(await decoder.encode([[T5_IDS.eos], [T5_IDS.eos, T5_IDS.eos]]), [T5_IDS.pad, T5_IDS.pad]);
    await decoder.step(first.batch, [T5_IDS.pad, T5_IDS.pad]);
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  return {
    id: options.id,
    dir: options.dir,
    arch: manifest.arch,
    provider: encoder.provider,
    contextLength: model.maxSourceLength,
    tokenizer,
    defaults: manifest.generation,
    scheduler: createSeq2SeqScheduler(decoder, tokenizer, { maxBatch: options.maxBatch, maxQueue: options.maxQueue, maxSourceLength: model.maxSourceLength }),
    created: Math.floor(Date.now() / 1000),
    close,
  };
}

/** A T5 package's tokenizer.json (already parsed) as its tokenizer, checked against the model; `source` names the package in messages. */
export function t5TokenizerOf(raw: unknown, source: string, manifest: T5Manifest): Tokenizer {
  let tokenizer: Tokenizer;
  try {
    tokenizer = asT5Tokenizer(loadTokenizer(raw));
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError('bad_tokenizer', `${source}/tokenizer.json: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (tokenizer.vocabSize > manifest.model.vocabSize) {
    throw new FerryError('bad_tokenizer', `${source}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${manifest.model.vocabSize}`, {
      hint: 'the tokenizer.json belongs to another model; re-export the package',
    });
  }
  return tokenizer;
}
