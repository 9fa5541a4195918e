/**
 * The load generator of bench/serve.ts, in a process of its own as real clients are: streamed
 * completions over node:http with keep-alive (fetch's web-stream body reader costs several
 * times more per chunk). Works against any ferry or OpenAI-compatible server:
 *
 *   node --import tsx bench/serve-client.ts --url http://127.0.0.1:8080 --model NAME [--concurrency 1,8,32] [--rounds 3] [--tokens 60] [--warmup 20]
 *   node --import tsx bench/serve-client.ts --url ... --model A --model B --soak 600   # 8 streams per model, until the time is up
 *
 * Prints one JSON line: per concurrency, tokens/s, TTFT p50/p99 and ms/token per stream.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PROMPTS } from './serve-prompts.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' }, model: { type: 'string', multiple: true }, concurrency: { type: 'string', default: '1,8,32' },
    rounds: { type: 'string', default: '3' }, tokens: { type: 'string', default: '60' }, warmup: { type: 'string', default: '20' },
    soak: { type: 'string', default: '0' },
  },
});
if (!values.url || !values.model?.length) throw new Error('usage: serve-client.ts --url URL --model NAME [...]');
const url = `${values.url.replace(/\/$/, '')}/v1/completions`;
const tokens = Number(values.tokens);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

interface StreamResult { tokens: number; ttftMs: number; totalMs: number }

function stream(model: string, i: number): Promise<StreamResult> {
  const started = performance.now();
  const body = JSON.stringify({ model, prompt: PROMPTS[i % PROMPTS.length], max_tokens: tokens, temperature: 0.8, seed: i, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
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

const soakSeconds = Number(values.soak);
if (soakSeconds > 0) {
  const until = performance.now() + soakSeconds * 1000;
  let i = 0;
  let produced = 0;
  while (performance.now() < until) {
    const results = await Promise.all(values.model.flatMap((m) => Array.from({ length: 8 }, () => stream(m, i++))));
    produced += results.reduce((sum, r) => sum + r.tokens, 0);
  }
  console.log(JSON.stringify({ soakSeconds, requests: i, tokens: produced }));
} else {
  const report: Record<string, Record<string, { tokensPerSecond: number; ttftP50Ms: number; ttftP99Ms: number; msPerToken: number }>> = {};
  for (const model of values.model) {
    for (let i = 0; i < Number(values.warmup); i++) await stream(model, i);
    report[model] = {};
    for (const concurrency of values.concurrency.split(',').map(Number)) {
      let produced = 0;
      let elapsed = 0;
      const ttfts: number[] = [];
      const perToken: number[] = [];
      for (let round = 0; round < Number(values.rounds); round++) {
        const started = performance.now();
        const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(model, round * concurrency + i)));
        elapsed += performance.now() - started;
        for (const r of results) {
          produced += r.tokens;
          ttfts.push(r.ttftMs);
          perToken.push((r.totalMs - r.ttftMs) / Math.max(1, r.tokens - 1));
        }
      }
      report[model][concurrency] = {
        tokensPerSecond: Math.round(produced / (elapsed / 1000)),
        ttftP50Ms: +percentile(ttfts, 50).toFixed(2),
        ttftP99Ms: +percentile(ttfts, 99).toFixed(2),
        msPerToken: +percentile(perToken, 50).toFixed(3),
      };
    }
  }
  console.log(JSON.stringify(report));
}
agent.destroy();
