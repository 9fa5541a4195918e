import { serve, type HttpBindings, type ServerType } from '@hono/node-server';
import { ServerResponse } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';
import { createApp } from './app.ts';
import { openModel, type ServedModel } from './model.ts';
import { openT5Model } from './t5-model.ts';
import { sendEventsToNode } from './node-sse.ts';
import type { Precision } from '../package/index.ts';
import { openRuntime } from './runtime/index.ts';
import { openPlainPackage, type ServedPlainModel } from './v2/plain-package.ts';
import { readManifest } from './package.ts';
import { isLanguageModel, type Manifest } from '../package/index.ts';
import type { Logger } from './runtime/types.ts';

export interface ServeOptions {
  /** ONNX package dirs; a dir without ferry.json is searched one level down for packages. */
  dirs: string[];
  port: number;
  host: string;
  apiKey?: string;
  /** With a key, leave the playground and its package files open (AppOptions.publicPlayground). */
  publicPlayground?: boolean;
  /** Origins browsers may call the API from, or `*` (AppOptions.corsOrigins). */
  corsOrigins?: readonly string[];
  /** Hostnames accepted in the Host header besides loopback's, when on loopback without a key. */
  allowHosts?: readonly string[];
  maxBatch: number;
  maxQueue: number;
  device: string;
  precision?: Precision;
  maxTokens?: number;
  maxPromptTokens?: number;
  timeoutMs?: number;
  /** Intra-op threads per model session (default: the runtime's choice). */
  threads?: number;
  /** Run each onnxruntime-node session in a worker thread, off the HTTP thread (default true). */
  worker?: boolean;
  /** Batches per model decoded in turn, overlapping the worker's runs with sampling (see OpenModelOptions). */
  lanes?: number;
  /** Tokens per part of a long prompt's prefill (SchedulerOptions.prefillChunk). */
  prefillChunk?: number;
  /** Longest a /v2 request to a plain model waits for others to share its run (default 2 ms). */
  batchDelayMs?: number;
  log: Logger;
  /** Details for `--verbose` (why a device was not used). */
  verbose?: Logger;
}

export interface RunningServer {
  readonly url: string;
  readonly models: Promise<readonly ServedModel[]>;
  /** The plain models, served over /v2 only. */
  readonly plainModels: Promise<readonly ServedPlainModel[]>;
  /**
   * Drains and stops: /readyz and new completions answer 503 at once (a load balancer stops
   * sending requests, a proxy retries them elsewhere), running generations finish for up to
   * `graceMs`, then the listener closes, the rest are cut and the models closed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts listening at once (so /healthz answers and /readyz says 503 while loading), then loads
 * and warms every model. A model that fails to load stops the server with its FerryError.
 */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const dirs = await findPackages(options.dirs);
  const manifests = await Promise.all(dirs.map(readManifest));
  let listening!: (ok: boolean) => void;
  // Models load once the port is ours: a port in use ends the start before any model loads or logs.
  const loading = new Promise<boolean>((resolve) => (listening = resolve)).then((ok) => (ok ? loadModels(dirs, manifests, options) : { languageModels: [], plainModels: [] }));
  const models = loading.then((loaded) => loaded.languageModels);
  const plainModels = loading.then((loaded) => loaded.plainModels);
  let draining = false;
  const app = createApp({
    draining: () => draining,
    models, inferenceModels: plainModels, apiKey: options.apiKey, publicPlayground: options.publicPlayground, corsOrigins: options.corsOrigins,
    allowedHosts: allowedHosts(options), maxTokens: options.maxTokens, maxPromptTokens: options.maxPromptTokens, timeoutMs: options.timeoutMs,
    sendEvents: (c, frames) => {
      const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
      return outgoing instanceof ServerResponse ? sendEventsToNode(frames, outgoing) : undefined;
    },
  });
  const { mountPlayground } = await import('./playground/index.ts');
  await mountPlayground(app, { packages: dirs.filter((_, i) => isLanguageModel(manifests[i]!)) });
  const server = await new Promise<ServerType>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port, hostname: options.host }, () => resolve(started));
    started.once('error', (error: NodeJS.ErrnoException) => {
      listening(false);
      reject(error.code === 'EADDRINUSE'
        ? new FerryError('port_in_use', `port ${options.port} on ${options.host} is already in use`, { hint: 'pick another with --port' })
        : error);
    });
  });
  let inFlight = 0;
  server.on('request', (_request, response: ServerResponse) => {
    inFlight++;
    response.once('close', () => inFlight--);
  });
  listening(true);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    models,
    plainModels,
    async close(graceMs = 5000) {
      draining = true;
      const loaded = await models.catch(() => []);
      // Every answer written to its end (a stream's [DONE] included), or the grace period is over.
      const deadline = Date.now() + graceMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as ServerType & { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
      for (const model of loaded) await model.close();
      for (const model of await plainModels.catch(() => [])) await model.close();
    },
  };
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/**
 * A server on loopback without a key trusts whoever can reach it, which a page on any site can
 * by DNS rebinding (its own hostname re-pointed at 127.0.0.1): such a server answers only
 * requests whose Host is loopback's, or one allowed with --allow-host. Elsewhere, or with a
 * key, any Host is fine.
 */
