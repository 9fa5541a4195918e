// Thousands of malformed inference requests, JSON and binary: each must get the protocol's error
// shape with a 4xx status (or, when a mutation happens to make a valid request, a valid answer),
// never a 5xx or a crash.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createApp } from '../../../src/serve/app.ts';
import { openRuntime } from '../../../src/serve/runtime/index.ts';
import type { Session } from '../../../src/package/session.ts';
import { V2_DATATYPES } from '../../../src/serve/v2/datatypes.ts';
import { createPlainModel } from '../../../src/serve/v2/plain-model.ts';
import { denseClassifier, identityOfEveryDatatype } from './models.ts';
import { assertMatches, readResponse } from './protocol.ts';

let sessions: Session[];
let app: ReturnType<typeof createApp>;

before(async () => {
  const runtime = await openRuntime('cpu', () => {});
  const classifier = denseClassifier();
  const identity = identityOfEveryDatatype();
  sessions = [await runtime.createSession(classifier.onnx), await runtime.createSession(identity.onnx)];
  const options = { maxBatch: 8, maxQueue: 64, delayMs: 0, timeoutMs: 10_000 };
  app = createApp({
    models: [],
    inferenceModels: [createPlainModel(classifier.spec, sessions[0]!, options), createPlainModel(identity.spec, sessions[1]!, options)],
    maxInferBodyBytes: 1 << 16,
  });
});

after(async () => {
  for (const session of sessions) await session.release();
});

const datatypes = [...Object.keys(V2_DATATYPES), 'FLOAT32', 'BF16', '', 'fp32'];
const shapes = fc.oneof(fc.array(fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constantFrom(2 ** 31, 2 ** 53, 1e300, 1.5)), { maxLength: 5 }), fc.jsonValue());
const values = fc.oneof(fc.jsonValue(), fc.array(fc.oneof(fc.double(), fc.string(), fc.boolean(), fc.integer(), fc.constantFrom('NaN', '-Infinity')), { maxLength: 20 }));

interface Draft {
  header: Record<string, unknown>;
  blobs: Uint8Array[];
  /** Inference-Header-Content-Length relative to the JSON header's true length, or a raw value. */
  headerLength?: number | string;
}

/** A valid request for each model, one row. */
function validDraft(model: 'classifier' | 'identity'): Draft {
  if (model === 'classifier') return { header: { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: [0, 1, 2, 3, 4, 5, 6, 7] }] }, blobs: [] };
  const sample: Record<string, unknown[]> = { BOOL: [true, false], BYTES: ['a', 'b'] };
  return { header: { inputs: Object.keys(V2_DATATYPES).map((d) => ({ name: `in_${d}`, datatype: d, shape: [1, 2], data: sample[d] ?? [1, 2] })) }, blobs: [] };
}

// One small change each, most of which make the request wrong in one way.
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('datatype'), at: fc.nat(), value: fc.oneof(fc.constantFrom(...datatypes), fc.jsonValue()) }),
  fc.record({ kind: fc.constant('shape'), at: fc.nat(), value: shapes }),
  fc.record({ kind: fc.constant('data'), at: fc.nat(), value: values }),
  fc.record({ kind: fc.constant('name'), at: fc.nat(), value: fc.oneof(fc.constantFrom('pixels', 'in_FP32', 'features', ''), fc.string()) }),
  fc.record({ kind: fc.constant('drop'), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate'), at: fc.nat() }),
  fc.record({ kind: fc.constant('outputs'), value: fc.oneof(fc.array(fc.record({ name: fc.oneof(fc.constantFrom('logits', 'probs', 'out_FP32', 'nope'), fc.string()) })), fc.jsonValue()) }),
  fc.record({ kind: fc.constant('parameters'), value: fc.oneof(fc.record({ binary_data_output: fc.oneof(fc.boolean(), fc.jsonValue()) }), fc.jsonValue()) }),
  fc.record({ kind: fc.constant('binary'), at: fc.nat(), size: fc.integer({ min: -1, max: 80 }), bytes: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({ kind: fc.constant('headerLength'), value: fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom('', 'abc', '-1', '1e3', ' 12 ', '99999999999999999999')) }),
  fc.record({ kind: fc.constant('field'), key: fc.constantFrom('id', 'inputs', 'outputs', 'parameters'), value: fc.jsonValue() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(draft: Draft, change: Mutation): void {
  // An earlier change may have made `inputs` something else than a list of objects.
  const inputs = Array.isArray(draft.header.inputs) ? (draft.header.inputs as unknown[]).filter((i): i is Record<string, unknown> => typeof i === 'object' && i !== null) : [];
  const pick = (at: number) => inputs[at % Math.max(1, inputs.length)];
  switch (change.kind) {
    case 'datatype': case 'shape': case 'data': case 'name': {
      const input = pick(change.at);
      if (input) input[change.kind] = change.value;
      break;
    }
    case 'drop': if (Array.isArray(draft.header.inputs)) (draft.header.inputs as unknown[]).splice(change.at % Math.max(1, inputs.length), 1); break;
    case 'duplicate': if (Array.isArray(draft.header.inputs) && pick(change.at)) (draft.header.inputs as unknown[]).push({ ...pick(change.at) }); break;
    case 'outputs': case 'parameters': draft.header[change.kind] = change.value; break;
    case 'binary': {
      const input = pick(change.at);
      if (!input) break;
      delete input.data;
      input.parameters = { binary_data_size: change.size };
      draft.blobs.push(change.bytes);
      break;
    }
    case 'headerLength': draft.headerLength = change.value; break;
    case 'field': draft.header[change.key] = change.value; break;
  }
}

const cases = fc.record({
  model: fc.constantFrom('classifier' as const, 'identity' as const),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }),
});

test('2,000+ bad requests: always the protocol error shape with a 4xx status, never a 5xx', async () => {
  let refused = 0;
  await fc.assert(fc.asyncProperty(cases, async ({ model, mutations }) => {
    const draft = validDraft(model);
    for (const change of mutations) mutate(draft, change);
    const text = JSON.stringify(draft.header);
    const json = new TextEncoder().encode(text);
    const binary = new Uint8Array(draft.blobs.reduce((n, b) => n + b.byteLength, 0));
    draft.blobs.reduce((offset, b) => (binary.set(b, offset), offset + b.byteLength), 0);
    const payload = new Uint8Array(json.byteLength + binary.byteLength);
    payload.set(json);
    payload.set(binary, json.byteLength);
    const { headerLength } = draft;
    const length = typeof headerLength === 'string' ? headerLength
      : headerLength !== undefined ? String(json.byteLength + headerLength)
      : draft.blobs.length ? String(json.byteLength) : undefined;
    const response = await app.request(`/v2/models/${model}/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...(length === undefined ? {} : { 'inference-header-content-length': length }) }, body: payload,
    });
    assert.ok(response.status < 500, `status ${response.status} for ${text.slice(0, 200)}`);
    const { json: answer } = await readResponse(response);
    if (response.status === 200) {
      assertMatches('inference_response', answer, { binary: response.headers.has('inference-header-content-length') });
    } else {
      assert.ok(response.status >= 400);
      assertMatches('inference_error_response', answer);
      refused++;
    }
  }), { seed: 19, numRuns: 2400 });
  assert.ok(refused >= 2000, `${refused} of 2400 requests were refused`);
});
