import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.ts';
import { GREEDY } from '../../src/serve/sampling.ts';
import { createScheduler, type GenerationEvent, type GenerationRequest } from '../../src/serve/scheduler.ts';
import { slidingWindow } from '../../src/package/sliding-window.ts';
import { createFakeDecoder, letterTokens } from './fakes.ts';

const tokens = letterTokens();
const request = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  prompt: tokens.encode('abc'), promptText: 'abc', n: 1, maxTokens: 12, sampling: { ...GREEDY, topK: 26 }, stop: [], logprobs: null, echo: false, ...over,
});

async function collect(events: AsyncIterable<GenerationEvent>) {
  const texts: string[] = [];
  const finish: string[] = [];
  let usage: GenerationEvent | undefined;
  for await (const event of events) {
    if (event.type === 'text') texts[event.index] = (texts[event.index] ?? '') + event.text;
    else if (event.type === 'finish') finish[event.index] = event.reason;
    else usage = event;
  }
  return { texts, finish, usage };
}

test('concurrent greedy requests are batched and give the texts they give alone', async () => {
  const prompts = ['abc', 'hello', 'z', 'queue', 'batching', 'xy'];
  const alone = [];
  for (const p of prompts) {
    const scheduler = createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 8, maxQueue: 8 });
    alone.push(await collect(scheduler.submit(request({ prompt: tokens.encode(p), promptText: p, maxTokens: 5 + p.length }))));
  }
  const decoder = createFakeDecoder({ vocab: 26 });
  const scheduler = createScheduler(decoder, tokens, { maxBatch: 4, maxQueue: 8 });
  const together = await Promise.all(prompts.map((p) => collect(scheduler.submit(request({ prompt: tokens.encode(p), promptText: p, maxTokens: 5 + p.length })))));
  assert.deepEqual(together, alone);
  assert.equal(Math.max(...decoder.batchSizes), 4, `batch sizes ${decoder.batchSizes}`);
  assert.equal(decoder.prefillSizes[0], 4, 'the first four prompts are prefilled in one run');
  assert.equal(together[0]!.texts[0]!.length, 8);
  assert.deepEqual(together[0]!.usage, { type: 'usage', promptTokens: 3, completionTokens: 8 });
  assert.equal(scheduler.active, 0);
});

test('a full queue is refused at once with a 429; the waiting request runs when a slot frees', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, stepMs: 2 }), tokens, { maxBatch: 1, maxQueue: 1 });
  const first = scheduler.submit(request());
  const second = scheduler.submit(request());
  assert.throws(() => scheduler.submit(request()), (error: unknown) => error instanceof FerryError && error.status === 429);
  const [a, b] = await Promise.all([collect(first), collect(second)]);
  assert.equal(a.texts[0], b.texts[0]);
  assert.equal(scheduler.queued, 0);
});

test('an aborted request leaves the batch within one step; the others finish', async () => {
  const decoder = createFakeDecoder({ vocab: 26, stepMs: 1 });
  const scheduler = createScheduler(decoder, tokens, { maxBatch: 4, maxQueue: 4 });
  const abort = new AbortController();
  const doomed = scheduler.submit(request({ maxTokens: 1000, signal: abort.signal }));
  const survivor = collect(scheduler.submit(request({ maxTokens: 30 })));
  let seen = 0;
  for await (const event of doomed) if (event.type === 'text' && ++seen === 5) abort.abort();
  const stepsAtAbort = decoder.batchSizes.length;
  assert.equal((await survivor).texts[0]!.length, 30);
  assert.ok(decoder.batchSizes.slice(stepsAtAbort + 1).every((size) => size === 1), `batch sizes after abort: ${decoder.batchSizes.slice(stepsAtAbort)}`);
  assert.equal(scheduler.active, 0);
});

test('leaving the event loop early (client gone) cancels the sequence', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, stepMs: 1 }), tokens, { maxBatch: 4, maxQueue: 4 });
  for await (const event of scheduler.submit(request({ maxTokens: 1000 }))) if (event.type === 'text') break;
  await scheduler.idle();
  assert.equal(scheduler.active, 0);
});

