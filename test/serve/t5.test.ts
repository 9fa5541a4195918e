// A T5 package (seeded random weights, char tokenizer) served on /v1/completions: the prompt is
// the source, the completion the greedy target ferry's seq2seq decoder gives over the same files;
// batching, streaming and `ferry generate` do not change it, and bad requests get OpenAI's errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { readManifest } from '../../src/serve/package.ts';
import { createApp } from '../../src/serve/app.ts';
import type { ServedModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { openT5Model } from '../../src/serve/t5-model.ts';
import { startServer } from '../../src/serve/node.ts';
import { buildT5Package, type T5TestPackage } from '../export/t5-package.ts';
import { openAIClientFor } from './packages.ts';

const SOURCES = ['the cat', 'a dog sat on the mat', 'cat', 'der Hund'];
const MAX_TOKENS = 12;

let pkg: T5TestPackage;
let model: ServedModel;
let app: ReturnType<typeof createApp>;
let client: OpenAI;
/** The greedy target of each source, decoded one source at a time. */
let expected: string[];

before(async () => {
  pkg = await buildT5Package();
  expected = (await pkg.greedyTargets(SOURCES, MAX_TOKENS)).map((t) => t.text);
  assert.ok(expected.some((text) => text.length > 0), 'the random model generates something');
  const manifest = await readManifest(pkg.dir);
  assert.equal(manifest.arch, 't5');
  if (manifest.arch !== 't5') return;
  model = await openT5Model(pkg.dir, manifest, { runtime: await openRuntime('cpu', () => {}), maxBatch: 8, maxQueue: 16 });
  app = createApp({ models: [model], maxTokens: 64 });
  client = openAIClientFor(app);
});

after(async () => {
  await model?.close();
  await pkg?.remove();
});

const greedy = (prompt: string) => client.completions.create({ model: pkg.name, prompt, max_tokens: MAX_TOKENS, temperature: 0 });

test('t5: /v1/models lists it; the greedy completion of a source is the seq2seq decoder\'s target', async () => {
  const listed = await client.models.list();
  assert.deepEqual(listed.data.map((m) => [m.id, (m as unknown as { arch: string }).arch]), [[pkg.name, 't5']]);
  for (const [i, source] of SOURCES.entries()) {
    const completion = await greedy(source);
    assert.equal(completion.choices[0]!.text, expected[i], `target of ${JSON.stringify(source)}`);
    assert.equal(completion.usage!.prompt_tokens, pkg.tokenizer.encode(source).length + 1, 'the source counts its eos');
  }
});

test('t5: concurrent requests give the texts they get alone; streaming gives the same text', async () => {
  const together = await Promise.all(SOURCES.map(greedy));
  assert.deepEqual(together.map((c) => c.choices[0]!.text), expected);
  const stream = await client.completions.create({ model: pkg.name, prompt: SOURCES[1]!, max_tokens: MAX_TOKENS, temperature: 0, stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, expected[1]);
  assert.ok(finish === 'stop' || finish === 'length');
});

test('t5: sampling is seeded, n choices are indexed, max_tokens and stop cut the target', async () => {
  const params = { model: pkg.name, prompt: 'the cat', max_tokens: MAX_TOKENS, temperature: 1.5, n: 3 };
  const a = await client.completions.create({ ...params, seed: 5 });
  const b = await client.completions.create({ ...params, seed: 5 });
  const texts = (c: OpenAI.Completion) => c.choices.map((choice) => choice.text);
  assert.deepEqual(texts(a), texts(b));
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  const short = await client.completions.create({ model: pkg.name, prompt: 'the cat', max_tokens: 2, temperature: 0, ignore_eos: true } as never);
  assert.equal(short.choices[0]!.finish_reason, 'length');
  assert.equal(short.usage!.completion_tokens, 2);
  const long = await client.completions.create({ model: pkg.name, prompt: 'the cat', max_tokens: 20, temperature: 0, ignore_eos: true } as never);
  const stop = long.choices[0]!.text.slice(3, 5);
  assert.ok(stop.length === 2, 'the target is long enough to stop in');
  const stopped = await client.completions.create({ model: pkg.name, prompt: 'the cat', max_tokens: 20, temperature: 0, ignore_eos: true, stop } as never);
  assert.equal(stopped.choices[0]!.text, long.choices[0]!.text.slice(0, long.choices[0]!.text.indexOf(stop)));
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
});

test('t5: an empty prompt, max_tokens over the limit and echo get OpenAI errors', async () => {
  const cases: [Record<string, unknown>, string, string][] = [
    [{ prompt: '' }, 'empty_prompt', 'prompt'],
    [{ prompt: 'the cat', max_tokens: 65 }, 'invalid_value', 'max_tokens'],
    [{ prompt: 'x'.repeat(40) }, 'context_length_exceeded', 'prompt'],
    [{ prompt: 'the cat', echo: true }, 'echo_unsupported', 'echo'],
  ];
  for (const [body, code, param] of cases) {
    const response = await app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: pkg.name, ...body }) });
    assert.equal(response.status, 400, JSON.stringify(body));
    const error = (await response.json()) as { error: { message: string; type: string; code: string; param: string | null } };
    assert.equal(error.error.code, code, JSON.stringify(body));
    assert.equal(error.error.param, param, JSON.stringify(body));
    assert.equal(error.error.type, 'invalid_request_error');
    assert.ok(error.error.message.length > 0);
  }
});

test('t5: `ferry generate` prints the target alone, streamed or not', async () => {
  const run = promisify(execFile);
  const ferry = path.resolve('bin/ferry.js');
  const args = [ferry, 'generate', pkg.dir, '--prompt', SOURCES[1]!, '--max-tokens', String(MAX_TOKENS), '--temperature', '0', '--device', 'cpu'];
  assert.equal((await run('node', args)).stdout, `${expected[1]}\n`);
  assert.equal((await run('node', [...args, '--stream'])).stdout, `${expected[1]}\n`);
});

test('t5: `ferry serve`\'s server loads a T5 package beside nothing else and answers with its target, batched too', async () => {
  const server = await startServer({ dirs: [pkg.dir], port: 0, host: '127.0.0.1', maxBatch: 4, maxQueue: 8, device: 'cpu', log: () => {} });
  try {
    assert.deepEqual((await server.models).map((m) => m.arch), ['t5']);
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: pkg.name, prompt: SOURCES[0], max_tokens: MAX_TOKENS, temperature: 0 }),
    });
    assert.equal(((await response.json()) as OpenAI.Completion).choices[0]!.text, expected[0]);
    // Batched in its worker thread, where the encoder's tensors move there and back each step.
    const together = await Promise.all(SOURCES.map(async (prompt) => {
      const r = await fetch(`${server.url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: pkg.name, prompt, max_tokens: MAX_TOKENS, temperature: 0 }),
      });
      return ((await r.json()) as OpenAI.Completion).choices[0]!.text;
    }));
    assert.deepEqual(together, expected);
  } finally {
    await server.close();
  }
});
