// The edge worker (src/serve/edge.ts bundled by scripts/build-edge.ts) in real workerd through
// miniflare: the same completions and the same error objects as the Node server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Miniflare } from 'miniflare';
import { buildEdge, type EdgeBuild } from '../../scripts/build-edge.ts';
import { FerryError } from '../../src/errors.ts';
import { buildPackages, type TestPackages } from '../serve/packages.ts';
import { startNodeServer, startWorkerd, type NodeServer } from './harness.ts';

const GREEDY = { prompt: 'to be, or', max_tokens: 12, temperature: 0 };

// Each is sent to both servers; status and body must be identical.
const BAD_REQUESTS: { name: string; body: string; type?: string }[] = [
  { name: 'not JSON', body: '{"model": ' },
  { name: 'an unknown field', body: JSON.stringify({ model: 'tiny-lstm', prompt: 'a', max_tokenz: 3 }) },
  { name: 'a negative max_tokens', body: JSON.stringify({ model: 'tiny-lstm', prompt: 'a', max_tokens: -1 }) },
  { name: 'temperature out of range', body: JSON.stringify({ model: 'tiny-lstm', prompt: 'a', temperature: 9 }) },
  { name: 'an unknown model', body: JSON.stringify({ model: 'gpt-5', prompt: 'a' }) },
  { name: 'a prompt beyond the context', body: JSON.stringify({ model: 'tiny-transformer', prompt: 'to be, or not to be '.repeat(20) }) },
  { name: 'a text/plain body', body: '{}', type: 'text/plain' },
];