test('a request past its deadline fails with 504', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, stepMs: 5 }), tokens, { maxBatch: 4, maxQueue: 4 });
  await assert.rejects(collect(scheduler.submit(request({ maxTokens: 1000, deadline: Date.now() + 30 }))), (error: unknown) =>
    error instanceof FerryError && error.status === 504 && /deadline/.test(error.message));
  assert.equal(scheduler.active, 0);
});

test('a queued request whose deadline passes while it waits fails with 504 before it gets a slot', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, stepMs: 2 }), tokens, { maxBatch: 1, maxQueue: 1 });
  const long = collect(scheduler.submit(request({ maxTokens: 200 })));
  await assert.rejects(collect(scheduler.submit(request({ deadline: Date.now() + 20 }))), (error: unknown) => error instanceof FerryError && error.status === 504);
  assert.equal(scheduler.active, 1, 'it failed while the long request still held the only slot');
  assert.equal(scheduler.queued, 0);
  assert.equal((await long).texts[0]!.length, 200);
});

test('generation stops at the context length with finish_reason length', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, contextLength: 7 }), tokens, { maxBatch: 4, maxQueue: 4 });
  const out = await collect(scheduler.submit(request({ maxTokens: 100 })));
  assert.equal(out.texts[0]!.length, 4);
  assert.deepEqual(out.finish, ['length']);
  assert.throws(() => scheduler.submit(request({ prompt: tokens.encode('abcdefg'), promptText: 'abcdefg' })), /context holds 7/);
});

test('over a sliding decoder generation goes past the context, and finish_reason length means max_tokens', async () => {
  const scheduler = createScheduler(slidingWindow(createFakeDecoder({ vocab: 26, contextLength: 7 }), 'reencode'), tokens, { maxBatch: 4, maxQueue: 4 });
  const out = await collect(scheduler.submit(request({ maxTokens: 30 })));
  assert.equal(out.texts[0]!.length, 30);
  assert.deepEqual(out.finish, ['length']);
  assert.throws(() => scheduler.submit(request({ prompt: tokens.encode('abcdefg'), promptText: 'abcdefg' })), /context holds 7/, 'a prompt must still fit the window');
});

test('the end-of-text token stops a choice with finish_reason stop and is not shown', async () => {
  const greedy = await collect(createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 1, maxQueue: 1 }).submit(request({ maxTokens: 6 })));
  const eos = tokens.encode(greedy.texts[0]![3]!)[0]!;
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26 }), letterTokens(eos), { maxBatch: 1, maxQueue: 1 });
  const out = await collect(scheduler.submit(request({ maxTokens: 6 })));
  assert.equal(out.texts[0], greedy.texts[0]!.slice(0, greedy.texts[0]!.indexOf(greedy.texts[0]![3]!)));
  assert.deepEqual(out.finish, ['stop']);
});

test('n choices with a seed: repeatable, different from each other; max_tokens 0 generates nothing', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 4, maxQueue: 4 });
  const sampled = { ...GREEDY, temperature: 1 };
  const a = await collect(scheduler.submit(request({ n: 3, seed: 5, sampling: sampled })));
  const b = await collect(scheduler.submit(request({ n: 3, seed: 5, sampling: sampled })));
  const c = await collect(scheduler.submit(request({ n: 3, seed: 6, sampling: sampled })));
  assert.deepEqual(a.texts, b.texts);
  assert.notDeepEqual(a.texts, c.texts);
  assert.equal(new Set(a.texts).size, 3);
  assert.deepEqual(a.usage, { type: 'usage', promptTokens: 3, completionTokens: 36 });
  const none = await collect(scheduler.submit(request({ maxTokens: 0, echo: true })));
  assert.deepEqual(none.texts, ['abc']);
  assert.deepEqual(none.finish, ['length']);
  assert.throws(() => scheduler.submit(request({ n: 5 })), /n=5 exceeds this server's batch size of 4/);
});

