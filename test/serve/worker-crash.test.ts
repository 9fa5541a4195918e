import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.ts';
import { createApp } from '../../src/serve/app.ts';
import { openModel, type ServedModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import type { WorkerSession } from '../../src/serve/runtime/node-worker.ts';
import type { Runtime } from '../../src/serve/runtime/types.ts';
import { buildPackages, type TestPackages } from './packages.ts';

let packages: TestPackages;
let models: ServedModel[];
/** The worker sessions the models opened, in order: the LSTM's first. */
const sessions: WorkerSession[] = [];

before(async () => {
  packages = await buildPackages();
  const runtime = await openRuntime('cpu', () => {}, { worker: true });
  const recording: Runtime = {
    async createSession(model, options) {
      const session = await runtime.createSession(model, options);
      sessions.push(session as WorkerSession);
      return session;
    },
  };
  models = [
    await openModel(packages.lstm, { runtime: recording, maxBatch: 4, maxQueue: 4 }),
    await openModel(packages.transformer, { runtime: recording, maxBatch: 4, maxQueue: 4 }),
  ];
});

after(async () => {
  for (const model of models) await model.close();
  await packages.remove();
});

const post = (app: ReturnType<typeof createApp>, body: object) =>
  app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function readUntil(reader: ReadableStreamDefaultReader<string>, chunks: number): Promise<string> {
  let text = '';
  while (text.split('data: ').length - 1 < chunks) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  return text;
}

test('a dying onnxruntime worker fails only the requests on it with a 503 that says why; its session re-opens and the model serves again', async () => {
  assert.equal(sessions.length, 2);
  // Streams long enough that neither can finish before the crash, however fast this machine is.
  const app = createApp({ models, maxTokens: 1_000_000 });
  const greedy = { prompt: 'to be', max_tokens: 24, temperature: 0, ignore_eos: true };
  const before = (await (await post(app, { model: 'tiny-lstm', ...greedy })).json()).choices[0].text;

  const open = async (model: string) => (await post(app, { model, prompt: 'to be', max_tokens: 1_000_000, ignore_eos: true, stream: true }))
    .body!.pipeThrough(new TextDecoderStream()).getReader();
  const [lstm, transformer] = await Promise.all([open('tiny-lstm'), open('tiny-transformer')]);
  await Promise.all([readUntil(lstm, 3), readUntil(transformer, 3)]);
  await sessions[0]!.crash();
  const rest = await readUntil(lstm, Infinity);
  const events = rest.split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  const { error } = JSON.parse(events.at(-2)!.slice(6));
  assert.equal(error.code, 'worker_died');
  assert.equal(error.type, 'service_unavailable_error');
  assert.match(error.message, /onnxruntime worker .* stopped/);

  // The other model's stream never noticed.
  const other = await readUntil(transformer, 40);
  assert.ok(!other.includes('"error"'));
  await transformer.cancel();

  // The session re-opened by itself: the same greedy text as before the crash.
  const again = await post(app, { model: 'tiny-lstm', ...greedy });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).choices[0].text, before);
  assert.equal((await app.request('/readyz')).status, 200);
});

test('a run the model itself refuses is a 503 naming onnxruntime, and the session keeps working', async () => {
  const session = sessions[0]!;
  await assert.rejects(session.run({ input_ids: { dtype: 'float32', dims: [1, 1], data: new Float32Array(1) } }), (error: unknown) =>
    error instanceof FerryError && error.status === 503 && error.code === 'model_failed' && /onnxruntime could not run/.test(error.message) && !error.message.includes('\n'));
  const app = createApp({ models });
  assert.equal((await post(app, { model: 'tiny-lstm', prompt: 'x', max_tokens: 2 })).status, 200);
});