async function post(fetcher: (url: string, init: RequestInit) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>, base: string, body: string, type = 'application/json') {
  const response = await fetcher(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** The text of an SSE completion stream, checking its framing. */
function streamedText(sse: string): string {
  const events = sse.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  assert.equal(events.at(-1), '[DONE]');
  return events.slice(0, -1).map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices.map((c) => c.text).join('')).join('');
}

describe('edge: the worker in workerd (miniflare)', () => {
  let packages: TestPackages;
  let server: NodeServer;
  let build: EdgeBuild;
  let worker: Miniflare;
  let outDir: string;
  const edgeFetch = (url: string, init: RequestInit) => worker.dispatchFetch(url, init as never);

  before(async () => {
    packages = await buildPackages();
    outDir = await mkdtemp(path.join(tmpdir(), 'ferry-edge-'));
    build = await buildEdge({ packages: [path.dirname(packages.lstm)], outDir: path.join(outDir, 'ok') });
    worker = startWorkerd(build);
    server = await startNodeServer([packages.lstm, packages.transformer]);
  });

  after(async () => {
    await worker?.dispose();
    await server?.close();
    await packages?.remove();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  test('the bundle holds the worker, the ORT wasm and both models, and says their sizes', () => {
    assert.deepEqual(build.sizes.map((s) => s.file), ['worker.mjs', 'ort-wasm-simd-threaded.wasm', 'models/0-tiny-lstm.onnx', 'models/1-tiny-transformer.onnx']);
    const [js, wasm] = build.sizes;
    assert.ok(js!.bytes < 1_500_000 && js!.gzipBytes < js!.bytes, `worker.mjs is ${js!.bytes} bytes`);
    assert.ok(wasm!.bytes > 5_000_000 && wasm!.gzipBytes < wasm!.bytes / 2);
    assert.equal(build.total.gzipBytes, build.sizes.reduce((s, f) => s + f.gzipBytes, 0));
  });

  test("Cloudflare's own deploy tool accepts the build: `wrangler deploy --dry-run` finds every module and the upload size build-edge reported", async () => {
    const wrangler = createRequire(import.meta.url).resolve('wrangler/bin/wrangler.js');
    const { stdout } = await promisify(execFile)(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', path.join(outDir, 'dry-run')], {
      cwd: build.outDir,
      env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
    });
    for (const file of build.sizes.slice(1).map((s) => s.file)) assert.ok(stdout.includes(file), `wrangler lists ${file}:\n${stdout}`);
    const [, total, gzip] = stdout.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/) ?? [];
    assert.ok(total && gzip, `wrangler printed its upload size:\n${stdout}`);
    // Its gzip level and framing differ a little from ours; the figures a user is warned with must still be its figures.
    assert.ok(Math.abs(Number(total) * 1024 / build.total.bytes - 1) < 0.01, `wrangler ${total} KiB, build-edge ${build.total.bytes} bytes`);
    assert.ok(Math.abs(Number(gzip) * 1024 / build.total.gzipBytes - 1) < 0.02, `wrangler gzip ${gzip} KiB, build-edge ${build.total.gzipBytes} bytes`);
  });

  for (const model of ['tiny-lstm', 'tiny-transformer']) {
    test(`${model}: /v1/completions, streamed and not, gives the Node server's greedy text`, async () => {
      const body = JSON.stringify({ ...GREEDY, model });
      const node = await post(fetch, server.url, body);
      const edge = await post(edgeFetch, 'http://edge.test', body);
      assert.equal(node.status, 200);
      assert.equal(edge.status, 200);
      const expected = JSON.parse(node.text).choices[0].text as string;
      assert.equal(JSON.parse(edge.text).choices[0].text, expected);
      assert.deepEqual(JSON.parse(edge.text).usage, JSON.parse(node.text).usage);

      const streamBody = JSON.stringify({ ...GREEDY, model, stream: true });
      const streamed = await post(edgeFetch, 'http://edge.test', streamBody);
      assert.equal(streamed.status, 200);
      assert.match(streamed.type ?? '', /^text\/event-stream/);
      assert.equal(streamedText(streamed.text), expected);
      assert.equal(streamedText((await post(fetch, server.url, streamBody)).text), expected);
    });
  }

  test('concurrent requests to both models (continuous batching in one isolate) give the texts they get alone', async () => {
    const prompts = ['to be, or', 'that is', 'the question', 'héllo'];
    const bodies = ['tiny-lstm', 'tiny-transformer'].flatMap((model) => prompts.map((prompt, i) => JSON.stringify({ ...GREEDY, model, prompt, max_tokens: 8 + i })));
    const alone = [];
    for (const body of bodies) alone.push(JSON.parse((await post(fetch, server.url, body)).text).choices[0].text as string);
    // Each request's rows are stepped by a loop another request started; workerd must not take the waiting ones for hung.
    const together = await Promise.all(bodies.map((body, i) => post(edgeFetch, 'http://edge.test', i % 2 ? JSON.stringify({ ...JSON.parse(body), stream: true }) : body)));
    assert.deepEqual(together.map((r) => r.status), bodies.map(() => 200), together.map((r) => r.text.slice(0, 200)).join('\n'));
    assert.deepEqual(together.map((r, i) => (i % 2 ? streamedText(r.text) : JSON.parse(r.text).choices[0].text)), alone);
  });

  test('/v1/models and /readyz answer as on Node', async () => {
    const models = (await (await worker.dispatchFetch('http://edge.test/v1/models')).json()) as { data: { id: string; provider: string }[] };
    assert.deepEqual(models.data.map((m) => [m.id, m.provider]), [['tiny-lstm', 'onnxruntime-web wasm'], ['tiny-transformer', 'onnxruntime-web wasm']]);
    assert.deepEqual(await (await worker.dispatchFetch('http://edge.test/readyz')).json(), { status: 'ready', models: ['tiny-lstm', 'tiny-transformer'] });
  });

  for (const bad of BAD_REQUESTS) {
    test(`${bad.name}: the same error object as on Node`, async () => {
      const node = await post(fetch, server.url, bad.body, bad.type);
      const edge = await post(edgeFetch, 'http://edge.test', bad.body, bad.type);
      assert.ok(node.status >= 400 && node.status < 500, `node answered ${node.status}`);
      assert.equal(edge.status, node.status);
      assert.deepEqual(JSON.parse(edge.text), JSON.parse(node.text));
      assert.ok((JSON.parse(edge.text) as { error: { message: string } }).error.message.length > 10);
    });
  }

  test('a model over the edge limits: the build refuses the upload size, the worker refuses at load with a clear error (behind its API key)', async () => {
    await assert.rejects(buildEdge({ packages: [packages.lstm], outDir: path.join(outDir, 'upload'), maxUploadBytes: 3_000_000 }), (error: unknown) => {
      assert.ok(error instanceof FerryError);
      assert.equal(error.code, 'edge_too_large');
      assert.match(error.message, /the edge worker is 3\.\d\d MB after gzip, over the 3 MB a Cloudflare worker may upload/);
      assert.match(error.hint ?? '', /int8/);
      return true;
    });
    const small = await buildEdge({ packages: [packages.lstm], outDir: path.join(outDir, 'small'), maxModelBytes: 50_000 });
    const limited = startWorkerd(small, { FERRY_API_KEY: 'sesame' });
    try {
      const limitedFetch = (url: string, init: RequestInit) => limited.dispatchFetch(url, init as never);
      const body = JSON.stringify({ ...GREEDY, model: 'tiny-lstm' });
      const refused = await post(limitedFetch, 'http://edge.test', body);
      assert.equal(refused.status, 401, 'the FERRY_API_KEY secret guards the API');
      assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, 'invalid_api_key');
      const completion = await post((url, init) => limitedFetch(url, { ...init, headers: { ...init.headers, authorization: 'Bearer sesame' } }), 'http://edge.test', body);
      assert.equal(completion.status, 503);
      const error = (JSON.parse(completion.text) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'model_load_failed');
      assert.match(error.message, /tiny-lstm: its model file is \d+\.\d kB, over the 50\.0 kB this runtime allows \(the edge limit/);
      const ready = await limited.dispatchFetch('http://edge.test/readyz');
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { status: string }).status, 'failed');
      assert.equal((await limited.dispatchFetch('http://edge.test/healthz')).status, 200);
    } finally {
      await limited.dispose();
    }
  });
});
