import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../../src/errors.ts';
import type { EventFrames } from '../../src/serve/completions.ts';
import { findPackages, startServer, type RunningServer } from '../../src/serve/node.ts';
import { sendEventsToNode } from '../../src/serve/node-sse.ts';
import { buildPackages, type TestPackages } from './packages.ts';

const run = promisify(execFile);
const ferry = path.resolve('bin/ferry.js');
let packages: TestPackages;
let server: RunningServer;
const logs: string[] = [];

before(async () => {
  packages = await buildPackages();
  server = await startServer({
    dirs: [path.join(packages.root, 'models')], port: 0, host: '127.0.0.1', maxBatch: 64, maxQueue: 64, device: 'auto', log: (m) => logs.push(m),
  });
  await server.models;
});

after(async () => {
  await server.close();
  await packages.remove();
});

const complete = (body: object) => fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('the server finds every package under a models folder, says where each runs, and is ready', async () => {
  const models = await server.models;
  assert.deepEqual(models.map((m) => m.id), ['tiny-lstm', 'tiny-transformer']);
  assert.ok(logs.some((l) => l === 'device: cpu (no GPU provider found; see docs/HTTP.md#devices)'), logs.join('\n'));
  assert.ok(logs.some((l) => /loaded tiny-transformer \(transformer\) .* on onnxruntime-node cpu/.test(l)), logs.join('\n'));
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
});

test('50 streams aborted mid-way over real HTTP free their slots and the server keeps serving', async () => {
  const models = await server.models;
  const aborts = Array.from({ length: 50 }, (_, i) => (async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', signal: controller.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-lstm', prompt: `to be ${i}`, max_tokens: 4096, stream: true, ignore_eos: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let received = '';
    while (received.split('data: ').length < 4) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the stream is still going');
      received += new TextDecoder().decode(value);
    }
    assert.ok(!received.includes('[DONE]'));
    controller.abort();
    await reader.read().catch(() => {});
  })());
  await Promise.all(aborts);
  for (let wait = 0; wait < 200 && models.some((m) => m.scheduler.active > 0); wait++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(models.map((m) => m.scheduler.active), [0, 0]);
  const res = await complete({ model: 'tiny-lstm', prompt: 'to be', max_tokens: 5, temperature: 0 });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).usage.completion_tokens, 5);
});

