import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createApp } from '../../src/serve/app.ts';
import { openModel, type ServedModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { buildPackages, type TestPackages } from './packages.ts';

const RUNS = 2000;
let packages: TestPackages;
let models: ServedModel[];
let app: ReturnType<typeof createApp>;

before(async () => {
  packages = await buildPackages();
  const runtime = await openRuntime('cpu', () => {});
  models = [
    await openModel(packages.lstm, { runtime, maxBatch: 8, maxQueue: 8 }),
    await openModel(packages.transformer, { runtime, maxBatch: 8, maxQueue: 8 }),
  ];
  app = createApp({ models, maxTokens: 32, maxPromptTokens: 2000, maxBodyBytes: 64 * 1024 });
});

after(async () => {
  for (const model of models) await model.close();
  await packages.remove();
});

const number = fc.oneof(
  fc.integer({ min: -5, max: 40 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(0, -1, 1e308, -1e308, 2 ** 53, 2 ** 64, 0.5, 1e-320),
);
const anyValue = fc.oneof(number, fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer({ min: -3, max: 400 }), { maxLength: 5 }), fc.object({ maxDepth: 1 }));
const prompt = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.array(fc.integer({ min: -2, max: 300 }), { maxLength: 10 }),
  fc.array(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 4 }), { maxLength: 3 }),
  anyValue,
);
const field = <T>(value: fc.Arbitrary<T>) => fc.option(fc.oneof({ weight: 3, arbitrary: value }, { weight: 1, arbitrary: anyValue }), { nil: undefined, freq: 2 });

const completionBody = fc.record({
  model: fc.oneof(fc.constantFrom('tiny-lstm', 'tiny-transformer'), fc.string({ maxLength: 12 }), anyValue),
  prompt,
  max_tokens: field(fc.integer({ min: -2, max: 40 })),
  temperature: field(fc.double({ min: -1, max: 3, noNaN: true })),
  top_p: field(fc.double({ min: -0.5, max: 1.5, noNaN: true })),
  top_k: field(fc.integer({ min: -3, max: 400 })),
  min_p: field(fc.double({ min: -0.5, max: 1.5, noNaN: true })),
  repetition_penalty: field(fc.double({ min: -1, max: 12, noNaN: true })),
  frequency_penalty: field(fc.double({ min: -3, max: 3, noNaN: true })),
  presence_penalty: field(fc.double({ min: -3, max: 3, noNaN: true })),
  logit_bias: field(fc.dictionary(fc.oneof(fc.nat({ max: 400 }).map(String), fc.string({ maxLength: 4 })), fc.double({ min: -150, max: 150, noNaN: true }), { maxKeys: 3 })),
  stop: field(fc.oneof(fc.string({ maxLength: 3 }), fc.array(fc.string({ maxLength: 3 }), { maxLength: 6 }))),
  seed: field(fc.integer()),
  n: field(fc.integer({ min: -1, max: 12 })),
  best_of: field(fc.integer({ min: 0, max: 4 })),
  logprobs: field(fc.integer({ min: -1, max: 7 })),
  echo: field(fc.boolean()),
  stream: field(fc.boolean()),
  stream_options: field(fc.record({ include_usage: fc.boolean() })),
  suffix: field(fc.constant(null)),
  user: field(fc.string({ maxLength: 8 })),
}, { requiredKeys: [] }).chain((body) => fc.oneof(
  { weight: 6, arbitrary: fc.constant(body as Record<string, unknown>) },
  { weight: 1, arbitrary: fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), anyValue).map(([key, value]) => ({ ...body, [key]: value })) },
));

const validBody = fc.record({
  model: fc.constantFrom('tiny-lstm', 'tiny-transformer'),
  prompt: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 250 }), { minLength: 1, maxLength: 8 })),
  max_tokens: fc.integer({ min: 0, max: 12 }),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0.01, max: 1, noNaN: true }),
  top_k: fc.integer({ min: -1, max: 50 }),
  min_p: fc.double({ min: 0, max: 1, noNaN: true }),
  repetition_penalty: fc.double({ min: 0.5, max: 3, noNaN: true }),
  stop: fc.oneof(fc.string({ maxLength: 3 }), fc.array(fc.string({ maxLength: 3 }), { maxLength: 4 })),
  seed: fc.integer(),
  n: fc.integer({ min: 1, max: 3 }),
  logprobs: fc.integer({ min: 0, max: 5 }),
  echo: fc.boolean(),
  stream: fc.boolean(),
  stream_options: fc.record({ include_usage: fc.boolean() }),
}, { requiredKeys: ['model', 'prompt'] }).map((body) => (body.stream ? body : { ...body, stream_options: undefined }));

