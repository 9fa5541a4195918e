import { FerryError } from '../../errors.ts';
import { buildRequests } from '../completions.ts';
import type { ServedModel } from '../model.ts';
import { ApiError } from '../openai-error.ts';
import type { Precision } from '../../package/index.ts';
import { completionRequestSchema, fieldPath, mostSpecificIssue } from '../schema.ts';
import { isLanguageModel, modelFileOf, parseLanguageModelManifest, parseManifest } from '../../package/index.ts';
import { openPlainModelFromFiles } from './infer.ts';
import { openModelFromFiles, type PackageFiles } from './model.ts';
import { ortWebBackend, type OrtWeb } from './runtime.ts';
import { resolveRuntime } from '../runtime/registry.ts';
import { hasWebGpuAdapter } from '../runtime/webgpu.ts';
import { concatBytes } from '../../tokenizer/utf8.ts';

// The scheduler yields to I/O between decode steps with setImmediate where it exists, else
// setTimeout(0), which browsers clamp to 4 ms once nested: that capped a page at ~70 tokens/s.
// A MessageChannel round trip yields without the clamp.
if (typeof (globalThis as { setImmediate?: unknown }).setImmediate !== 'function' && typeof MessageChannel === 'function') {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  (globalThis as { setImmediate?: unknown }).setImmediate = (callback: () => void) => {
    queue.push(callback);
    channel.port2.postMessage(null);
  };
}

export type BrowserDevice = 'auto' | 'webgpu' | 'wasm';

export interface Progress {
  loaded: number;
  /** null when the server sent no Content-Length. */
  total: number | null;
}

export interface LoadOptions {
  device?: BrowserDevice;
  precision?: Precision;
  /** WASM threads; only a crossOriginIsolated page gets more than 1 (default: up to 4). */
  threads?: number;
  onProgress?: (progress: Progress) => void;
  log?: (message: string) => void;
  /** Sent with every request for the package's files (e.g. `authorization` for a server with a key). */
  headers?: Record<string, string>;
}

export interface BrowserModel {
  readonly model: ServedModel;
  /** Where it runs after any fallback. */
  readonly device: 'webgpu' | 'wasm';
  readonly threads: number;
  /** Set when the page did not get what it asked for, e.g. no WebGPU adapter -> WASM. */
  readonly notice: string | null;
}

/**
 * Loads an ONNX package dir served over HTTP (`baseUrl` + `/ferry.json` etc.) into
 * onnxruntime-web in this page: the native WebGPU build when an adapter exists, else WASM.
 * A language model, or a T5 encoder-decoder (both of its graphs; the prompt is then the source
 * text and the generated text its target, as on the server).
 * The page must map the bare `onnxruntime-web` and `onnxruntime-web/webgpu` specifiers to
 * ORT's own files (the playground's import map does), so ORT finds its .wasm and workers.
 */
export async function loadBrowserModel(baseUrl: string, options: LoadOptions = {}): Promise<BrowserModel> {
  const base = baseUrl.replace(/\/+$/, '');
  const log = options.log ?? (() => {});
  const [rawManifest, tokenizer] = await Promise.all([fetchJson(`${base}/ferry.json`, options.headers), fetchJson(`${base}/tokenizer.json`, options.headers)]);
  const parsed = parseManifest(rawManifest, `${base}/ferry.json`);
  const manifest = parsed.arch === 't5' ? parsed : parseLanguageModelManifest(rawManifest, `${base}/ferry.json`);
  const precision = options.precision ?? 'fp32';
  const file = modelFileOf(manifest, precision, base);

  const { runtime, threads, isolated } = pageRuntime(options, log);

  // A T5 package's encoder comes first, then its merged decoder (`files`), in one progress count.
  const urls = manifest.arch === 't5' ? [`${base}/${modelFileOf({ ...manifest, files: manifest.encoderFiles }, precision, base)}`] : [];
  const bytes = await fetchAllBytes([...urls, `${base}/${file}`], options.headers, options.onProgress);
  const files: PackageFiles = { source: base, manifest: rawManifest, tokenizer, model: bytes.at(-1)!, ...(bytes.length > 1 ? { encoder: bytes[0]! } : {}) };
  const model = await openModelFromFiles(files, { runtime, maxBatch: 4, maxQueue: 8 });
  const device = runtime.device as 'webgpu' | 'wasm';
  log(`onnxruntime-web ${device}${device === 'wasm' ? `, ${threads} thread${threads > 1 ? 's' : ''}` : ''}`);
  let notice = runtime.failures.length ? `${runtime.failures.map((f) => f.reason).join('; ')}: running on ${device.toUpperCase()} instead` : null;
  if (!isolated && (options.threads ?? 1) > 1) notice ??= 'this page is not cross-origin isolated (COOP/COEP headers), so WASM runs on one thread';
  return { model, device, threads, notice };
}

