import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createApp } from '../../src/serve/app.ts';
import { openModel, type ServedModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { buildPackages, openAIClientFor, openTestModels, type TestPackages } from './packages.ts';

let packages: TestPackages;
let models: ServedModel[];
let app: ReturnType<typeof createApp>;
let client: OpenAI;

const post = (target: { request: typeof app.request }, body: unknown, headers: Record<string, string> = {}) =>
  target.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

before(async () => {
  packages = await buildPackages();
  models = await openTestModels(packages);
  app = createApp({ models });
  client = openAIClientFor(app);
});

after(async () => {
  for (const model of models) await model.close();
  await packages.remove();
});

async function streamText(model: string, params: Omit<OpenAI.CompletionCreateParamsStreaming, 'model' | 'stream'>) {
  const stream = await client.completions.create({ model, stream: true, ...params });
  const texts: string[] = [];
  const finish: (string | null)[] = [];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      texts[choice.index] = (texts[choice.index] ?? '') + choice.text;
      assert.ok(!/[\ud800-\udbff]$/.test(choice.text), 'a chunk never ends inside a surrogate pair');
      if (choice.finish_reason) finish[choice.index] = choice.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { texts, finish, usage };
}

for (const arch of ['lstm', 'transformer'] as const) {
  const id = `tiny-${arch}`;

  test(`${arch}: the openai client gets the same greedy text streamed and not, with usage`, async () => {
    const eos = models.find((m) => m.id === id)!.tokenizer.eosId!;
    const params = { prompt: 'ROMEO: But soft', max_tokens: 20, temperature: 0, logit_bias: { [eos]: -100 } };
    const whole = await client.completions.create({ model: id, ...params });
    assert.equal(whole.object, 'text_completion');
    assert.equal(whole.model, id);
    assert.equal(whole.choices[0]!.finish_reason, 'length');
    assert.ok(whole.choices[0]!.text.length > 0);
    const prompt = models.find((m) => m.id === id)!.tokenizer.encode(params.prompt).length;
    assert.deepEqual(whole.usage, { prompt_tokens: prompt, completion_tokens: 20, total_tokens: prompt + 20 });
    const streamed = await streamText(id, { ...params, stream_options: { include_usage: true } });
    assert.deepEqual(streamed.texts, [whole.choices[0]!.text]);
    assert.deepEqual(streamed.finish, ['length']);
    assert.deepEqual(streamed.usage, whole.usage);
  });

  test(`${arch}: same seed same text, another seed another text, n choices indexed`, async () => {
    const params = { model: id, prompt: 'to be', max_tokens: 24, temperature: 1, top_k: 0, n: 3 };
    const a = await client.completions.create({ ...params, seed: 11 });
    const b = await client.completions.create({ ...params, seed: 11 });
    const c = await client.completions.create({ ...params, seed: 12 });
    const texts = (r: OpenAI.Completion) => r.choices.map((ch) => ch.text);
    assert.deepEqual(texts(a), texts(b));
    assert.notDeepEqual(texts(a), texts(c));
    assert.deepEqual(a.choices.map((ch) => ch.index), [0, 1, 2]);
    const streamed = await streamText(id, { prompt: 'to be', max_tokens: 24, temperature: 1, top_k: 0, n: 3, seed: 11 } as never);
    assert.deepEqual(streamed.texts, texts(a));
  });

  test(`${arch}: N concurrent greedy requests give the texts of N sequential ones`, async () => {
    const prompts = ['to', 'ROMEO:', 'héllo', 'that is the question', 'what light', 'café', 'or not to be, that', 'x'];
    const sequential: string[] = [];
    for (const prompt of prompts) sequential.push((await client.completions.create({ model: id, prompt, max_tokens: 16, temperature: 0 })).choices[0]!.text);
    const concurrent = await Promise.all(prompts.map(async (prompt) => (await client.completions.create({ model: id, prompt, max_tokens: 16, temperature: 0 })).choices[0]!.text));
    assert.deepEqual(concurrent, sequential);
    const batched = await client.completions.create({ model: id, prompt: prompts, max_tokens: 16, temperature: 0 });
    assert.deepEqual(batched.choices.map((ch) => ch.text), sequential);
  });

  test(`${arch}: a stop string ends the text before it, streamed and not`, async () => {
    const full = (await client.completions.create({ model: id, prompt: 'the', max_tokens: 30, temperature: 0 })).choices[0]!.text;
    const chars = [...full];
    const stop = chars.slice(6, 8).join('');
    const expected = full.slice(0, full.indexOf(stop));
    const stopped = await client.completions.create({ model: id, prompt: 'the', max_tokens: 30, temperature: 0, stop: [stop, 'never appears'] });
    assert.equal(stopped.choices[0]!.text, expected);
    assert.equal(stopped.choices[0]!.finish_reason, 'stop');
    const streamed = await streamText(id, { prompt: 'the', max_tokens: 30, temperature: 0, stop });
    assert.deepEqual(streamed.texts, [expected]);
    assert.deepEqual(streamed.finish, ['stop']);
  });

  test(`${arch}: echo with logprobs and max_tokens 0 scores a text`, async () => {
    const prompt = 'to be, or not';
    const scored = await client.completions.create({ model: id, prompt, max_tokens: 0, echo: true, logprobs: 3 });
    const choice = scored.choices[0]!;
    const ids = models.find((m) => m.id === id)!.tokenizer.encode(prompt);
    assert.equal(choice.text, prompt);
    assert.equal(choice.logprobs!.tokens!.length, ids.length);
    assert.equal(choice.logprobs!.token_logprobs![0], null);
    assert.ok(choice.logprobs!.token_logprobs!.slice(1).every((lp) => lp! < 0));
    // The three likeliest, and the prompt's own token when it is not among them (as OpenAI lists it).
    assert.ok(choice.logprobs!.top_logprobs!.slice(1).every((top, i) => Object.keys(top!).length >= 1 && Object.keys(top!).length <= 4 && top![choice.logprobs!.tokens![i + 1]!] !== undefined));
    const greedy = await client.completions.create({ model: id, prompt, max_tokens: 5, temperature: 0, logprobs: 1 });
    const lp = greedy.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.length, 5);
    lp.top_logprobs!.forEach((top, i) => assert.equal(Object.values(top!)[0], lp.token_logprobs![i], 'greedy takes the top token'));
  });
}