const encoder = new TextEncoder();
const bodyBytes = fc.oneof(
  { weight: 6, arbitrary: validBody.map((body) => encoder.encode(JSON.stringify(body))) },
  { weight: 8, arbitrary: completionBody.map((body) => encoder.encode(JSON.stringify(body))) },
  { weight: 1, arbitrary: fc.json().map((text) => encoder.encode(text)) },
  { weight: 1, arbitrary: completionBody.map((body) => JSON.stringify(body)).chain((text) => fc.nat({ max: text.length }).map((cut) => encoder.encode(text.slice(0, cut)))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(
    Uint8Array.from([0x7b, 0x22, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // {"model":"\xc3(" }
    encoder.encode('{"model":"tiny-lstm","prompt":"x","max_tokens":1e999}'),
    encoder.encode(`{"model":"tiny-lstm","prompt":${'['.repeat(5000)}${']'.repeat(5000)}}`),
    encoder.encode(`{"model":"tiny-lstm","prompt":"${'y'.repeat(70 * 1024)}"}`),
    encoder.encode('{"model":"tiny-lstm","prompt":"\\ud800","max_tokens":3}'),
    encoder.encode('{"model":"tiny-lstm","__proto__":{"stream":true},"prompt":"x"}'),
    new Uint8Array(0),
  ) },
);

const requestSpec = fc.record({
  method: fc.oneof({ weight: 8, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH') }),
  path: fc.oneof({ weight: 10, arbitrary: fc.constant('/v1/completions') }, { weight: 1, arbitrary: fc.constantFrom('/v1/models', '/v1/models/tiny-lstm', '/v1/models/%00', '/metrics', '/v1/completions/', '/v1//completions', '/x') }),
  contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom(undefined, 'text/plain', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'multipart/form-data', 'application/jsonx') }),
  body: bodyBytes,
});

async function checkResponse(res: Response, label: string): Promise<void> {
  assert.ok(res.status < 500, `${label}: status ${res.status}: ${await res.clone().text()}`);
  const type = res.headers.get('content-type') ?? '';
  if (res.status >= 400) {
    const { error } = await res.json();
    assert.equal(typeof error.message, 'string', label);
    assert.equal(typeof error.type, 'string', label);
    assert.equal(typeof error.code, 'string', label);
    assert.ok(error.param === null || typeof error.param === 'string', label);
  } else if (type.startsWith('text/event-stream')) {
    const events = (await res.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]', label);
    for (const event of events.slice(0, -1)) {
      const chunk = JSON.parse(event.slice(6));
      assert.ok(chunk.object === 'text_completion' || chunk.error, label);
      assert.ok(!chunk.error || chunk.error.code !== 'internal_error', `${label}: ${event}`);
    }
  } else {
    await res.arrayBuffer();
  }
}

test(`${RUNS} random and malformed requests: never a 5xx, always the error shape`, { timeout: 170_000 }, async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(requestSpec, async (spec) => {
      const headers: Record<string, string> = spec.contentType ? { 'content-type': spec.contentType } : {};
      const hasBody = spec.method !== 'GET';
      const res = await app.request(spec.path, { method: spec.method, headers, body: hasBody ? spec.body : undefined });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      await checkResponse(res, `${spec.method} ${spec.path} ${new TextDecoder().decode(spec.body.slice(0, 200))}`);
    }),
    { numRuns: RUNS, seed: Number(process.env.FERRY_FUZZ_SEED ?? Date.now() % 2 ** 31) },
  );
  console.log(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  assert.ok((statuses.get(200) ?? 0) > RUNS / 10, 'enough requests were valid to exercise generation');
  for (const model of models) {
    await model.scheduler.idle();
    assert.equal(model.scheduler.active, 0);
    assert.equal(model.scheduler.queued, 0);
  }
  const after = await app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"tiny-lstm","prompt":"to be","max_tokens":4}' });
  assert.equal(after.status, 200);
});

test('oversized bodies are 413 whether or not they declare their length', async () => {
  const big = encoder.encode(JSON.stringify({ model: 'tiny-lstm', prompt: 'z'.repeat(100 * 1024) }));
  const declared = await app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big });
  assert.equal(declared.status, 413);
  const chunked = new ReadableStream({ start(c) { c.enqueue(big.slice(0, 40000)); c.enqueue(big.slice(40000)); c.close(); } });
  const streamed = await app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit);
  assert.equal(streamed.status, 413);
  assert.equal((await streamed.json()).error.code, 'body_too_large');
});
