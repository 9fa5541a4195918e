/**
 * Tokens per second of the same ONNX packages in every runtime ferry targets, and the sizes of
 * what a browser downloads and an edge worker uploads. One greedy completion per runtime at
 * batch 1 (ignore_eos, a short prompt, so decode dominates), after one warm-up completion.
 *
 *   node --import tsx bench/cross-runtime.ts [--tokens 32] [PKG_DIR...]   (default: models/)
 *
 * Chromium's WebGPU here is SwiftShader (a CPU rasteriser): a correctness path, not a speed figure.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { buildEdge } from '../scripts/build-edge.ts';
import { generateInBrowser } from '../src/serve/browser/client.ts';
import { openModel } from '../src/serve/model.ts';
import { findPackages } from '../src/serve/node.ts';
import { bundleBrowserClient, ortDistDir } from '../src/serve/playground/bundle.ts';
import { openRuntime } from '../src/serve/runtime/index.ts';
import { chromiumMissing, launchChromium, startNodeServer, startWorkerd } from '../test/cross/harness.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { tokens: { type: 'string', default: '32' } } });
const tokens = Number(values.tokens);
const dirs = await findPackages(positionals.length ? positionals : ['models']);
const request = { prompt: 'ROMEO:', max_tokens: tokens, temperature: 0, ignore_eos: true };
const rows: { runtime: string; model: string; tokensPerSecond: number; note?: string }[] = [];
const log = (line: string) => console.error(line);

async function inProcess(label: string, device: string) {
  const runtime = await openRuntime(device, () => {});
  for (const dir of dirs) {
    const model = await openModel(dir, { runtime, maxBatch: 1, maxQueue: 1 });
    await generateInBrowser(model, request);
    const run = await generateInBrowser(model, request);
    rows.push({ runtime: label, model: model.id, tokensPerSecond: run.tokens / run.seconds });
    log(`${label} ${model.id}: ${(run.tokens / run.seconds).toFixed(1)} tokens/s`);
    await model.close();
  }
}

await inProcess('onnxruntime-node CPU', 'cpu');
await inProcess('onnxruntime-web WASM in Node', 'wasm');

const skipBrowser = chromiumMissing();
if (skipBrowser) {
  log(skipBrowser);
} else {
  const server = await startNodeServer(dirs);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => 'ferry' in globalThis);
    await page.evaluate(() => (globalThis as unknown as { ferry: { ready: Promise<void> } }).ferry.ready);
    for (const [label, device, threads, note] of [
      ['Chromium WASM, 1 thread', 'wasm', 1, undefined],
      ['Chromium WASM, 2 threads', 'wasm', 2, undefined],
      ['Chromium WebGPU (SwiftShader)', 'webgpu', 1, 'software GPU: a correctness path, not a speed figure'],
    ] as const) {
      for (const model of server.models) {
        const result = await page.evaluate(async ([id, device, threads, request]) => {
          const ferry = (globalThis as unknown as { ferry: { select(...a: unknown[]): Promise<void>; runBrowser(f: unknown): Promise<{ tokensPerSecond: number; device: string }> } }).ferry;
          await ferry.select(id, device, threads);
          await ferry.runBrowser({ ...request, max_tokens: 4 });
          return ferry.runBrowser(request);
        }, [model.id, device, threads, device === 'webgpu' ? { ...request, max_tokens: Math.min(tokens, 16) } : request] as const);
        rows.push({ runtime: label, model: model.id, tokensPerSecond: result.tokensPerSecond, note });
        log(`${label} ${model.id}: ${result.tokensPerSecond.toFixed(1)} tokens/s (${result.device})`);
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

// One worker per model: both shipped fp32 models together exceed Workers' 10 MB upload.
const edgeDir = await mkdtemp(path.join(tmpdir(), 'ferry-bench-edge-'));
const edges = [];
for (const [i, dir] of dirs.entries()) {
  const edge = await buildEdge({ packages: [dir], outDir: path.join(edgeDir, String(i)) });
  edges.push(edge);
  const worker = startWorkerd(edge);
  try {
    const started = performance.now();
    const [{ id }] = ((await (await worker.dispatchFetch('http://edge/v1/models')).json()) as { data: { id: string }[] }).data as [{ id: string }];
    log(`workerd cold start with ${id}: ${((performance.now() - started) / 1000).toFixed(2)} s to the first answer`);
    const complete = async () => {
      const begun = performance.now();
      const response = await worker.dispatchFetch('http://edge/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...request, model: id }) });
      const body = (await response.json()) as { usage: { completion_tokens: number } };
      return body.usage.completion_tokens / ((performance.now() - begun) / 1000);
    };
    await complete();
    const tokensPerSecond = await complete();
    rows.push({ runtime: 'workerd (miniflare), WASM 1 thread', model: id, tokensPerSecond });
    log(`workerd ${id}: ${tokensPerSecond.toFixed(1)} tokens/s`);
  } finally {
    await worker.dispose();
  }
}

const sizes: { what: string; bytes: number; gzipBytes: number }[] = [];
const browserBundle = await bundleBrowserClient();
sizes.push({ what: 'browser client + playground (playground.js)', bytes: Buffer.byteLength(browserBundle), gzipBytes: gzipSync(browserBundle).byteLength });
for (const file of ['ort.wasm.bundle.min.mjs', 'ort-wasm-simd-threaded.wasm', 'ort.webgpu.bundle.min.mjs', 'ort-wasm-simd-threaded.asyncify.wasm']) {
  const bytes = await readFile(path.join(ortDistDir(), file));
  sizes.push({ what: `browser: ${file}`, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes).byteLength });
}
for (const edge of edges) {
  for (const s of edge.sizes) if (s.file !== 'ort-wasm-simd-threaded.wasm' || edge === edges[0]) sizes.push({ what: `edge: ${s.file}`, bytes: s.bytes, gzipBytes: s.gzipBytes });
  sizes.push({ what: `edge: total upload of the worker with ${edge.sizes.at(-1)!.file}`, ...edge.total });
}
await rm(edgeDir, { recursive: true, force: true });

const mb = (n: number) => (n / 1e6).toFixed(2);
console.log(`\n### Cross-runtime decode speed (${tokens} tokens, ${Math.min(tokens, 16)} on WebGPU; batch 1, greedy, prompt "ROMEO:")\n`);
console.log('| runtime | model | tokens/s | note |\n|---|---|---:|---|');
for (const r of rows) console.log(`| ${r.runtime} | ${r.model} | ${r.tokensPerSecond.toFixed(1)} | ${r.note ?? ''} |`);
console.log('\n### Download and upload sizes\n\n| file | MB | MB gzip |\n|---|---:|---:|');
for (const s of sizes) console.log(`| ${s.what} | ${mb(s.bytes)} | ${mb(s.gzipBytes)} |`);