test('the transformer generates past its context (sliding window) and finish_reason length means max_tokens', async () => {
  const context = models[1]!.contextLength!;
  const prompt = 'ROMEO: But soft';
  const noEos = { [models[1]!.tokenizer.eosId!]: -100 };
  const out = await client.completions.create({ model: 'tiny-transformer', prompt, max_tokens: 2 * context, temperature: 0, logit_bias: noEos });
  assert.equal(out.choices[0]!.finish_reason, 'length');
  assert.equal(out.usage!.completion_tokens, 2 * context);
  const tooLong = await post(app, { model: 'tiny-transformer', prompt: Array.from({ length: context }, () => 5) });
  assert.equal(tooLong.status, 400);
  assert.deepEqual((await tooLong.json()).error.param, 'prompt');
  const bounded = createApp({ models, maxPromptTokens: 100 });
  const tooLongForLstm = await post(bounded, { model: 'tiny-lstm', prompt: Array.from({ length: 101 }, () => 5) });
  assert.equal(tooLongForLstm.status, 400);
  assert.match((await tooLongForLstm.json()).error.message, /the prompt is 101 tokens; this server takes at most 100/);
});

test('/healthz, /readyz, /v1/models and /v1/models/:id', async () => {
  assert.deepEqual(await (await app.request('/healthz')).json(), { status: 'ok' });
  assert.equal((await app.request('/readyz')).status, 200);
  const listed = await client.models.list();
  assert.deepEqual(listed.data.map((m) => m.id), ['tiny-lstm', 'tiny-transformer']);
  const one = await (await app.request('/v1/models/tiny-transformer')).json();
  assert.equal(one.context_length, 48);
  assert.equal(one.provider, 'onnxruntime-node cpu');
});

test('/readyz says 503 until the models are loaded, and completions wait with 503 too', async () => {
  let resolve!: (m: ServedModel[]) => void;
  const loading = createApp({ models: new Promise<ServedModel[]>((r) => (resolve = r)) });
  assert.equal((await loading.request('/readyz')).status, 503);
  assert.equal((await loading.request('/healthz')).status, 200);
  const early = await post(loading, { model: 'tiny-lstm', prompt: 'x' });
  assert.equal(early.status, 503);
  assert.equal(early.headers.get('retry-after'), '1');
  resolve(models);
  await new Promise((r) => setImmediate(r));
  assert.equal((await loading.request('/readyz')).status, 200);
  assert.equal((await post(loading, { model: 'tiny-lstm', prompt: 'x', max_tokens: 2 })).status, 200);
  const failed = createApp({ models: Promise.reject(new Error('weights are corrupt')) });
  await new Promise((r) => setImmediate(r));
  const readyz = await failed.request('/readyz');
  assert.equal(readyz.status, 503);
  assert.match((await readyz.json()).error, /weights are corrupt/);
});

test('an API key guards the API with 401 (security.test.ts covers every route)', async () => {
  const guarded = createApp({ models, apiKey: 'sesame' });
  const denied = await post(guarded, { model: 'tiny-lstm', prompt: 'x' }, { authorization: 'Bearer wrong' });
  assert.equal(denied.status, 401);
  assert.equal((await denied.json()).error.code, 'invalid_api_key');
  await assert.rejects(openAIClientFor(guarded, 'wrong').models.list(), OpenAI.AuthenticationError);
  const ok = await openAIClientFor(guarded, 'sesame').completions.create({ model: 'tiny-lstm', prompt: 'x', max_tokens: 2 });
  assert.equal(ok.choices.length, 1);
});

