/**
 * The edge entry: a Workers-style `{ fetch }` module serving the same Hono app as `ferry serve`,
 * with onnxruntime-web's WASM build on one thread. scripts/build-edge.ts bundles it with the
 * packages and ORT's .wasm into dist/edge/ (docs/DEPLOY.md). Never imported on Node.
 */
import * as ort from 'onnxruntime-web/wasm';
import assets from 'ferry:edge-assets';
import { createApp } from './app.ts';
import { openPlainModelFromFiles } from './browser/infer.ts';
import { openModelFromFiles } from './browser/model.ts';
import { isLanguageModel, parseManifest } from '../package/index.ts';
import type { InferenceModel } from './v2/model.ts';
import type { ServedModel } from './model.ts';
import { ortWebBackend, type OrtWeb } from './browser/runtime.ts';
import { resolveRuntime } from './runtime/registry.ts';

interface EdgeEnv {
  /** When set (a Workers secret), every route but /healthz and /readyz needs this bearer key. */
  FERRY_API_KEY?: string;
  FERRY_MAX_TOKENS?: string;
}

// Workers refuse to compile WASM from bytes and give ORT no script URL to fetch it from. ORT 1.30
// takes only bytes in env.wasm.wasmBinary, so it gets a placeholder, and instantiating that
// placeholder instantiates the module the platform compiled at upload. Re-check on ORT upgrades.
// ORT copies the bytes on the way, so the placeholder is recognised by its content.
const placeholder = new TextEncoder().encode('ferry: precompiled ORT wasm');
const isPlaceholder = (source: unknown): boolean => {
  const view = source instanceof ArrayBuffer ? new Uint8Array(source) : ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : undefined;
  return view !== undefined && view.byteLength === placeholder.byteLength && view.every((b, i) => b === placeholder[i]);
};
const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
(WebAssembly as { instantiate: unknown }).instantiate = async (source: unknown, imports?: WebAssembly.Imports) => {
  if (isPlaceholder(source)) return { instance: await WebAssembly.instantiate(assets.wasm, imports), module: assets.wasm };
  return instantiate(source, imports);
};
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmBinary = placeholder;

const PROBES = new Set(['/healthz', '/readyz']);
let app: ReturnType<typeof createApp> | undefined;
let models: Promise<readonly ServedModel[]> | undefined;
let plainModels: Promise<readonly InferenceModel[]> | undefined;

async function loadModels(): Promise<{ languageModels: ServedModel[]; plainModels: InferenceModel[] }> {
  const runtime = resolveRuntime([ortWebBackend('wasm', 0, async () => ort as unknown as OrtWeb)], 'wasm', (line) => console.log(`ferry: ${line}`));
  const loaded: ServedModel[] = [];
  const plain: InferenceModel[] = [];
  for (const pkg of assets.packages) {
    const manifest = parseManifest(pkg.manifest, `${pkg.source}/ferry.json`);
    if (!isLanguageModel(manifest) && manifest.arch !== 't5') {
      plain.push(await openPlainModelFromFiles({ source: pkg.source, manifest, model: new Uint8Array(pkg.model) }, { runtime, maxBatch: 8, maxQueue: 16, delayMs: 1, maxModelBytes: assets.maxModelBytes, limitReason: assets.limitReason }));
      continue;
    }
    // A T5 package brings its encoder too: openModelFromFiles serves it as the Node server does (openT5Model).
    loaded.push(await openModelFromFiles(
      { source: pkg.source, manifest: pkg.manifest, tokenizer: pkg.tokenizer, model: new Uint8Array(pkg.model), ...(pkg.encoder ? { encoder: new Uint8Array(pkg.encoder) } : {}) },
      { runtime, maxBatch: 4, maxQueue: 16, maxModelBytes: assets.maxModelBytes, limitReason: assets.limitReason },
    ));
  }
  return { languageModels: loaded, plainModels: plain };
}

/** Every served model's scheduler has nothing left to run. */
async function idle(): Promise<void> {
  const loaded = await models?.catch(() => []);
  await Promise.all((loaded ?? []).map((model) => model.scheduler.idle()));
}

/** The body as it is, calling `release` once it has ended, failed or been cancelled. */
function releasedAtEnd(body: ReadableStream<Uint8Array>, release: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    async cancel(reason) {
      release();
      await reader.cancel(reason);
    },
  });
}

/** The part of Workers' ExecutionContext the worker uses. */
interface EdgeContext {
  waitUntil(promise: Promise<unknown>): void;
}

export default {
  async fetch(request: Request, env: EdgeEnv = {}, context?: EdgeContext): Promise<Response> {
    if (!app) {
      const loading = loadModels();
      models = loading.then((l) => l.languageModels);
      plainModels = loading.then((l) => l.plainModels);
      models.catch((error: unknown) => console.error(`ferry: the models failed to load: ${error instanceof Error ? error.message : String(error)}`));
      app = createApp({ models, inferenceModels: plainModels, apiKey: env.FERRY_API_KEY || undefined, maxTokens: env.FERRY_MAX_TOKENS ? Number(env.FERRY_MAX_TOKENS) : undefined });
    }
    // A cold isolate answers its first request once the models are in (about 0.2 s), not 503.
    if (!PROBES.has(new URL(request.url).pathname)) await Promise.all([models, plainModels]).catch(() => {});
    // A scheduler's loop runs in the request that started it, while other requests wait for their
    // rows in the same batch with nothing of their own pending, which workerd takes for a hung
    // worker and cancels ("the Worker's code had hung"); and it cancels what a request left
    // running once it has answered. So each request holds a timer until its answer is complete,
    // and keeps the isolate's loops alive until they are idle.
    const ticking = setInterval(() => {}, 50);
    const release = () => clearInterval(ticking);
    let response: Response;
    try {
      response = await app.fetch(request);
    } catch (error) {
      release();
      throw error;
    } finally {
      context?.waitUntil(idle());
    }
    if (!response.body) {
      release();
      return response;
    }
    return new Response(releasedAtEnd(response.body, release), response);
  },
};
