// The browser client with a T5 package in real headless Chromium: loadBrowserModel fetches both
// graphs, generateInBrowser takes the source as the prompt and gives its target, the same text
// and token count as the seq2seq decoder on onnxruntime-node and `ferry generate`, on WASM, on
// WebGPU (SwiftShader; caches stay in GPU buffers) and on WASM when the browser has no WebGPU.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { Browser, Page } from 'playwright-core';
import { nodeBuiltinsAsEmpty, ortDistDir } from '../../src/serve/playground/bundle.ts';
import { ISOLATION_HEADERS } from '../../src/serve/playground/index.ts';
import { buildT5Package, type T5TestPackage } from '../export/t5-package.ts';
import { chromiumMissing, launchChromium } from './harness.ts';

const skip = chromiumMissing();
if (skip) console.log(`# skip: ${skip}`);

const SOURCES = ['the cat', 'a dog sat on the mat', 'cat', 'der Hund'];
const MAX_TOKENS = 12;

/** What the page exposes: the client's own exports, as a user's bundle imports them. */
interface PageApi {
  load(url: string, options: Record<string, unknown>): Promise<{ device: string; threads: number; notice: string | null; provider: string; arch: string; progress: { loaded: number; total: number | null }[] }>;
  generate(fields: Record<string, unknown>[]): Promise<{ text: string; tokens: number }[]>;
  loadPlain(url: string): Promise<string>;
  gpuResidentFeeds(): number;
}

// The client bundled as docs/DEPLOY.md tells a user to: onnxruntime-web external (the import map
// below), Node built-ins empty. The page keeps one model and generates from it.
const ENTRY = `
import { loadBrowserModel, loadBrowserPlainModel, generateInBrowser } from ${JSON.stringify(path.resolve('src/serve/browser/client.ts'))};
import { gpuResidentFeeds } from ${JSON.stringify(path.resolve('src/serve/browser/runtime.ts'))};
let loaded;
globalThis.ferryT5 = {
  async load(url, options) {
    await loaded?.model.close();
    const progress = [];
    loaded = await loadBrowserModel(url, { ...options, onProgress: (p) => progress.push(p) });
    return { device: loaded.device, threads: loaded.threads, notice: loaded.notice, provider: loaded.model.provider, arch: loaded.model.arch, progress };
  },
  generate: (list) => Promise.all(list.map((fields) => generateInBrowser(loaded.model, fields))),
  gpuResidentFeeds,
  loadPlain: (url) => loadBrowserPlainModel(url).then(() => 'loaded', (error) => \`\${error.code}: \${error.message} (\${error.hint})\`),
};
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>ferry t5</title>
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.wasm.bundle.min.mjs", "onnxruntime-web/webgpu": "/ort/ort.webgpu.bundle.min.mjs" } }</script>
<script type="module" src="/client.js"></script></head><body></body></html>`;

async function bundleClient(): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: ENTRY, resolveDir: process.cwd(), loader: 'js' },
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false,
    external: ['onnxruntime-web', 'onnxruntime-web/*'], plugins: [nodeBuiltinsAsEmpty], logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** The page, ORT's files and the package dir over HTTP, cross-origin isolated (WASM threads). */
