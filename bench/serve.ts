/**
 * Serving benchmark over HTTP on loopback (issue: serving). For every model: single-stream
 * tokens/s and ms/token, aggregate tokens/s at 1, 8 and 32 concurrent streams (and the speedup
 * over one stream), p50/p99 time to first token, and RSS after the runs and after --soak seconds
 * more of load (flat means no leak).
 *
 *   node --import tsx bench/serve.ts [DIR...] [--tokens 60] [--rounds 3] [--soak SECONDS] [--threads N] [--lanes N] [--device cpu] [--no-worker]
 *
 * With no DIR it serves models/, or random-weight models of the shipped shapes when models/ is
 * empty. The server runs in this process (its RSS is the one reported); the load comes from
 * bench/serve-client.ts in a process of its own, over 127.0.0.1. Prints a table and one JSON
 * line for BENCHMARKS.md.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
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

interface Phase { tokensPerSecond: number; ttftP50Ms: number; ttftP99Ms: number; msPerToken: number }

/** Runs bench/serve-client.ts against the server in a process of its own and returns its JSON line. */
async function client(args: string[]): Promise<unknown> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'serve-client.ts'), '--url', server.url, ...args], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

const rssMB = () => Math.round(process.memoryUsage().rss / 2 ** 20);

const report: Record<string, unknown> = { tokensPerStream: tokens, rounds, device: models[0]?.provider, threads: Number(values.threads) || 'default', worker: !values['no-worker'], lanes: values.lanes ?? 'default', cpus: os.cpus().length, loadAverage: os.loadavg()[0] };
const rssBefore = rssMB();
for (const model of models) {
  const byModel = (await client(['--model', model.id, '--rounds', String(rounds), '--tokens', String(tokens)])) as Record<string, Record<string, Phase>>;
  const byConcurrency = byModel[model.id]!;
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
  // RSS each minute while the client loads the server, so a trend (a leak) shows apart from the
  // heap settling after the first runs.
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(rssMB()), 60_000);
  report.soak = await client([...models.flatMap((m) => ['--model', m.id]), '--soak', String(soakSeconds), '--tokens', String(tokens)]);
  clearInterval(sampler);
  report.soakSeconds = soakSeconds;
  report.rssEachMinuteMB = samples;
}
report.rssBeforeMB = rssBefore;
report.rssAfterSoakMB = soakSeconds > 0 ? rssMB() : undefined;
console.log(`RSS ${rssBefore} MB warm, ${report.rssAfterLoadMB} MB after the runs${soakSeconds > 0 ? `, ${report.rssAfterSoakMB} MB after ${soakSeconds} s more of load` : ''}`);
console.log(JSON.stringify(report));
await server.close();
if (scratch) await rm(scratch, { recursive: true, force: true });