/** onnxruntime-web for this page: WebGPU when an adapter exists (unless told otherwise), else WASM. */
function pageRuntime(options: LoadOptions, log: (message: string) => void) {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const cores = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  const threads = isolated ? Math.max(1, options.threads ?? Math.min(4, cores)) : 1;
  // Bare specifiers on purpose: the page's import map points them at ORT's own files.
  const configured = async (ort: OrtWeb) => {
    ort.env.wasm.numThreads = threads;
    return ort;
  };
  const runtime = resolveRuntime([
    ortWebBackend('webgpu', 1, async () => configured((await import('onnxruntime-web/webgpu')) as OrtWeb), async () => {
      if (!(await hasWebGpuAdapter())) throw new Error('WebGPU is not available in this browser (no adapter)');
    }),
    ortWebBackend('wasm', 0, async () => configured((await import('onnxruntime-web')) as OrtWeb)),
  ], options.device ?? 'auto', log);
  return { runtime, threads, isolated };
}

/**
 * A plain package (arch "model") served over HTTP, loaded into this page for `infer()`
 * (./infer.ts): the same runtime choice as `loadBrowserModel`; no tokenizer.
 */
export async function loadBrowserPlainModel(baseUrl: string, options: LoadOptions = {}) {
  const base = baseUrl.replace(/\/+$/, '');
  const log = options.log ?? (() => {});
  const manifest = parseManifest(await fetchJson(`${base}/ferry.json`, options.headers), `${base}/ferry.json`);
  if (isLanguageModel(manifest) || manifest.arch === 't5') {
    const kind = manifest.arch === 't5' ? 'T5 encoder-decoder' : `${manifest.arch} language model`;
    throw new FerryError('not_plain', `${base} is a ${kind}`, { hint: 'load it with loadBrowserModel and generate text with generateInBrowser' });
  }
  const { runtime } = pageRuntime(options, log);
  const [model] = await fetchAllBytes([`${base}/${modelFileOf(manifest, options.precision ?? 'fp32', base)}`], options.headers, options.onProgress);
  return openPlainModelFromFiles({ source: base, manifest, model }, { runtime });
}

export { infer } from './infer.ts';

export interface BrowserGeneration {
  text: string;
  /** Tokens generated (all choices). */
  tokens: number;
  /** From submitting to the last token. */
  seconds: number;
}

/**
 * One completion in this page through the server's own request validation, scheduler and
 * sampling: `fields` are /v1/completions body fields (prompt, max_tokens, temperature, ...).
 */
export async function generateInBrowser(model: ServedModel, fields: Record<string, unknown>, onText?: (text: string, progress: { tokens: number; seconds: number }) => void, signal?: AbortSignal): Promise<BrowserGeneration> {
  const parsed = completionRequestSchema.safeParse({ ...fields, model: model.id });
  if (!parsed.success) {
    const issue = mostSpecificIssue(parsed.error.issues[0]!);
    throw new ApiError(400, 'invalid_value', `${fieldPath(issue.path) ?? 'body'}: ${issue.message}`, { param: fieldPath(issue.path) ?? undefined });
  }
  const started = performance.now();
  const requests = buildRequests(parsed.data, model, { maxTokens: 1 << 20, timeoutMs: 3_600_000 }, signal ?? new AbortController().signal);
  let text = '';
  let tokens = 0;
  for (const request of requests) {
    for await (const event of model.scheduler.submit(request)) {
      if (event.type !== 'text') continue;
      text += event.text;
      tokens += event.tokens;
      onText?.(event.text, { tokens, seconds: (performance.now() - started) / 1000 });
    }
  }
  return { text, tokens, seconds: (performance.now() - started) / 1000 };
}

async function fetchJson(url: string, headers?: Record<string, string>): Promise<unknown> {
  const response = await fetchOk(url, headers);
  try {
    return await response.json();
  } catch (cause) {
    throw new FerryError('bad_manifest', `${url} is not valid JSON`, { hint: 're-export the package', cause });
  }
}

/** The bodies as bytes, in order, reporting progress over all of them as chunks arrive. */
async function fetchAllBytes(urls: readonly string[], headers?: Record<string, string>, onProgress?: (progress: Progress) => void): Promise<Uint8Array[]> {
  // All responses first, so that the total is known from the start.
  const responses = await Promise.all(urls.map((url) => fetchOk(url, headers)));
  const lengths = responses.map((response) => Number(response.headers.get('content-length')));
  const total = lengths.every((length) => Number.isFinite(length) && length > 0) ? lengths.reduce((a, b) => a + b, 0) : null;
  let loaded = 0;
  onProgress?.({ loaded, total });
  const bodies: Uint8Array[] = [];
  for (const response of responses) {
    if (!response.body) {
      const body = new Uint8Array(await response.arrayBuffer());
      loaded += body.byteLength;
      onProgress?.({ loaded, total });
      bodies.push(body);
      continue;
    }
    const chunks: Uint8Array[] = [];
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      onProgress?.({ loaded, total });
    }
    bodies.push(concatBytes(chunks));
  }
  return bodies;
}

async function fetchOk(url: string, headers?: Record<string, string>): Promise<Response> {
  const response = await fetch(url, { headers });
  if (response.status === 401) {
    throw new FerryError('invalid_api_key', `GET ${url} answered 401`, { hint: 'the server has an API key: send it (the playground\'s "API key" field)', status: 401 });
  }
  if (!response.ok) {
    throw new FerryError('not_a_package', `GET ${url} answered ${response.status}`, {
      hint: 'the URL must be an ONNX package dir served over HTTP (it holds ferry.json, tokenizer.json and onnx/model.onnx)',
      status: 404,
    });
  }
  return response;
}
