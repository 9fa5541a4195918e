import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Hono } from 'hono';
import { loadPackage, type ModelPackage } from '../package.ts';
import { bundleBrowserClient, ortDistDir } from './bundle.ts';
import { playgroundHtml } from './page.ts';

export interface PlaygroundOptions {
  /** ONNX package dirs the page may run in the browser (the server's own models). */
  packages: readonly string[];
  /** A prebuilt bundle (scripts/build-browser.ts); by default it is built in memory on first use. */
  bundleFile?: string;
}

/** Cross-origin isolation, which browsers require before they give WASM threads (SharedArrayBuffer). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

// Package files a page may fetch; anything else in a package dir stays private.
const PACKAGE_FILES = new Set(['ferry.json', 'tokenizer.json', 'metrics.jsonl', 'config.json', 'generation_config.json', 'tokenizer_config.json']);
const ORT_FILE = /^ort[\w.-]*\.(mjs|wasm)$/;

const TYPES: Record<string, string> = {
  '.json': 'application/json', '.jsonl': 'application/x-ndjson', '.onnx': 'application/octet-stream',
  '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm',
};

/**
 * Adds the playground to a Hono app: the page at `/`, its script at `/ferry/playground.js`,
 * onnxruntime-web's files under `/ferry/ort/`, the package list at `/ferry/models` and each
 * package's files under `/ferry/models/:id/`, all with COOP/COEP headers. The HTTP API routes
 * of `createApp` are untouched; the page's "on the server" button calls them.
 */
export async function mountPlayground(app: Hono, options: PlaygroundOptions): Promise<void> {
  const packages = new Map<string, ModelPackage>();
  const hasMetrics = new Map<string, boolean>();
  for (const dir of options.packages) {
    const pkg = await loadPackage(dir);
    packages.set(pkg.id, pkg);
    hasMetrics.set(pkg.id, await stat(path.join(dir, 'metrics.jsonl')).then(() => true, () => false));
  }
  const ortDir = ortDistDir();
  let bundle: Promise<string> | undefined;

  const isolated = (body: BodyInit, type: string, extra: Record<string, string> = {}) =>
    new Response(body, { headers: { 'content-type': type, ...ISOLATION_HEADERS, ...extra } });

  app.get('/', () => isolated(playgroundHtml(), 'text/html; charset=utf-8'));

  app.get('/ferry/playground.js', async () => {
    bundle ??= options.bundleFile ? readFile(options.bundleFile, 'utf8') : bundleBrowserClient();
    return isolated(await bundle, 'text/javascript; charset=utf-8', { 'cache-control': 'no-cache' });
  });

  app.get('/ferry/ort/:file', async (c) => {
    const file = c.req.param('file');
    if (!ORT_FILE.test(file)) return c.notFound();
    return sendFile(path.join(ortDir, file), 'public, max-age=86400');
  });

  app.get('/ferry/models', () => isolated(JSON.stringify({ models: [...packages.values()].map((p) => ({ ...describe(p), hasMetrics: hasMetrics.get(p.id) })) }), 'application/json'));

  app.get('/ferry/models/:id/*', async (c) => {
    const pkg = packages.get(c.req.param('id'));
    // Decoded once from the raw path (c.req.path is decoded already; a second pass would turn %2541 into A).
    const rest = new URL(c.req.url).pathname.split('/').slice(4).map(decodeURIComponent).join('/');
    const modelFiles = Object.values(pkg?.manifest.files ?? {}).filter((f): f is string => typeof f === 'string');
    if (!pkg || !(PACKAGE_FILES.has(rest) || modelFiles.includes(rest))) return c.notFound();
    return sendFile(path.join(pkg.dir, rest), 'no-cache');
  });

  async function sendFile(file: string, cache: string): Promise<Response> {
    const size = await stat(file).then((s) => (s.isFile() ? s.size : -1), () => -1);
    if (size < 0) return new Response('not found', { status: 404, headers: ISOLATION_HEADERS });
    return isolated(await readFile(file), TYPES[path.extname(file)] ?? 'application/octet-stream', {
      'content-length': String(size), 'cache-control': cache,
    });
  }
}

function describe(pkg: ModelPackage) {
  const m = pkg.manifest as ModelPackage['manifest'] & { parity?: unknown; training?: unknown; target?: string; attention?: string | null };
  return {
    id: pkg.id, arch: m.arch, contextLength: m.contextLength, state: m.state, target: m.target ?? null, attention: m.attention ?? null,
    files: m.files, cpuOnlyNodes: m.cpuOnlyNodes, generation: m.generation, parity: m.parity ?? null, training: m.training ?? null,
    url: `/ferry/models/${encodeURIComponent(pkg.id)}`,
  };
}