test('streams are written straight to Node\'s response: the JSON answer\'s texts per choice, usage, [DONE]; a late failure is one error chunk', async () => {
  const params = { model: 'tiny-transformer', prompt: ['ROMEO:', 'to be'], max_tokens: 10, temperature: 0, n: 2 };
  const whole = await (await complete(params)).json();
  const res = await complete({ ...params, stream: true, stream_options: { include_usage: true } });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const events = (await res.text()).split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')));
  const texts = ['', '', '', ''];
  const finish: string[] = [];
  for (const chunk of chunks.slice(0, -1)) {
    assert.equal(chunk.object, 'text_completion');
    assert.equal(chunk.usage, null);
    for (const choice of chunk.choices) {
      texts[choice.index] += choice.text;
      if (choice.finish_reason) finish[choice.index] = choice.finish_reason;
    }
  }
  assert.deepEqual(texts, whole.choices.map((c: { text: string }) => c.text));
  assert.deepEqual(finish, ['length', 'length', 'length', 'length']);
  assert.deepEqual(chunks.at(-1).usage, whole.usage);

  const hurried = await startServer({ dirs: [packages.lstm], port: 0, host: '127.0.0.1', maxBatch: 4, maxQueue: 4, device: 'cpu', timeoutMs: 40, log: () => {} });
  try {
    await hurried.models;
    const late = await fetch(`${hurried.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-lstm', prompt: 'x', max_tokens: 4096, stream: true, ignore_eos: true }),
    });
    assert.equal(late.status, 200);
    const lateEvents = (await late.text()).split('\n\n').filter(Boolean);
    assert.ok(lateEvents.length > 3);
    assert.equal(lateEvents.at(-1), 'data: [DONE]');
    assert.equal(JSON.parse(lateEvents.at(-2)!.slice(6)).error.code, 'deadline_exceeded');
  } finally {
    await hurried.close();
  }
});

test('sendEventsToNode writes each batch of frames as it comes, ends after the last, and cancels when the client leaves', async () => {
  const served = async (frames: EventFrames, read: (res: http.IncomingMessage) => Promise<string>) => {
    const httpServer = http.createServer((_, res) => void sendEventsToNode(frames, res));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const { port } = httpServer.address() as { port: number };
    try {
      return await new Promise<{ type: string | undefined; body: string }>((resolve, reject) => {
        http.get(`http://127.0.0.1:${port}/`, (res) => read(res).then((body) => resolve({ type: res.headers['content-type'], body }), reject)).on('error', reject);
      });
    } finally {
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    }
  };
  const whole = (res: http.IncomingMessage) => new Promise<string>((resolve) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
  });
  const batches = ['data: 1\n\n', 'data: 2\n\ndata: 3\n\n', 'data: [DONE]\n\n'];
  const finite: EventFrames = { next: async () => batches.shift(), cancel: () => {} };
  assert.deepEqual(await served(finite, whole), { type: 'text/event-stream; charset=utf-8', body: 'data: 1\n\ndata: 2\n\ndata: 3\n\ndata: [DONE]\n\n' });

  let cancelled!: () => void;
  const gone = new Promise<void>((resolve) => (cancelled = resolve));
  let sent = false;
  const endless: EventFrames = { next: () => (sent ? new Promise(() => {}) : ((sent = true), Promise.resolve('data: 1\n\n'))), cancel: () => cancelled() };
  const firstChunk = (res: http.IncomingMessage) => new Promise<string>((resolve) => res.setEncoding('utf8').once('data', (d: string) => {
    res.destroy();
    resolve(d);
  }));
  assert.equal((await served(endless, firstChunk)).body, 'data: 1\n\n');
  await Promise.race([gone, new Promise((_, reject) => setTimeout(() => reject(new Error('the frames were not cancelled')), 5000).unref())]);
});

test('`ferry generate` prints the greedy text the server returns', async () => {
  const expected = (await (await complete({ model: 'tiny-transformer', prompt: 'ROMEO:', max_tokens: 12, temperature: 0 })).json()).choices[0].text;
  const { stdout, stderr } = await run('node', [ferry, 'generate', packages.transformer, '--prompt', 'ROMEO:', '--max-tokens', '12', '--temperature', '0', '--device', 'cpu']);
  // Like `ferry sample`: the prompt, then the server's text.
  assert.equal(stdout, `ROMEO:${expected}\n`);
  assert.match(stderr, /tiny-transformer \(transformer\) on onnxruntime-node cpu/);
  assert.doesNotMatch(stderr, /stopped after/);
  const streamed = await run('node', [ferry, 'generate', packages.transformer, '--prompt', 'ROMEO:', '--max-tokens', '12', '--temperature', '0', '--stream']);
  assert.equal(streamed.stdout, `ROMEO:${expected}\n`);
});

test('`ferry generate` goes on past the context (48 tokens) in a sliding window until --max-tokens', async () => {
  const within = await run('node', [ferry, 'generate', packages.transformer, '--prompt', 'ROMEO:', '--max-tokens', '40', '--temperature', '0']);
  const past = await run('node', [ferry, 'generate', packages.transformer, '--prompt', 'ROMEO:', '--max-tokens', '100', '--temperature', '0', '--stream']);
  assert.doesNotMatch(past.stderr, /stopped after/);
  assert.ok(past.stdout.startsWith(within.stdout.slice(0, -1)), 'the first 40 tokens are the same text');
  assert.ok(past.stdout.length > within.stdout.length, `100 tokens (${past.stdout.length} chars) go past 40 (${within.stdout.length})`);
});