function allowedHosts(options: ServeOptions): string[] | undefined {
  const loopback = LOOPBACK_NAMES.includes(options.host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(options.host);
  if (!loopback || options.apiKey !== undefined) return undefined;
  return [...new Set([...LOOPBACK_NAMES, options.host, ...(options.allowHosts ?? [])].map((h) => h.toLowerCase()))];
}

async function loadModels(dirs: string[], manifests: Manifest[], options: ServeOptions): Promise<{ languageModels: ServedModel[]; plainModels: ServedPlainModel[] }> {
  const runtime = await openRuntime(options.device, options.log, { worker: options.worker ?? true, verbose: options.verbose });
  const languageModels: ServedModel[] = [];
  const plainModels: ServedPlainModel[] = [];
  for (const [i, dir] of dirs.entries()) {
    const manifest = manifests[i]!;
    const model = isLanguageModel(manifest)
      ? await openModel(dir, { runtime, maxBatch: options.maxBatch, maxQueue: options.maxQueue, precision: options.precision, threads: options.threads, lanes: options.lanes, prefillChunk: options.prefillChunk })
      : manifest.arch === 't5'
      ? await openT5Model(dir, manifest, { runtime, maxBatch: options.maxBatch, maxQueue: options.maxQueue, precision: options.precision, threads: options.threads })
      : await openPlainPackage(dir, manifest, {
        runtime, maxBatch: options.maxBatch, maxQueue: options.maxQueue, delayMs: options.batchDelayMs ?? 2, timeoutMs: options.timeoutMs ?? 300_000, precision: options.precision, threads: options.threads,
      });
    const id = 'id' in model ? model.id : model.name;
    const clash = [...languageModels.map((m) => ({ id: m.id, dir: m.dir })), ...plainModels.map((m) => ({ id: m.name, dir: m.dir }))].find((m) => m.id === id);
    if (clash) {
      throw new FerryError('duplicate_model', `${dir} and ${clash.dir} are both named "${id}"`, { hint: 'serve one of them, or rename one in its ferry.json' });
    }
    options.log(`loaded ${id} (${manifest.arch}) from ${dir} on ${model.provider}`);
    if ('id' in model) languageModels.push(model);
    else plainModels.push(model);
  }
  return { languageModels, plainModels };
}

const HOW_TO_MAKE_ONE = '`ferry train --corpus FILE --out runs/mine`, then `ferry export runs/mine --out models/mine`';

/** Package dirs from the arguments: a package itself, or a folder of packages (e.g. models/). */
export async function findPackages(dirs: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const dir of dirs) {
    const kind = await stat(dir).then((s) => (s.isDirectory() ? 'dir' : 'file'), () => 'missing');
    if (kind !== 'dir') {
      // Say where it looked: `ferry serve` alone reads ./models, relative to wherever it was started.
      throw new FerryError('not_a_package', `${path.resolve(dir)} ${kind === 'file' ? 'is a file, not a directory' : 'does not exist'}`, {
        hint: `pass ONNX package dirs written by \`ferry export\` (ferry serve DIR...) or a folder of them; to make one: ${HOW_TO_MAKE_ONE}`,
        status: 404,
      });
    }
    if (await exists(path.join(dir, 'ferry.json'))) {
      found.push(dir);
      continue;
    }
    // Hidden dirs are an export's unfinished temp dirs (`.name.tmp-*`), never packages.
    const children = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => path.join(dir, e.name)).sort();
    const packages = [];
    for (const child of children) if (await exists(path.join(child, 'ferry.json'))) packages.push(child);
    if (!packages.length) {
      throw new FerryError('no_models', `${dir} holds no ONNX package (no ferry.json in it or in its subfolders)`, {
        hint: `train and export a model first: ${HOW_TO_MAKE_ONE}`,
        status: 404,
      });
    }
    found.push(...packages);
  }
  return found;
}

function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}
