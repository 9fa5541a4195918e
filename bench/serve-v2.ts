/**
 * Open Inference Protocol benchmark (issue #19) on a MobileNet-class model (bench/mobilenet.ts)
 * over HTTP on loopback: throughput and p50/p99 latency of 1 client and of 32 concurrent clients
 * (dynamic batching), the server's own overhead (HTTP + batching) against a bare session.run of
 * the batches it ran, and one image as JSON against one as a binary tensor, through MobileNet and
 * through a model that returns the image as it is (all transport: parsing, copies, HTTP).
 *
 *   node --import tsx bench/serve-v2.ts [--requests 4] [--max-batch 32] [--batch-delay-ms 2] [--threads 0]
 *
 * The server runs in this process with the session in a worker thread, as under `ferry serve`;
 * the load comes from bench/serve-v2-client.ts in a process of its own. Prints one JSON line
 * for BENCHMARKS.md.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { serve } from '@hono/node-server';
import { createApp } from '../src/serve/app.ts';
import { openRuntime } from '../src/serve/runtime/index.ts';
import type { RunRecord } from '../src/serve/v2/batcher.ts';
import { createPlainModel } from '../src/serve/v2/plain-model.ts';
import { echo224, mobilenet } from './mobilenet.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '4' }, 'max-batch': { type: 'string', default: '32' }, 'batch-delay-ms': { type: 'string', default: '2' }, threads: { type: 'string', default: '0' } } });
const maxBatch = Number(values['max-batch']);

const { spec, onnx } = mobilenet();
const runtime = await openRuntime('cpu', (m) => console.error(m), { worker: true });
const session = await runtime.createSession(onnx, { intraOpThreads: Number(values.threads) || undefined });
const image = (rows: number) => ({ image: { dtype: 'float32' as const, dims: [rows, 224, 224, 3], data: Float32Array.from({ length: rows * 224 * 224 * 3 }, (_, i) => ((i * 7919) % 256) / 255) } });

/** Median seconds of a bare session.run (same worker-thread session) at each batch size. */
const bare = new Map<number, number>();
async function bareRun(rows: number): Promise<number> {
  if (bare.has(rows)) return bare.get(rows)!;
  await session.run(image(rows));
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const feeds = image(rows);
    const started = performance.now();
    await session.run(feeds, { giveUpFeeds: true });
    times.push((performance.now() - started) / 1000);
  }
  const median = times.sort((a, b) => a - b)[1]!;
  bare.set(rows, median);
  return median;
}

const model = createPlainModel(spec, session, { maxBatch, maxQueue: 1024, delayMs: Number(values['batch-delay-ms']), timeoutMs: 600_000 });
let runs: RunRecord[] = [];
model.batcher.onRun((run) => runs.push(run));
const echo = echo224();
const echoSession = await runtime.createSession(echo.onnx);
const echoModel = createPlainModel(echo.spec, echoSession, { maxBatch, maxQueue: 1024, delayMs: Number(values['batch-delay-ms']), timeoutMs: 600_000 });
const app = createApp({ models: [], inferenceModels: [model, echoModel] });
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((resolve) => server.once('listening', resolve));
const address = server.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

async function client(args: string[]): Promise<{ requestsPerSecond: number; p50Ms: number; p99Ms: number; seconds: number; requests: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'serve-v2-client.ts'), '--url', url, ...args], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

/** Server time beyond bare session.run: (wall time of the phase - bare run time of its batches) / bare run time. */
async function overheadOf(phaseRuns: RunRecord[], seconds: number): Promise<number> {
  let bareSeconds = 0;
  for (const run of phaseRuns) bareSeconds += await bareRun(run.rows);
  return seconds / bareSeconds - 1;
}

const requests = Number(values.requests);
await client(['--concurrency', '1', '--requests', '1']);
runs = [];
const single = await client(['--concurrency', '1', '--requests', String(requests * 2)]);
const singleRuns = runs;
runs = [];
const many = await client(['--concurrency', '32', '--requests', String(requests)]);
const manyRuns = runs;
runs = [];
const json = await client(['--concurrency', '1', '--requests', String(requests), '--mode', 'json']);
const binary = await client(['--concurrency', '1', '--requests', String(requests), '--mode', 'binary']);
const echoArgs = ['--model', 'echo224', '--concurrency', '1', '--requests', String(requests * 2)];
await client([...echoArgs.slice(0, 2), '--requests', '1', '--mode', 'json']);
const echoJson = await client([...echoArgs, '--mode', 'json']);
const echoBinary = await client([...echoArgs, '--mode', 'binary']);

const result = {
  bench: 'serve-v2', model: 'mobilenet-v1 (random weights, 4.2M params)', machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`, date: new Date().toISOString().slice(0, 10),
  provider: session.provider,
  oneClient: { ...single, overhead: await overheadOf(singleRuns, single.seconds) },
  clients32: { ...many, overhead: await overheadOf(manyRuns, many.seconds), batchRows: manyRuns.map((r) => r.rows) },
  speedup32: many.requestsPerSecond / single.requestsPerSecond,
  bareRunMs: Object.fromEntries([...bare].sort((a, b) => a[0] - b[0]).map(([rows, s]) => [rows, +(s * 1000).toFixed(1)])),
  json, binary, binaryOverJson: json.p50Ms / binary.p50Ms,
  echo: { json: echoJson, binary: echoBinary, binaryOverJson: echoJson.p50Ms / echoBinary.p50Ms },
};
console.log(JSON.stringify(result));
server.close();
await session.release();
await echoSession.release();
