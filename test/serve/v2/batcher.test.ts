import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApp } from '../../../src/serve/app.ts';
import { ApiError } from '../../../src/serve/openai-error.ts';
import type { NamedTensors, RunOptions, Session } from '../../../src/package/session.ts';
import { createBatcher, type RunRecord } from '../../../src/serve/v2/batcher.ts';
import { createPlainModel, type PlainModelSpec } from '../../../src/serve/v2/plain-model.ts';
import { postJson } from './infer.ts';
import { assertMatches, assertProtocolError } from './protocol.ts';

/** y = 2x, any shape, after `ms`; refuses a negative value as an index out of range would. */
function doublingSession(ms = 0): Session & { runs: number[][] } {
  const runs: number[][] = [];
  return {
    provider: 'test', inputNames: ['x'], outputNames: ['y'], runs,
    async run(feeds: NamedTensors, _options?: RunOptions) {
      const x = feeds.x!;
      runs.push([...x.dims]);
      await new Promise((resolve) => setTimeout(resolve, ms));
      const data = x.data as Float32Array;
      if (data.some((v) => v < 0)) throw new Error('index -1 is out of bounds');
      return { y: { dtype: 'float32', dims: x.dims, data: data.map((v) => v * 2) } };
    },
    release: async () => {},
  };
}

const row = (values: number[]): NamedTensors => ({ x: { dtype: 'float32', dims: [1, values.length], data: Float32Array.from(values) } });
const spec = (batchDim: number | null): PlainModelSpec => ({
  name: 'double',
  inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 'width'], batchDim }],
  outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 'width'], batchDim }],
});
const options = { maxBatch: 4, maxQueue: 100, delayMs: 5, timeoutMs: 5_000, batchable: true };

test('concurrent requests whose other dims agree run as one batch of at most maxBatch rows, split back per request', async () => {
  const session = doublingSession();
  const batcher = createBatcher(session, options);
  const records: RunRecord[] = [];
  batcher.onRun((r) => records.push(r));
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.run(row([i, i + 0.5]), ['y'])));
  results.forEach((r, i) => assert.deepEqual([...(r.y!.data as Float32Array)], [2 * i, 2 * i + 1]));
  assert.deepEqual(session.runs, [[4, 2], [4, 2], [2, 2]]);
  assert.deepEqual(records.map((r) => [r.rows, r.requests]), [[4, 4], [4, 4], [2, 2]]);
  assert.ok(records.every((r) => r.queueSeconds.length === r.requests && r.runSeconds >= 0));
});

test('requests whose non-batch dims differ run in separate batches; a request of many rows counts them all', async () => {
  const session = doublingSession();
  const batcher = createBatcher(session, options);
  const wide = { x: { dtype: 'float32' as const, dims: [3, 3], data: Float32Array.from({ length: 9 }, (_, i) => i) } };
  const results = await Promise.all([batcher.run(row([1, 2]), ['y']), batcher.run(row([1, 2, 3]), ['y']), batcher.run(row([3, 4]), ['y']), batcher.run(wide, ['y'])]);
  assert.deepEqual(session.runs, [[2, 2], [4, 3]]);
  assert.deepEqual([...(results[3]!.y!.data as Float32Array)], Array.from({ length: 9 }, (_, i) => 2 * i));
  assert.deepEqual([...(results[1]!.y!.data as Float32Array)], [2, 4, 6]);
});

test('a model without a leading batch dim runs every request alone', async () => {
  const session = doublingSession();
  const model = createPlainModel(spec(null), session, { ...options });
  assert.equal(model.maxBatchSize, 0);
  await Promise.all([1, 2, 3].map((v) => model.infer(row([v]), { outputs: ['y'], parameters: {}, signal: new AbortController().signal })));
  assert.deepEqual(session.runs, [[1, 1], [1, 1], [1, 1]]);
});

test('a request that fails a shared run fails alone: the others are run again without it', async () => {
  const session = doublingSession();
  const model = createPlainModel(spec(0), session, options);
  const signal = new AbortController().signal;
  const settled = await Promise.allSettled([[1], [-1], [3]].map((v) => model.infer(row(v), { outputs: ['y'], parameters: {}, signal })));
  assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
  const error = (settled[1] as PromiseRejectedResult).reason as ApiError;
  assert.equal(error.status, 400);
  assert.match(error.message, /double could not run on these inputs: index -1 is out of bounds/);
  assert.deepEqual(session.runs, [[3, 1], [1, 1], [1, 1], [1, 1]]);
});

test('a full queue answers 429 with Retry-After, a request past its deadline 504, over HTTP in the protocol shape', async () => {
  const session = doublingSession(200);
  const model = createPlainModel(spec(0), session, { maxBatch: 1, maxQueue: 2, delayMs: 0, timeoutMs: 300 });
  const app = createApp({ models: [], inferenceModels: [model] });
  const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }] };
  const responses = await Promise.all(Array.from({ length: 5 }, () => postJson(app, 'double', body)));
  const statuses = responses.map((r) => r.status);
  // The first runs at once (200 ms), two wait (the second would finish at 400 ms, past the 300 ms deadline), two find the queue full.
  assert.deepEqual(statuses, [200, 504, 504, 429, 429]);
  for (const response of responses.slice(1)) await assertProtocolError(response, response.status);
  assert.equal(responses[3]!.headers.get('retry-after'), '1');
  assertMatches('inference_response', await responses[0]!.json());
});

test('per-model metrics count requests, batch sizes, queue and run time', async () => {
  const session = doublingSession(1);
  // A long delay: the batch runs as soon as it is full (4 rows), however slowly the machine parses the bodies.
  const model = createPlainModel(spec(0), session, { ...options, delayMs: 5_000 });
  const app = createApp({ models: [], inferenceModels: [model] });
  const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
  await Promise.all(Array.from({ length: 4 }, () => postJson(app, 'double', body)));
  await postJson(app, 'double', { inputs: [] });
  const text = await (await app.request('/metrics')).text();
  assert.match(text, /ferry_infer_requests_total\{model="double",status="200"\} 4/);
  assert.match(text, /ferry_infer_requests_total\{model="double",status="400"\} 1/);
  assert.match(text, /ferry_infer_batch_rows_count\{model="double"\} 1/);
  assert.match(text, /ferry_infer_batch_rows_sum\{model="double"\} 4/);
  assert.match(text, /ferry_infer_batch_requests_sum\{model="double"\} 4/);
  assert.match(text, /ferry_infer_queue_seconds_count\{model="double"\} 4/);
  assert.match(text, /ferry_infer_run_seconds_count\{model="double"\} 1/);
  assert.match(text, /ferry_infer_queue_depth\{model="double"\} 0/);
});