async function startPageServer(pkgDir: string): Promise<{ url: string; close(): Promise<void> }> {
  const script = await bundleClient();
  const app = new Hono();
  const send = (body: BodyInit, type: string) => new Response(body, { headers: { 'content-type': type, ...ISOLATION_HEADERS } });
  app.get('/', () => send(PAGE, 'text/html; charset=utf-8'));
  app.get('/client.js', () => send(script, 'text/javascript'));
  app.get('/ort/:file', async (c) => send(await readFile(path.join(ortDistDir(), path.basename(c.req.param('file')))), c.req.param('file').endsWith('.wasm') ? 'application/wasm' : 'text/javascript'));
  app.get('/pkg/*', async (c) => {
    const file = path.join(pkgDir, c.req.path.slice('/pkg/'.length));
    if (!file.startsWith(pkgDir) || !(await stat(file).then((s) => s.isFile(), () => false))) return c.notFound();
    return send(await readFile(file), file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  });
  const server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function openPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction(() => 'ferryT5' in globalThis);
  assert.deepEqual(errors, []);
  return page;
}

const api = (page: Page) => ({
  load: (options: Record<string, unknown>) => page.evaluate(([url, options]) => (globalThis as unknown as { ferryT5: PageApi }).ferryT5.load(url, options), [`${new URL(page.url()).origin}/pkg`, options] as const),
  generate: (list: Record<string, unknown>[]) => page.evaluate((list) => (globalThis as unknown as { ferryT5: PageApi }).ferryT5.generate(list), list),
});

const greedyFields = (prompt: string) => ({ prompt, max_tokens: MAX_TOKENS, temperature: 0 });

describe('browser: a T5 package through the browser client', { skip: skip ?? false }, () => {
  let pkg: T5TestPackage;
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let page: Page;
  /** The greedy target ids and text of each source: ferry's seq2seq decoder on onnxruntime-node (the page sees text and counts only). */
  let expected: { ids: number[]; text: string }[];

  before(async () => {
    pkg = await buildT5Package();
    expected = await pkg.greedyTargets(SOURCES, MAX_TOKENS);
    assert.ok(expected.filter((e) => e.ids.length > 0).length >= 2, 'the random model generates something');
    server = await startPageServer(pkg.dir);
    browser = await launchChromium();
    page = await openPage(browser, server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await pkg?.remove();
  });

  test('WASM (2 threads): each source\'s target is the Node decoder\'s text and token count, alone and batched', async () => {
    const loaded = await api(page).load({ device: 'wasm', threads: 2 });
    assert.deepEqual([loaded.device, loaded.threads, loaded.arch, loaded.provider, loaded.notice], ['wasm', 2, 't5', 'onnxruntime-web wasm', null]);
    // Both graphs in one progress count, ending at their summed size.
    const sizes = await Promise.all(['onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx'].map(async (f) => (await stat(path.join(pkg.dir, f))).size));
    const last = loaded.progress.at(-1)!;
    assert.deepEqual([last.loaded, last.total], [sizes[0]! + sizes[1]!, sizes[0]! + sizes[1]!]);
    assert.ok(loaded.progress.every((p, i) => i === 0 || p.loaded >= loaded.progress[i - 1]!.loaded));
    for (const [i, source] of SOURCES.entries()) {
      const [run] = await api(page).generate([greedyFields(source)]);
      assert.equal(run!.text, expected[i]!.text, `target of ${JSON.stringify(source)}`);
      assert.equal(run!.tokens, expected[i]!.ids.length);
    }
    const together = await api(page).generate(SOURCES.map(greedyFields));
    assert.deepEqual(together.map((r) => r.text), expected.map((e) => e.text));
  });

  test('`ferry generate` prints the same targets', async () => {
    const run = promisify(execFile);
    for (const i of [0, 1]) {
      const { stdout } = await run('node', [path.resolve('bin/ferry.js'), 'generate', pkg.dir, '--prompt', SOURCES[i]!, '--max-tokens', String(MAX_TOKENS), '--temperature', '0', '--device', 'cpu']);
      assert.equal(stdout, `${expected[i]!.text}\n`);
    }
  });

  test('WebGPU (SwiftShader) runs the If-merged decoder: the same targets, the self-attention cache fed back from GPU buffers', async () => {
    const loaded = await api(page).load({ device: 'webgpu', threads: 1 });
    assert.deepEqual([loaded.device, loaded.provider, loaded.notice], ['webgpu', 'onnxruntime-web webgpu', null]);
    const residentBefore = await page.evaluate(() => (globalThis as unknown as { ferryT5: PageApi }).ferryT5.gpuResidentFeeds());
    const [run] = await api(page).generate([{ ...greedyFields(SOURCES[1]!), ignore_eos: true }]);
    const resident = (await page.evaluate(() => (globalThis as unknown as { ferryT5: PageApi }).ferryT5.gpuResidentFeeds())) - residentBefore;
    // Every step after the first feeds each decoder layer's self-attention K and V back from the GPU
    // (the cross-attention K and V are the first step's, which the merged decoder no longer re-emits).
    assert.ok(resident >= (MAX_TOKENS - 1) * pkg.config.nDecoderLayers * 2, `${resident} cache inputs stayed on the GPU`);
    assert.equal(run!.tokens, MAX_TOKENS);
    const runs = await api(page).generate(SOURCES.map(greedyFields));
    assert.deepEqual(runs.map((r) => r.text), expected.map((e) => e.text));
    assert.deepEqual(runs.map((r) => r.tokens), expected.map((e) => e.ids.length));
  });

  test('auto without WebGPU runs on WASM, says why, and gives the same targets', async () => {
    const plain = await launchChromium({ webgpu: false });
    try {
      const other = await openPage(plain, server.url);
      const loaded = await api(other).load({ device: 'auto', threads: 1 });
      assert.equal(loaded.device, 'wasm');
      assert.match(loaded.notice ?? '', /WebGPU is not available in this browser .*: running on WASM instead/);
      const runs = await api(other).generate(SOURCES.map(greedyFields));
      assert.deepEqual(runs.map((r) => r.text), expected.map((e) => e.text));
    } finally {
      await plain.close();
    }
  });

  test('request errors are the server\'s (echo, an empty source); loadBrowserPlainModel names a T5 package', async () => {
    await api(page).load({ device: 'wasm', threads: 1 });
    // No named functions inside evaluate: tsx would wrap them in a helper the page does not have.
    const messages = await page.evaluate((list) => {
      const ferry = (globalThis as unknown as { ferryT5: PageApi }).ferryT5;
      return Promise.all([...list.map((fields) => ferry.generate([fields]).then(() => 'no error', (error: Error) => error.message)), ferry.loadPlain(`${location.origin}/pkg`)]);
    }, [{ prompt: 'the cat', echo: true }, { prompt: '' }]);
    assert.match(messages[0]!, /echo: a T5 model's completion is a new text/);
    assert.match(messages[1]!, /the prompt is empty: a T5 model needs a source text/);
    assert.match(messages[2]!, /^not_plain: .*\/pkg is a T5 encoder-decoder \(load it with loadBrowserModel/);
  });
});
