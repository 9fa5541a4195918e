import { FerryError } from '../../errors.ts';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { createDecoder, type Decoder } from '../../package/decoder.ts';
import type { ServedModel } from '../model.ts';
import { parseLanguageModelManifest, parseManifest, type T5Manifest } from '../../package/index.ts';
import type { Runtime } from '../runtime/types.ts';
import { createScheduler } from '../scheduler.ts';
import { serveT5Sessions, t5TokenizerOf } from '../t5-model.ts';
import { slideModeOf } from '../../package/sliding-window.ts';

/** An ONNX package dir's files already in memory: fetched over HTTP, or bundled into a worker. */
export interface PackageFiles {
  /** Where the files came from, for messages (a URL or a bundle path). */
  source: string;
  /** ferry.json, parsed. */
  manifest: unknown;
  /** tokenizer.json, parsed. */
  tokenizer: unknown;
  /** The ONNX model file of the chosen precision (a T5 package's merged decoder). */
  model: Uint8Array;
  /** A T5 package's encoder file of the same precision; other packages have none. */
  encoder?: Uint8Array;
}

export interface OpenFilesOptions {
  runtime: Runtime;
  maxBatch?: number;
  maxQueue?: number;
  /** A model file larger than this is refused before a session is made (edge memory limits). */
  maxModelBytes?: number;
  /** Why `maxModelBytes` holds, for the error message: e.g. `Cloudflare Workers' 128 MB`. */
  limitReason?: string;
}

/**
 * `openModel` (and `openT5Model` for a T5 package) for packages in memory: the same decoder,
 * scheduler and sampling as the Node server, so that a browser tab or an edge worker generates
 * exactly what the server does.
 */
export async function openModelFromFiles(files: PackageFiles, options: OpenFilesOptions): Promise<ServedModel> {
  const source = `${files.source}/ferry.json`;
  const parsed = parseManifest(files.manifest, source);
  if (parsed.arch === 't5') return openT5FromFiles(files, parsed, options);
  const manifest = parseLanguageModelManifest(files.manifest, source);
  checkModelSize(manifest.name, [files.model], options);
  let tokenizer;
  try {
    tokenizer = loadTokenizer(files.tokenizer);
  } catch (error) {
    throw new FerryError('bad_tokenizer', `${files.source}/tokenizer.json: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const session = await options.runtime.createSession(files.model, { cpuOnlyNodes: manifest.cpuOnlyNodes });
  const decoder = createDecoder(session, manifest.state, manifest.model.vocabSize, manifest.contextLength, { slide: slideModeOf(manifest.model) });
  await warmUp(decoder);
  return {
    id: manifest.name,
    dir: files.source,
    arch: manifest.arch,
    provider: session.provider,
    contextLength: manifest.contextLength,
    tokenizer,
    defaults: manifest.generation,
    scheduler: createScheduler(decoder, tokenizer, { maxBatch: options.maxBatch ?? 8, maxQueue: options.maxQueue ?? 16 }),
    created: Math.floor(Date.now() / 1000),
    close: () => session.release(),
  };
}

/** A T5 package in memory: its two sessions under the Node server's seq2seq decoder and lane (serveT5Sessions). */
async function openT5FromFiles(files: PackageFiles, manifest: T5Manifest, options: OpenFilesOptions): Promise<ServedModel> {
  if (!files.encoder) {
    throw new FerryError('missing_model_file', `${files.source} is a T5 package but its encoder file (ferry.json "encoderFiles") was not loaded`, { hint: 'pass both onnx/encoder_model.onnx and onnx/decoder_model_merged.onnx' });
  }
  checkModelSize(manifest.name, [files.encoder, files.model], options);
  const tokenizer = t5TokenizerOf(files.tokenizer, files.source, manifest);
  const sessionOptions = { cpuOnlyNodes: manifest.cpuOnlyNodes };
  const encoder = await options.runtime.createSession(files.encoder, sessionOptions);
  const decoder = await options.runtime.createSession(files.model, sessionOptions).catch(async (error: unknown) => {
    await encoder.release();
    throw error;
  });
  return serveT5Sessions(manifest, tokenizer, { encoder, decoder }, { id: manifest.name, dir: files.source, maxBatch: options.maxBatch ?? 8, maxQueue: options.maxQueue ?? 16 });
}

// The same warm-up as openModel: one batched prefill and one step, so the first request is fast.
async function warmUp(decoder: Decoder): Promise<void> {
  const [a, b] = await decoder.prefill([[0, 0], [0]]);
  await decoder.step([{ state: a!.state, token: 0 }, { state: b!.state, token: 0 }]);
}

/** Refuses model files over `maxModelBytes` in all (a T5's two graphs are held at once) before a session is made (edge memory limits). */
export function checkModelSize(name: string, models: readonly Uint8Array[], options: Pick<OpenFilesOptions, 'maxModelBytes' | 'limitReason'>): void {
  const bytes = models.reduce((sum, model) => sum + model.byteLength, 0);
  if (options.maxModelBytes !== undefined && bytes > options.maxModelBytes) {
    const what = models.length === 1 ? 'its model file is' : `its ${models.length} model files are`;
    throw new FerryError('model_too_large', `${name}: ${what} ${megabytes(bytes)}, over the ${megabytes(options.maxModelBytes)} this runtime allows${options.limitReason ? ` (${options.limitReason})` : ''}`, {
      hint: 'export a smaller model, or its int8 variant (`ferry export --quantize int8`), or serve it from Node',
      status: 507,
    });
  }
}

export function megabytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}
