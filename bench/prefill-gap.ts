/**
 * Chunked prefill: what a long prompt admitted mid-stream costs the stream already running. One
 * stream runs; an 8,192-character prompt is then submitted to the same model; the stream's
 * inter-token gaps from that moment until the long request's first token (and a few tokens
 * after) are recorded, with `--prefill-chunk` (default) and without (one-shot prefill), the
 * two interleaved round by round over the same package, session in its worker thread.
 *
 *   node --import tsx bench/prefill-gap.ts [DIR] [--rounds 5] [--chunk 256]
 *
 * Prints, per setting, the medians over rounds of the worst and median gap and of the long
 * request's time to first token, as JSON.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { openModel } from '../src/serve/model.ts';
import { openRuntime } from '../src/serve/runtime/index.ts';
import { GREEDY } from '../src/serve/sampling.ts';
import type { GenerationRequest } from '../src/serve/scheduler.ts';
import { PROMPTS } from './serve-prompts.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '5' }, chunk: { type: 'string', default: '256' } } });
const dir = positionals[0] ?? 'models/shakespeare-lstm';
const runtime = await openRuntime('cpu', (m) => console.error(m), { worker: true });
const settings = { chunked: Number(values.chunk), oneShot: Number.MAX_SAFE_INTEGER };
const models = Object.fromEntries(await Promise.all(Object.entries(settings).map(async ([name, prefillChunk]) => [name, await openModel(dir, { runtime, maxBatch: 8, maxQueue: 8, prefillChunk })] as const)));
const tokenizer = Object.values(models)[0]!.tokenizer;
let longText = '';
while (longText.length < 8192) longText += `${PROMPTS[longText.length % PROMPTS.length]} `;
longText = longText.slice(0, 8192);
const longIds = tokenizer.encode(longText);
const ask = (prompt: string, maxTokens: number, signal?: AbortSignal): GenerationRequest => ({
  prompt: tokenizer.encode(prompt), promptText: prompt, n: 1, maxTokens, sampling: GREEDY, stop: [], logprobs: null, echo: false, ignoreEos: true, signal,
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function round(name: keyof typeof settings): Promise<{ worstGapMs: number; medianGapMs: number; ttftMs: number }> {
  const { scheduler } = models[name]!;
  const abort = new AbortController();
  const times: number[] = [];
  let submitted = Infinity;
  let firstLong = Infinity;
  let afterLong = 0;
  let admitted!: () => void;
  const warm = new Promise<void>((resolve) => (admitted = resolve));
  const stream = (async () => {
    try {
      for await (const event of scheduler.submit(ask(PROMPTS[0]!, 1_000_000, abort.signal))) {
        if (event.type !== 'text') continue;
        times.push(performance.now());
        if (times.length === 10) admitted();
        if (times.at(-1)! > firstLong && ++afterLong === 5) abort.abort();
      }
    } catch { /* aborted */ }
  })();
  await warm;
  submitted = performance.now();
  for await (const event of scheduler.submit(ask(longText, 1))) if (event.type === 'text' && firstLong === Infinity) firstLong = performance.now();
  await stream;
  const window = times.filter((t) => t >= submitted);
  const gaps = window.map((t, i) => t - (i ? window[i - 1]! : times[times.indexOf(t) - 1]!));
  return { worstGapMs: Math.max(...gaps), medianGapMs: median(gaps), ttftMs: firstLong - submitted };
}

await round('chunked');
await round('oneShot');
const results: Record<string, { worstGapMs: number[]; medianGapMs: number[]; ttftMs: number[] }> = {};
for (let r = 0; r < Number(values.rounds); r++) {
  for (const name of Object.keys(settings) as (keyof typeof settings)[]) {
    const row = await round(name);
    const into = (results[name] ??= { worstGapMs: [], medianGapMs: [], ttftMs: [] });
    for (const key of Object.keys(row) as (keyof typeof row)[]) into[key].push(row[key]);
  }
}
const summary = Object.fromEntries(Object.entries(results).map(([name, r]) => [name, {
  worstGapMs: +median(r.worstGapMs).toFixed(1), medianGapMs: +median(r.medianGapMs).toFixed(1), ttftMs: +median(r.ttftMs).toFixed(0), worstGapsMs: r.worstGapMs.map((x) => +x.toFixed(1)),
}]));
console.log(JSON.stringify({
  bench: 'prefill-gap', model: Object.values(models)[0]!.id, promptChars: longText.length, promptTokens: longIds.length, chunk: settings.chunked, rounds: Number(values.rounds), ...summary,
  worstGapRatio: +(summary.oneShot!.worstGapMs / summary.chunked!.worstGapMs).toFixed(1),
}));
await Promise.all(Object.values(models).map((m) => m.close()));
