/**
 * The serving engine without HTTP: continuous batching driven directly through a model's
 * scheduler (the session in its worker thread, as `ferry serve` runs it), so that the model and
 * scheduler's share of bench/serve.ts's figures shows apart from SSE and the load generator.
 *
 *   node --import tsx bench/serve-scheduler.ts [DIR] [--tokens 60] [--rounds 3] [--threads N]
 *
 * Prints tokens/s at 1, 8 and 32 concurrent sequences and the speedup over one, as JSON.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { openModel } from '../src/serve/model.ts';
import { openRuntime } from '../src/serve/runtime/index.ts';
import { PROMPTS } from './serve-prompts.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { tokens: { type: 'string', default: '60' }, rounds: { type: 'string', default: '3' }, threads: { type: 'string', default: '0' } },
});
const dir = positionals[0] ?? 'models/shakespeare-transformer';
const model = await openModel(dir, { runtime: await openRuntime('cpu', (m) => console.error(m), { worker: true }), maxBatch: 32, maxQueue: 256, threads: Number(values.threads) || undefined });
const sampling = { temperature: 0.8, topK: 40, topP: 1, minP: 0, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, logitBias: new Map<number, number>() };

async function sequence(i: number): Promise<number> {
  let tokens = 0;
  const prompt = PROMPTS[i % PROMPTS.length]!;
  for await (const event of model.scheduler.submit({ prompt: model.tokenizer.encode(prompt), promptText: prompt, n: 1, maxTokens: Number(values.tokens), sampling, seed: i, stop: [], logprobs: null, echo: false, ignoreEos: true })) {
    if (event.type === 'text') tokens += event.tokens;
  }
  return tokens;
}

for (let i = 0; i < 20; i++) await sequence(i);
const tokensPerSecond: Record<number, number> = {};
for (const concurrency of [1, 8, 32]) {
  const started = performance.now();
  let produced = 0;
  for (let round = 0; round < Number(values.rounds); round++) {
    produced += (await Promise.all(Array.from({ length: concurrency }, (_, i) => sequence(round * concurrency + i)))).reduce((a, b) => a + b, 0);
  }
  tokensPerSecond[concurrency] = Math.round(produced / ((performance.now() - started) / 1000));
}
console.log(JSON.stringify({ bench: 'serve-scheduler', model: model.id, provider: model.provider, tokensPerSecond, speedup32: +(tokensPerSecond[32]! / tokensPerSecond[1]!).toFixed(2) }));
await model.close();
