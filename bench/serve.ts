/**
 * Serving benchmark over HTTP on loopback (issue: serving). For every model: single-stream
 * tokens/s and ms/token, aggregate tokens/s at 1, 8 and 32 concurrent streams (and the speedup
 * over one stream), p50/p99 time to first token, and RSS after the runs and after --soak seconds
 * more of load (flat means no leak).
 *
 *   node --import tsx bench/serve.ts [DIR...] [--tokens 60] [--rounds 3] [--soak SECONDS] [--threads N] [--lanes N] [--device cpu] [--no-worker]
 *
 * With no DIR it serves models/, or random-weight models of the shipped shapes when models/ is
 * empty. The server runs in this process; the client is node:http over 127.0.0.1. Prints a table and
 * one JSON line for BENCHMARKS.md.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { startServer } from '../src/serve/node.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tokens: { type: 'string', default: '60' }, rounds: { type: 'string', default: '3' }, soak: { type: 'string', default: '0' },
    threads: { type: 'string', default: '0' }, device: { type: 'string', default: 'cpu' }, 'no-worker': { type: 'boolean', default: false },
    lanes: { type: 'string' },
  },
});
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const soakSeconds = Number(values.soak);

let scratch: string | undefined;
let dirs = positionals;
if (!dirs.length) {
  const shipped = existsSync('models') && readdirSync('models').some((d) => existsSync(path.join('models', d, 'ferry.json')));
  if (shipped) {
    dirs = ['models'];
  } else {
    scratch = await mkdtemp(path.join(tmpdir(), 'ferry-bench-'));
    console.error('models/ is empty: exporting random-weight models of the shipped shapes');
    await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/serve-random-models.ts', scratch]);
    dirs = [path.join(scratch, 'models')];
  }
}

const server = await startServer({ dirs, port: 0, host: '127.0.0.1', maxBatch: 32, maxQueue: 256, device: values.device, threads: Number(values.threads) || undefined, worker: !values['no-worker'], lanes: values.lanes === undefined ? undefined : Number(values.lanes), log: (m) => console.error(m) });
const models = await server.models;
const PROMPTS = ['ROMEO:', 'First Citizen:', 'To be, or not', 'KING HENRY', 'O, what a', 'JULIET:\nWhat', 'Now is the winter', 'All:'];

interface StreamResult { tokens: number; ttftMs: number; totalMs: number }

// The load generator is node:http with keep-alive, not fetch: on two cores the client shares the
// CPU with the server, and fetch's web-stream body reader costs several times more per chunk.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function stream(model: string, i: number): Promise<StreamResult> {
  const started = performance.now();
  const body = JSON.stringify({ model, prompt: PROMPTS[i % PROMPTS.length], max_tokens: tokens, temperature: 0.8, seed: i, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/v1/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let ttftMs = -1;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (ttftMs < 0) ttftMs = performance.now() - started;
        text += chunk;
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
        const usage = text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6))).find((c) => c.usage)?.usage;
        resolve({ tokens: usage.completion_tokens, ttftMs, totalMs: performance.now() - started });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const rssMB = () => Math.round(process.memoryUsage().rss / 2 ** 20);

const report: Record<string, unknown> = { tokensPerStream: tokens, rounds, device: models[0]?.provider, threads: Number(values.threads) || 'default', worker: !values['no-worker'], lanes: values.lanes ?? 'default', cpus: os.cpus().length, loadAverage: os.loadavg()[0] };
const rssBefore = rssMB();
for (const model of models) {
  for (let i = 0; i < 20; i++) await stream(model.id, i);
  const byConcurrency: Record<number, { tokensPerSecond: number; ttftP50Ms: number; ttftP99Ms: number; msPerToken: number }> = {};
  for (const concurrency of [1, 8, 32]) {
    let produced = 0;
    let elapsed = 0;
    const ttfts: number[] = [];
    const perToken: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(model.id, round * concurrency + i)));
      elapsed += performance.now() - started;
      for (const r of results) {
        produced += r.tokens;
        ttfts.push(r.ttftMs);
        perToken.push((r.totalMs - r.ttftMs) / Math.max(1, r.tokens - 1));
      }
    }
    byConcurrency[concurrency] = {
      tokensPerSecond: Math.round(produced / (elapsed / 1000)),
      ttftP50Ms: +percentile(ttfts, 50).toFixed(2),
      ttftP99Ms: +percentile(ttfts, 99).toFixed(2),
      msPerToken: +percentile(perToken, 50).toFixed(3),
    };
  }
  const single = byConcurrency[1]!.tokensPerSecond;
  report[model.id] = {
    arch: model.arch,
    ...Object.fromEntries(Object.entries(byConcurrency).map(([c, v]) => [`streams${c}`, v])),
    speedup8: +(byConcurrency[8]!.tokensPerSecond / single).toFixed(2),
    speedup32: +(byConcurrency[32]!.tokensPerSecond / single).toFixed(2),
  };
  console.log(`${model.id} (${model.arch}, ${model.provider})`);
  for (const [c, v] of Object.entries(byConcurrency)) {
    console.log(`  ${c.padStart(2)} streams: ${String(v.tokensPerSecond).padStart(6)} tok/s  ${v.msPerToken} ms/token/stream  ttft p50 ${v.ttftP50Ms} ms p99 ${v.ttftP99Ms} ms`);
  }
}
report.rssAfterLoadMB = rssMB();
if (soakSeconds > 0) {
  const until = performance.now() + soakSeconds * 1000;
  let i = 0;
  while (performance.now() < until) await Promise.all(models.flatMap((m) => Array.from({ length: 8 }, () => stream(m.id, i++))));
  report.soakSeconds = soakSeconds;
}
report.rssBeforeMB = rssBefore;
report.rssAfterSoakMB = soakSeconds > 0 ? rssMB() : undefined;
console.log(`RSS ${rssBefore} MB warm, ${report.rssAfterLoadMB} MB after the runs${soakSeconds > 0 ? `, ${report.rssAfterSoakMB} MB after ${soakSeconds} s more of load` : ''}`);
console.log(JSON.stringify(report));
await server.close();
if (scratch) await rm(scratch, { recursive: true, force: true });