test('echo with logprobs scores the prompt: first token null, others the model\'s log-probabilities', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 1, maxQueue: 1 });
  const events: GenerationEvent[] = [];
  for await (const event of scheduler.submit(request({ maxTokens: 0, echo: true, logprobs: 2 }))) events.push(event);
  const echoed = events[0]!;
  assert.equal(echoed.type, 'text');
  if (echoed.type !== 'text') return;
  assert.deepEqual(echoed.logprobs.map((e) => e.token), ['a', 'b', 'c']);
  assert.equal(echoed.logprobs[0]!.logprob, null);
  assert.ok(echoed.logprobs.slice(1).every((e) => e.logprob! < 0 && Object.keys(e.top!).length >= 2 && Object.keys(e.top!).length <= 3 && e.top![e.token] === e.logprob));
  assert.deepEqual(echoed.logprobs.map((e) => e.offset), [0, 1, 2]);
});

test('a failing model step fails the requests in that batch, and the scheduler keeps serving', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, failAtStep: 3 }), tokens, { maxBatch: 2, maxQueue: 2 });
  await assert.rejects(collect(scheduler.submit(request())), /fell over/);
  assert.equal(scheduler.active, 0);
  assert.equal((await collect(scheduler.submit(request()))).texts[0]!.length, 12);
});

test('--max-queue is exact: requests arriving while others are being prefilled count against it', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, stepMs: 20 }), tokens, { maxBatch: 2, maxQueue: 3 });
  const accepted = [scheduler.submit(request({ maxTokens: 50 })), scheduler.submit(request({ maxTokens: 50 }))];
  // Let the loop take the first two off the queue; their prefill now takes 20 ms.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const refusals: string[] = [];
  for (let i = 0; i < 10; i++) {
    try {
      accepted.push(scheduler.submit(request({ maxTokens: 5 })));
    } catch (error) {
      assert.ok(error instanceof FerryError && error.status === 429);
      refusals.push(error.message);
    }
  }
  assert.equal(accepted.length, 5, 'two in the batch, three waiting');
  assert.equal(refusals.length, 7);
  assert.ok(refusals.every((m) => m.includes('3 requests are already waiting')), refusals[0]);
  await Promise.all(accepted.map(collect));
  assert.equal(scheduler.capacity(1), 5);
  assert.equal(scheduler.capacity(2), 4);
  assert.equal(scheduler.capacity(3), 0);
});

test('a prompt of exactly the context length can be scored (echo, max_tokens 0) but not continued', async () => {
  const scheduler = createScheduler(createFakeDecoder({ vocab: 26, contextLength: 7 }), tokens, { maxBatch: 4, maxQueue: 4 });
  const full = { prompt: tokens.encode('abcdefg'), promptText: 'abcdefg' };
  const scored = await collect(scheduler.submit(request({ ...full, maxTokens: 0, echo: true, logprobs: 0 })));
  assert.deepEqual(scored.texts, ['abcdefg']);
  assert.deepEqual(scored.finish, ['length']);
  assert.throws(() => scheduler.submit(request({ ...full, maxTokens: 1 })), /context holds 7/);
  assert.throws(() => scheduler.submit(request({ prompt: tokens.encode('abcdefgh'), promptText: 'abcdefgh', maxTokens: 0 })), /context holds 7/);
});

/** Waits for the running stream's first token, then submits `long`: the stream is in the batch while `long` is admitted. */
async function admitWhileStreaming(scheduler: ReturnType<typeof createScheduler>, long: GenerationRequest) {
  const events = scheduler.submit(request({ maxTokens: 30 }))[Symbol.asyncIterator]();
  const first = await events.next();
  const chunkedRequest = scheduler.submit(long);
  const rest = collect({ [Symbol.asyncIterator]: () => events });
  return { first: first.value as GenerationEvent, long: chunkedRequest, rest };
}

const longPrompt = 'thelongpromptentersinpartsbetweendecodesteps';

