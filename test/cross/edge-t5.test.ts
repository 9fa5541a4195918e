// A T5 package in the edge worker (src/serve/edge.ts bundled by scripts/build-edge.ts) in real
// workerd through miniflare: /v1/completions and /v2 from the same Hono app give what `ferry
// serve`'s Node server gives (and the seq2seq decoder's greedy target), T5's request errors are the
// same objects, and the build's and the worker's size limits count both graphs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Miniflare } from 'miniflare';
import { buildEdge, type EdgeBuild } from '../../scripts/build-edge.ts';
import { FerryError } from '../../src/errors.ts';
import { startServer } from '../../src/serve/node.ts';
import { buildT5Package, type T5TestPackage } from '../export/t5-package.ts';
import { startWorkerd } from './harness.ts';

const SOURCES = ['the cat', 'a dog sat on the mat', 'cat', 'der Hund'];
const MAX_TOKENS = 12;

type Fetcher = (url: string, init?: RequestInit) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

async function post(fetcher: Fetcher, url: string, body: unknown) {
  const response = await fetcher(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** The text of an SSE completion stream, checking its framing. */
function streamedText(sse: string): string {
  const events = sse.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  assert.equal(events.at(-1), '[DONE]');
  return events.slice(0, -1).map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices.map((c) => c.text).join('')).join('');
}

describe('edge: a T5 package in the worker (workerd, miniflare)', () => {
  let pkg: T5TestPackage;
  let root: string;
  let build: EdgeBuild;
  let worker: Miniflare;
  let server: Awaited<ReturnType<typeof startServer>>;
  /** The greedy target of each source from the seq2seq decoder over the package's files (onnxruntime-node). */
  let expected: string[];
  const edge: Fetcher = (url, init) => worker.dispatchFetch(`http://edge.test${url}`, init as never);
  const node: Fetcher = (url, init) => fetch(`${server.url}${url}`, init);

  before(async () => {
    pkg = await buildT5Package();
    expected = (await pkg.greedyTargets(SOURCES, MAX_TOKENS)).map((t) => t.text);
    assert.ok(expected.filter((text) => text.length > 0).length >= 2, 'the random model generates something');
    root = await mkdtemp(path.join(tmpdir(), 'ferry-edge-t5-'));
    build = await buildEdge({ packages: [pkg.dir], outDir: path.join(root, 'ok') });
    worker = startWorkerd(build);
    server = await startServer({ dirs: [pkg.dir], port: 0, host: '127.0.0.1', maxBatch: 4, maxQueue: 16, device: 'cpu', log: () => {} });
    await server.models;
  });

  after(async () => {
    await worker?.dispose();
    await server?.close();
    await pkg?.remove();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('the bundle holds both graphs of the package, each counted in the upload size', () => {
    assert.deepEqual(build.sizes.map((s) => s.file), ['worker.mjs', 'ort-wasm-simd-threaded.wasm', 'models/0-tiny-t5.onnx', 'models/0-tiny-t5.encoder.onnx']);
    assert.ok(build.sizes.slice(2).every((s) => s.bytes > 10_000), 'both graphs are real files');
    assert.equal(build.total.gzipBytes, build.sizes.reduce((s, f) => s + f.gzipBytes, 0));
  });

  test('/v1/models, /readyz: the T5 model is listed as on Node, on onnxruntime-web wasm', async () => {
    const listed = JSON.parse(await (await edge('/v1/models')).text()) as { data: { id: string; arch: string; context_length: number; provider: string }[] };
    const onNode = JSON.parse(await (await node('/v1/models')).text()) as typeof listed;
    assert.deepEqual(listed.data.map((m) => [m.id, m.arch, m.context_length, m.provider]), [[pkg.name, 't5', pkg.config.maxSourceLength, 'onnxruntime-web wasm']]);
    assert.deepEqual(listed.data.map((m) => [m.id, m.arch, m.context_length]), onNode.data.map((m) => [m.id, m.arch, m.context_length]));
    assert.deepEqual(JSON.parse(await (await edge('/readyz')).text()), { status: 'ready', models: [pkg.name] });
  });

  test('/v1/completions, streamed and not: the prompt is the source, the text the Node server\'s greedy target', async () => {
    for (const [i, source] of SOURCES.entries()) {
      const body = { model: pkg.name, prompt: source, max_tokens: MAX_TOKENS, temperature: 0 };
      const [onEdge, onNode] = [await post(edge, '/v1/completions', body), await post(node, '/v1/completions', body)];
      assert.equal(onEdge.status, 200, onEdge.text);
      const [a, b] = [JSON.parse(onEdge.text), JSON.parse(onNode.text)];
      assert.equal(a.choices[0].text, expected[i], `target of ${JSON.stringify(source)}`);
      assert.equal(b.choices[0].text, expected[i]);
      assert.deepEqual(a.usage, b.usage);
      assert.equal(a.choices[0].finish_reason, b.choices[0].finish_reason);
      const streamed = await post(edge, '/v1/completions', { ...body, stream: true });
      assert.match(streamed.type ?? '', /^text\/event-stream/);
      assert.equal(streamedText(streamed.text), expected[i]);
    }
  });

  test('concurrent requests and a list of prompts are batched in the worker and give the texts they get alone', async () => {
    const alone = await Promise.all(SOURCES.map((prompt) => post(edge, '/v1/completions', { model: pkg.name, prompt, max_tokens: MAX_TOKENS, temperature: 0 })));
    assert.deepEqual(alone.map((r) => JSON.parse(r.text).choices[0].text), expected);
    const listed = JSON.parse((await post(edge, '/v1/completions', { model: pkg.name, prompt: SOURCES, max_tokens: MAX_TOKENS, temperature: 0 })).text);
    assert.deepEqual(listed.choices.map((c: { text: string }) => c.text), expected);
  });

  test('seeded sampling gives the Node server\'s choices', async () => {
    const body = { model: pkg.name, prompt: 'the cat', max_tokens: MAX_TOKENS, temperature: 1.5, top_k: 8, n: 3, seed: 5 };
    const [a, b] = [JSON.parse((await post(edge, '/v1/completions', body)).text), JSON.parse((await post(node, '/v1/completions', body)).text)];
    assert.deepEqual(a.choices.map((c: { text: string }) => c.text), b.choices.map((c: { text: string }) => c.text));
    assert.equal(new Set(a.choices.map((c: { text: string }) => c.text)).size > 1 || a.choices[0].text.length === 0, true, 'sampling varies the choices');
  });

  test('/v2: the model\'s metadata and a text_input inference are the Node server\'s', async () => {
    const [meta, metaNode] = [await (await edge(`/v2/models/${pkg.name}`)).text(), await (await node(`/v2/models/${pkg.name}`)).text()];
    assert.deepEqual(JSON.parse(meta), JSON.parse(metaNode));
    assert.equal(JSON.parse(meta).platform, 'ferry_t5');
    const body = { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [2], data: SOURCES.slice(0, 2) }], parameters: { max_tokens: MAX_TOKENS, temperature: 0 } };
    const [onEdge, onNode] = [await post(edge, `/v2/models/${pkg.name}/infer`, body), await post(node, `/v2/models/${pkg.name}/infer`, body)];
    assert.equal(onEdge.status, 200, onEdge.text);
    assert.deepEqual(JSON.parse(onEdge.text), JSON.parse(onNode.text));
    assert.deepEqual(JSON.parse(onEdge.text).outputs[0].data, expected.slice(0, 2));
  });

  test('T5\'s bad requests get the same error objects as on Node', async () => {
    const cases = [{ prompt: '' }, { prompt: 'x'.repeat(pkg.config.maxSourceLength + 5) }, { prompt: 'the cat', echo: true }, { prompt: 'the cat', n: 9 }];
    for (const fields of cases) {
      const body = { model: pkg.name, max_tokens: 4, ...fields };
      const [onEdge, onNode] = [await post(edge, '/v1/completions', body), await post(node, '/v1/completions', body)];
      assert.equal(onNode.status, 400, `${JSON.stringify(fields)}: ${onNode.text}`);
      assert.equal(onEdge.status, onNode.status, JSON.stringify(fields));
      assert.deepEqual(JSON.parse(onEdge.text), JSON.parse(onNode.text));
    }
  });

  test('the limits count both graphs: the build refuses the upload size, the worker refuses at load naming both files', async () => {
    await assert.rejects(buildEdge({ packages: [pkg.dir], outDir: path.join(root, 'upload'), maxUploadBytes: build.total.gzipBytes - 1 }), (error: unknown) => {
      assert.ok(error instanceof FerryError);
      assert.equal(error.code, 'edge_too_large');
      assert.match(error.message, /models\/0-tiny-t5\.onnx .*models\/0-tiny-t5\.encoder\.onnx/);
      return true;
    });
    const [decoderBytes, encoderBytes] = build.sizes.slice(2).map((s) => s.bytes) as [number, number];
    // Each graph alone fits; the two together do not.
    const small = await buildEdge({ packages: [pkg.dir], outDir: path.join(root, 'small'), maxModelBytes: Math.max(decoderBytes, encoderBytes) + 1 });
    const limited = startWorkerd(small);
    try {
      const refused = await post((url, init) => limited.dispatchFetch(`http://edge.test${url}`, init as never), '/v1/completions', { model: pkg.name, prompt: 'the cat' });
      assert.equal(refused.status, 503);
      const error = (JSON.parse(refused.text) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'model_load_failed');
      assert.match(error.message, /tiny-t5: its 2 model files are \d+\.\d kB, over the \d+\.\d kB this runtime allows \(the edge limit/);
    } finally {
      await limited.dispose();
    }
  });
});