test('errors are OpenAI error objects: 400 with param, 404, 413, 415', async () => {
  const cases: [unknown, Record<string, string>, number, string | null][] = [
    [{ model: 'tiny-lstm', prompt: 'x', max_tokens: 'ten' }, {}, 400, 'max_tokens'],
    [{ model: 'tiny-lstm', prompt: 'x', temperature: -1 }, {}, 400, 'temperature'],
    [{ model: 'tiny-lstm', prompt: 'x', stop: ['a', 7] }, {}, 400, 'stop[1]'],
    [{ model: 'tiny-lstm', prompt: 'x', logprobs: 6 }, {}, 400, 'logprobs'],
    [{ model: 'tiny-lstm', prompt: 'x', frobnicate: true }, {}, 400, 'frobnicate'],
    [{ model: 'tiny-lstm', prompt: [[1, 2], [99999]] }, {}, 400, 'prompt[1]'],
    [{ model: 'tiny-lstm', prompt: 'x', logit_bias: { 99999: 1 } }, {}, 400, 'logit_bias'],
    [{ model: 'tiny-lstm', prompt: 'x', n: 9 }, {}, 400, 'n'],
    [{ model: 'tiny-lstm', prompt: 'x', stream_options: { include_usage: true } }, {}, 400, 'stream_options'],
    [{ model: 'tiny-lstm', prompt: 'x', best_of: 3 }, {}, 400, 'best_of'],
    [{ model: 'tiny-lstm', prompt: '', max_tokens: 1.5 }, {}, 400, 'max_tokens'],
    [{ prompt: 'x' }, {}, 400, 'model'],
    ['{"model": "tiny-lstm", ', {}, 400, null],
    [{ model: 'gpt-17', prompt: 'x' }, {}, 404, 'model'],
    [{ model: 'tiny-lstm', prompt: 'x'.repeat(2 << 20) }, {}, 413, null],
    [{ model: 'tiny-lstm', prompt: 'x' }, { 'content-type': 'text/plain' }, 415, null],
  ];
  for (const [body, headers, status, param] of cases) {
    const res = await post(app, body, headers);
    assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
    const { error } = await res.json();
    assert.equal(error.param, param, JSON.stringify(body).slice(0, 80));
    assert.equal(typeof error.message, 'string');
    assert.equal(typeof error.type, 'string');
    assert.equal(typeof error.code, 'string');
  }
  const route = await app.request('/v1/chat/completions', { method: 'POST' });
  assert.equal(route.status, 404);
  assert.equal((await route.json()).error.code, 'not_found');
  await assert.rejects(client.completions.create({ model: 'nope', prompt: 'x' }), OpenAI.NotFoundError);
});

test('a full queue is refused with 429 and Retry-After before any stream starts', async () => {
  const runtime = await openRuntime('cpu', () => {});
  const small = await openModel(packages.lstm, { runtime, maxBatch: 1, maxQueue: 1, id: 'small' });
  const busy = createApp({ models: [small] });
  const running = await post(busy, { model: 'small', prompt: 'x', max_tokens: 2000, stream: true, ignore_eos: true });
  const queued = await post(busy, { model: 'small', prompt: 'x', max_tokens: 5, stream: true });
  const refused = await post(busy, { model: 'small', prompt: 'x', max_tokens: 5, stream: true });
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal((await refused.json()).error.type, 'rate_limit_error');
  await running.body!.cancel();
  assert.match(await queued.text(), /data: \[DONE\]\n\n$/);
  await small.scheduler.idle();
  assert.equal(small.scheduler.active, 0);
  await small.close();
});

test('a failure after the stream began is one error chunk, then [DONE]', async () => {
  const hurried = createApp({ models, timeoutMs: 40 });
  const res = await post(hurried, { model: 'tiny-lstm', prompt: 'x', max_tokens: 4096, stream: true, ignore_eos: true });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\n\n').filter(Boolean);
  assert.ok(events.length > 3);
  assert.equal(events.at(-1), 'data: [DONE]');
  const error = JSON.parse(events.at(-2)!.slice(6));
  assert.equal(error.error.code, 'deadline_exceeded');
  assert.ok(events.slice(0, -2).every((e) => JSON.parse(e.slice(6)).object === 'text_completion'));
});

test('/metrics exposes request, token, latency, queue and batch series', async () => {
  await Promise.all([1, 2, 3].map(() => client.completions.create({ model: 'tiny-lstm', prompt: 'to be', max_tokens: 8, stream: false })));
  const text = await (await app.request('/metrics')).text();
  for (const series of [
    'ferry_http_requests_total{route="/v1/completions",status="200"}',
    'ferry_http_requests_total{route="/v1/completions",status="400"}',
    'ferry_prompt_tokens_total{model="tiny-lstm"}',
    'ferry_completion_tokens_total{model="tiny-lstm"}',
    'ferry_time_to_first_token_seconds_bucket',
    'ferry_inter_token_seconds_bucket',
    'ferry_request_duration_seconds_count{model="tiny-lstm"}',
    'ferry_queue_depth{model="tiny-lstm"} 0',
    'ferry_active_sequences{model="tiny-transformer"} 0',
    'ferry_batch_size_bucket{le="4",model="tiny-lstm"}',
  ]) assert.ok(text.includes(series), `missing ${series}`);
  const batches = text.match(/ferry_batch_size_count\{model="tiny-lstm"\} (\d+)/);
  assert.ok(Number(batches![1]) > 0);
});
