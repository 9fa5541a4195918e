import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { createApp } from '../../src/serve/app.ts';
import type { ServedModel } from '../../src/serve/model.ts';
import { startServer } from '../../src/serve/node.ts';
import { buildPackages, openAIClientFor, openTestModels, type TestPackages } from './packages.ts';

let packages: TestPackages;
let models: ServedModel[];
let app: ReturnType<typeof createApp>;
let client: OpenAI;

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

const post = (target: typeof app, body: unknown) =>
  target.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('logprobs: N lists the sampled token too when it is not among the N likeliest (up to N+1 entries)', async () => {
  const out = await client.completions.create({ model: 'tiny-lstm', prompt: 'to be', max_tokens: 60, temperature: 2, top_k: 0, seed: 3, logprobs: 1 } as OpenAI.CompletionCreateParamsNonStreaming);
  const lp = out.choices[0]!.logprobs!;
  assert.equal(lp.tokens!.length, 60);
  lp.top_logprobs!.forEach((top, i) => {
    assert.equal(top![lp.tokens![i]!], lp.token_logprobs![i], `token ${i} is in its own top_logprobs`);
    assert.ok(Object.keys(top!).length <= 2);
  });
  assert.ok(lp.top_logprobs!.some((top) => Object.keys(top!).length === 2), 'at temperature 2 some sampled token is not the likeliest');
});

test('text_offset indexes the returned text in UTF-16 units, echoed prompt and generated tokens alike', async () => {
  const prompt = 'Ñandú 😀!';
  const scored = await client.completions.create({ model: 'tiny-lstm', prompt, max_tokens: 0, echo: true, logprobs: 0 });
  const offsets = scored.choices[0]!.logprobs!.text_offset!;
  assert.equal(scored.choices[0]!.text, prompt);
  assert.ok(offsets.length > [...prompt].length, 'byte-level tokens split the characters');
  assert.equal(offsets[0], 0);
  assert.ok(offsets.every((o, i) => o <= prompt.length && (i === 0 || o >= offsets[i - 1]!)), `offsets ${offsets} over ${prompt.length} units`);
  // Each token starts after the characters its predecessors' bytes complete.
  const utf8 = new TextDecoder();
  let decoded = 0;
  const expected = models[0]!.tokenizer.encode(prompt).map((id) => {
    const at = decoded;
    decoded += utf8.decode(models[0]!.tokenizer.tokenBytes(id), { stream: true }).length;
    return at;
  });
  assert.deepEqual(offsets, expected);
  assert.equal(prompt.slice(offsets.at(-1)), '!');
  const generated = await client.completions.create({ model: 'tiny-lstm', prompt, max_tokens: 12, echo: true, logprobs: 0, temperature: 0 });
  const choice = generated.choices[0]!;
  const all = choice.logprobs!.text_offset!;
  assert.ok(all.every((o, i) => o <= choice.text.length && (i === 0 || o >= all[i - 1]!)));
  assert.ok(all.slice(offsets.length).every((o) => o >= prompt.length), 'generated tokens come after the echoed prompt');
});

test('suffix, more than 4 stop strings and an empty prompt list each get a message saying what is wrong', async () => {
  const cases: [object, string, RegExp][] = [
    [{ suffix: 'the end' }, 'suffix', /not supported/],
    [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /at most 4/],
    [{ prompt: [] }, 'prompt', /empty list holds no prompt/],
    [{ prompt: [[1], []] }, 'prompt[1]', /at least one/],
  ];
  for (const [fields, param, message] of cases) {
    const res = await post(app, { model: 'tiny-lstm', prompt: 'x', ...fields });
    assert.equal(res.status, 400, JSON.stringify(fields));
    const { error } = await res.json();
    assert.equal(error.param, param);
    assert.match(error.message, message);
  }
});

test('a lone surrogate in a JSON prompt is echoed as U+FFFD, what the model read, streamed and not', async () => {
  const body = { model: 'tiny-lstm', prompt: 'a\ud800b\udc00', max_tokens: 0, echo: true };
  const whole = await (await post(app, body)).json();
  assert.equal(whole.choices[0].text, 'a\ufffdb\ufffd');
  const same = await (await post(app, { ...body, prompt: 'a\ufffdb\ufffd' })).json();
  assert.equal(whole.usage.prompt_tokens, same.usage.prompt_tokens);
  const streamed = await (await post(app, { ...body, stream: true })).text();
  assert.ok(streamed.includes(JSON.stringify('a\ufffdb\ufffd').slice(1, -1)), streamed);
});