test('a long prompt enters in parts with a decode step of the running stream between every two, and both get their texts alone', async () => {
  const alone = await collect(createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 4, maxQueue: 4, prefillChunk: 1000 })
    .submit(request({ prompt: tokens.encode(longPrompt), promptText: longPrompt, n: 2, maxTokens: 5 })));
  const decoder = createFakeDecoder({ vocab: 26 });
  const scheduler = createScheduler(decoder, tokens, { maxBatch: 4, maxQueue: 4, prefillChunk: 8 });
  const { first, long, rest } = await admitWhileStreaming(scheduler, request({ prompt: tokens.encode(longPrompt), promptText: longPrompt, n: 2, maxTokens: 5 }));
  assert.deepEqual(await collect(long), alone, 'the chunked request (both choices) gets the text of a one-shot prefill');
  const stream = await rest;
  assert.equal(first.type === 'text' && first.text + stream.texts[0], (await collect(createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 1, maxQueue: 1 }).submit(request({ maxTokens: 30 })))).texts[0]);
  const parts = decoder.calls.filter((call) => call.startsWith('extend'));
  assert.deepEqual(parts, ['extend 8', 'extend 8', 'extend 8', 'extend 8', 'extend 8', 'extend 4'], `${longPrompt.length} tokens in parts of 8`);
  const from = decoder.calls.indexOf('extend 8');
  const to = decoder.calls.lastIndexOf('extend 4');
  assert.deepEqual(decoder.calls.slice(from, to + 2), [...parts.slice(0, -1).flatMap((part) => [part, 'step 1']), 'extend 4', 'step 3'],
    'one step of the running stream after every part; after the last, the two choices join it');
  assert.equal(decoder.held, 0);
});

test('a long prompt echoed with logprobs scores the same in parts as in one prefill', async () => {
  const echoed = request({ prompt: tokens.encode(longPrompt), promptText: longPrompt, maxTokens: 3, echo: true, logprobs: 2 });
  const whole = await collect(createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 1, maxQueue: 1, prefillChunk: 1000 }).submit(echoed));
  const events: GenerationEvent[][] = [];
  for (const prefillChunk of [1000, 7]) {
    const seen: GenerationEvent[] = [];
    for await (const event of createScheduler(createFakeDecoder({ vocab: 26 }), tokens, { maxBatch: 1, maxQueue: 1, prefillChunk }).submit(echoed)) seen.push(event);
    events.push(seen);
  }
  assert.deepEqual(events[1], events[0]);
  assert.equal(whole.texts[0]!.slice(0, longPrompt.length), longPrompt);
});

test('a long prompt cancelled between its parts frees its slot and its held state at the next turn', async () => {
  const decoder = createFakeDecoder({ vocab: 26 });
  // maxQueue 0: a request that must wait for a slot is refused, so a held slot would show as a 429.
  const scheduler = createScheduler(decoder, tokens, { maxBatch: 2, maxQueue: 0, prefillChunk: 8 });
  const abort = new AbortController();
  const released = new Promise<void>((resolve) => scheduler.onStep(() => {
    if (decoder.calls.filter((call) => call === 'extend 8').length === 2) abort.abort();
    if (decoder.calls.includes('release')) resolve();
  }));
  const { long, rest } = await admitWhileStreaming(scheduler, request({ prompt: tokens.encode(longPrompt), promptText: longPrompt, signal: abort.signal }));
  assert.throws(() => scheduler.submit(request()), (error: unknown) => error instanceof FerryError && error.status === 429, 'both slots are taken meanwhile');
  assert.deepEqual((await collect(long)).texts, [], 'the cancelled request streams nothing');
  await released;
  assert.deepEqual(decoder.calls.filter((call) => call.startsWith('extend')), ['extend 8', 'extend 8'], 'no part runs after the cancel');
  assert.equal(decoder.held, 0);
  const after = collect(scheduler.submit(request({ maxTokens: 3 })));
  assert.equal((await after).texts[0]!.length, 3, 'the freed slot takes a new request');
  await rest;
  assert.equal(scheduler.active, 0);
});
