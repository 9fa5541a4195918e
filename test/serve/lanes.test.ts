import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.ts';
import { createLanes } from '../../src/serve/lanes.ts';
import { openModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { GREEDY } from '../../src/serve/sampling.ts';
import { createScheduler, type GenerationEvent, type GenerationRequest } from '../../src/serve/scheduler.ts';
import { createFakeDecoder, letterTokens, type FakeDecoder } from './fakes.ts';
import { buildPackages } from './packages.ts';

const tokens = letterTokens();
const request = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  prompt: tokens.encode('abc'), promptText: 'abc', n: 1, maxTokens: 12, sampling: { ...GREEDY, topK: 26 }, stop: [], logprobs: null, echo: false, ...over,
});

async function text(events: AsyncIterable<GenerationEvent>): Promise<string> {
  let out = '';
  for await (const event of events) if (event.type === 'text') out += event.text;
  return out;
}

function lanesOver(count: number, options: { maxBatch: number; maxQueue: number; stepMs?: number }): { lanes: ReturnType<typeof createLanes>; decoders: FakeDecoder[] } {
  const decoders = Array.from({ length: count }, () => createFakeDecoder({ vocab: 26, stepMs: options.stepMs }));
  return { lanes: createLanes(decoders.map((d) => createScheduler(d, tokens, options))), decoders };
}

test('requests spread over the lanes, and each gives the text it gives alone', async () => {
  const prompts = ['abc', 'hello', 'z', 'queue', 'batching', 'xy', 'lanes', 'q'];
  const alone = await Promise.all(prompts.map((p) => text(createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 1, maxQueue: 1 })
    .submit(request({ prompt: tokens.encode(p), promptText: p, maxTokens: 4 + p.length })))));
  const { lanes, decoders } = lanesOver(2, { maxBatch: 4, maxQueue: 4, stepMs: 1 });
  const together = await Promise.all(prompts.map((p) => text(lanes.submit(request({ prompt: tokens.encode(p), promptText: p, maxTokens: 4 + p.length })))));
  assert.deepEqual(together, alone);
  for (const [i, decoder] of decoders.entries()) assert.equal(Math.max(...decoder.batchSizes), 4, `lane ${i} ran a full batch: ${decoder.batchSizes}`);
  assert.equal(lanes.active, 0);
});

test('active, queued and step listeners add up over the lanes; idle waits for all', async () => {
  const { lanes } = lanesOver(2, { maxBatch: 1, maxQueue: 1, stepMs: 2 });
  const sizes: number[] = [];
  lanes.onStep((size) => sizes.push(size));
  const running = [0, 1, 2, 3].map(() => text(lanes.submit(request({ maxTokens: 5 }))));
  assert.deepEqual([lanes.queued, lanes.active], [4, 0], 'each lane starts its loop on the next tick');
  await lanes.idle();
  assert.equal(lanes.active + lanes.queued, 0);
  assert.equal((await Promise.all(running)).length, 4);
  // Five tokens take four steps: the first comes from the prefill.
  assert.equal(sizes.length, 4 * 4, 'every step of every lane reaches the listener');
});

test('a request goes to another lane when one is full, and is refused with 429 only when all are', async () => {
  const { lanes } = lanesOver(2, { maxBatch: 1, maxQueue: 1, stepMs: 2 });
  const admitted = [0, 1, 2, 3].map(() => lanes.submit(request({ maxTokens: 3 })));
  assert.throws(() => lanes.submit(request()), (error: unknown) => error instanceof FerryError && error.status === 429);
  await Promise.all(admitted.map(text));
  const { lanes: one } = lanesOver(2, { maxBatch: 2, maxQueue: 1 });
  assert.throws(() => one.submit(request({ n: 3 })), (error: unknown) => error instanceof FerryError && error.code === 'n_too_large', 'other refusals are not retried');
});

test('openModel with two lanes serves the greedy texts of one lane, from one session', async () => {
  const packages = await buildPackages();
  try {
    const runtime = await openRuntime('cpu', () => {}, { worker: true });
    const texts: string[][] = [];
    for (const lanes of [1, 2]) {
      const model = await openModel(packages.transformer, { runtime, maxBatch: 8, maxQueue: 8, lanes });
      const prompts = ['to be', 'or not', 'ROMEO:', 'héllo', 'the question', 'café'];
      texts.push(await Promise.all(prompts.map((p) => text(model.scheduler.submit({
        ...request(), prompt: model.tokenizer.encode(p), promptText: p, maxTokens: 12, sampling: GREEDY, ignoreEos: true,
      })))));
      await model.close();
    }
    assert.deepEqual(texts[1], texts[0]);
    assert.ok(texts[0]!.every((t) => t.length > 0));
  } finally {
    await packages.remove();
  }
});