test('a request that could never be queued is a 400 that says why, not a 429 to retry forever', async () => {
  const res = await post(app, { model: 'tiny-lstm', prompt: Array.from({ length: 25 }, (_, i) => `p${i}`), max_tokens: 1 });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('retry-after'), null);
  const { error } = await res.json();
  assert.equal(error.code, 'too_many_prompts');
  assert.match(error.message, /25 prompts .* at most 24/);
  const fits = await post(app, { model: 'tiny-lstm', prompt: Array.from({ length: 24 }, (_, i) => `p${i}`), max_tokens: 1 });
  assert.equal(fits.status, 200);
  assert.equal((await fits.json()).choices.length, 24);
});

test('a prompt too long to fit is refused before it is tokenized', async () => {
  const lstm = models[0]!;
  const encode = mock.method(lstm.tokenizer, 'encode');
  try {
    const res = await post(createApp({ models, maxPromptTokens: 8192 }), { model: 'tiny-lstm', prompt: 'x'.repeat(1_000_000) });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'context_length_exceeded');
    assert.equal(encode.mock.callCount(), 0);
  } finally {
    encode.mock.restore();
  }
});

test('echo scoring of a prompt exactly the context length is allowed; one more token is not', async () => {
  const context = models[1]!.contextLength!;
  const ids = Array.from({ length: context }, (_, i) => 5 + (i % 7));
  const scored = await post(app, { model: 'tiny-transformer', prompt: ids, max_tokens: 0, echo: true, logprobs: 0 });
  assert.equal(scored.status, 200);
  assert.equal((await scored.json()).choices[0].logprobs.tokens.length, context);
  assert.equal((await post(app, { model: 'tiny-transformer', prompt: [...ids, 5], max_tokens: 0, echo: true })).status, 400);
  assert.equal((await post(app, { model: 'tiny-transformer', prompt: ids, max_tokens: 1 })).status, 400);
});

const series = (text: string, name: string) => Number(text.match(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm'))?.[1] ?? 0);

test('metrics: an aborted stream counts as 499 with the tokens it got, a 401 names its route, 11+ prompts warn of no listener leak', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const fresh = createApp({ models });
    const res = await post(fresh, { model: 'tiny-lstm', prompt: 'x', max_tokens: 4096, stream: true, ignore_eos: true });
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 5) {
      const { value } = await reader.read();
      received += new TextDecoder().decode(value).split('data: ').length - 1;
    }
    await reader.cancel();
    await models[0]!.scheduler.idle();
    const text = await (await fresh.request('/metrics')).text();
    assert.equal(series(text, 'ferry_http_requests_total{route="/v1/completions",status="499"}'), 1, text);
    assert.equal(series(text, 'ferry_http_requests_total{route="/v1/completions",status="200"}'), 0);
    assert.ok(series(text, 'ferry_completion_tokens_total{model="tiny-lstm"}') >= 5);
    assert.equal(series(text, 'ferry_prompt_tokens_total{model="tiny-lstm"}'), 1);

    const guarded = createApp({ models, apiKey: 'sesame' });
    await guarded.request('/v1/models');
    const labelled = await (await guarded.request('/metrics', { headers: { authorization: 'Bearer sesame' } })).text();
    assert.equal(series(labelled, 'ferry_http_requests_total{route="/v1/models",status="401"}'), 1, labelled);

    const many = await post(fresh, { model: 'tiny-lstm', prompt: Array.from({ length: 16 }, (_, i) => `p${i}`), max_tokens: 2 });
    assert.equal(many.status, 200);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings.map((w) => w.name), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a client that goes away mid-upload is counted as 499, with nothing logged', async () => {
  const logs: string[] = [];
  const errors = mock.method(console, 'error', (...args: unknown[]) => logs.push(args.join(' ')));
  const server = await startServer({ dirs: [packages.lstm], port: 0, host: '127.0.0.1', maxBatch: 2, maxQueue: 2, device: 'cpu', log: (m) => logs.push(m) });
  try {
    await server.models;
    logs.length = 0;
    await new Promise<void>((resolve) => {
      const req = http.request(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"model": "tiny-lstm", "prompt": "to be');
      setTimeout(() => req.destroy(), 50);
    });
    let text = '';
    for (let tries = 0; tries < 50 && !text.includes('status="499"'); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      text = await (await fetch(`${server.url}/metrics`)).text();
    }
    assert.equal(series(text, 'ferry_http_requests_total{route="/v1/completions",status="499"}'), 1, text);
    assert.ok(!text.includes('status="500"'));
    assert.deepEqual(logs, []);
  } finally {
    await server.close();
    errors.mock.restore();
  }
});