test('`ferry serve` of a training checkpoint or run says so and shows the export command; no model loads when the port is taken', async () => {
  const checkpoint = path.join(packages.root, 'transformer-checkpoint');
  await assert.rejects(run('node', [ferry, 'serve', checkpoint]), (error: { stderr: string; code: number }) =>
    error.code === 1 && error.stderr.includes(`${checkpoint} is a training checkpoint (written by \`ferry train\`), not an ONNX package`) &&
    error.stderr.includes(`export it first: ferry export ${checkpoint} --out models/transformer-checkpoint`) && !/field "format"/.test(error.stderr));
  const port = new URL(server.url).port;
  await assert.rejects(run('node', [ferry, 'serve', packages.lstm, '--port', port, '--device', 'cpu']), (error: { stderr: string; code: number }) =>
    error.code === 1 && new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`).test(error.stderr) && !/loaded/.test(error.stderr));
});

test('`ferry generate` names the bad flag; `ferry serve` with an empty models/ says how to make one', async () => {
  await assert.rejects(run('node', [ferry, 'generate', packages.lstm, '--prompt', 'x', '--top-p', '7']), (error: { stderr: string; code: number }) =>
    error.code === 1 && /--top-p must be a number <= 1, got 7/.test(error.stderr) && /ferry generate --help/.test(error.stderr));
  await assert.rejects(run('node', [ferry, 'generate', packages.lstm, '--prompt', 'x', '--temperature', '-1', '--max-tokens', 'many']),
    (error: { stderr: string; code: number }) => error.code === 1 && /--max-tokens must be a number, got "many"/.test(error.stderr));
  await assert.rejects(run('node', [ferry, 'generate', packages.lstm, '--prompt', 'x', '--temperature', '-1']),
    (error: { stderr: string; code: number }) => error.code === 1 && /--temperature must be a number >= 0, got -1/.test(error.stderr));
  await assert.rejects(run('node', [ferry, 'generate', packages.lstm, '--prompt', 'x', '--precision', 'fp16']),
    (error: { stderr: string; code: number }) => error.code === 1 && /export it again with --fp16/.test(error.stderr));
  const empty = await mkdtemp(path.join(tmpdir(), 'ferry-empty-'));
  try {
    await assert.rejects(run('node', [ferry, 'serve'], { cwd: empty }), (error: { stderr: string; code: number }) =>
      error.code === 1 && error.stderr.includes(`${path.join(realpathSync(empty), 'models')} does not exist`) && /ferry train --corpus FILE/.test(error.stderr));
    await mkdir(path.join(empty, 'models'));
    await assert.rejects(run('node', [ferry, 'serve'], { cwd: empty }), (error: { stderr: string; code: number }) =>
      error.code === 1 && /models holds no ONNX package/.test(error.stderr) && /ferry export/.test(error.stderr));
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

test('`ferry serve --port 0` prints its URL and a curl example that works as printed, and stops on SIGTERM', async () => {
  const child = spawn('node', [ferry, 'serve', path.join(packages.root, 'models'), '--port', '0', '--api-key', 'k3y', '--device', 'cpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('max_tokens')) resolve();
    });
    child.once('exit', () => reject(new Error(`ferry serve exited early:\n${stdout}\n${stderr}`)));
  });
  const url = stdout.match(/at (http:\/\/127\.0\.0\.1:\d+)\/v1/)![1]!;
  assert.match(stdout, /serving tiny-lstm, tiny-transformer at/);
  assert.match(stdout, /-H 'authorization: Bearer k3y'/);
  const body = stdout.match(/-d '(\{.*\})'/)![1]!;
  const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k3y' }, body });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).object, 'text_completion');
  assert.match(stderr, /listening on http:\/\/127\.0\.0\.1:\d+/);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('findPackages refuses a missing dir and a folder without packages', async () => {
  await assert.rejects(findPackages(['/nonexistent/ferry']), (e: unknown) => e instanceof FerryError && e.message === '/nonexistent/ferry does not exist');
  await assert.rejects(findPackages([tmpdir() + '/..']), (e: unknown) => e instanceof FerryError && e.code === 'no_models');
});
