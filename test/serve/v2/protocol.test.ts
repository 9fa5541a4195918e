import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApp } from '../../../src/serve/app.ts';
import { openModel, type ServedModel } from '../../../src/serve/model.ts';
import { openRuntime } from '../../../src/serve/runtime/index.ts';
import type { Session } from '../../../src/package/session.ts';
import { V2_DATATYPES } from '../../../src/serve/v2/datatypes.ts';
import { createPlainModel } from '../../../src/serve/v2/plain-model.ts';
import { toHalfBits } from '../../../src/float16.ts';
import { buildPackages, type TestPackages } from '../packages.ts';
import { denseClassifier, expectedLogits, identityOfEveryDatatype } from './models.ts';
import { bytesOf, halvesToNumbers, lengthPrefixed, postBinary, postJson } from './infer.ts';
import { assertMatches, assertProtocolError, readResponse } from './protocol.ts';

const classifier = denseClassifier();
const identity = identityOfEveryDatatype();
let sessions: Session[];
let packages: TestPackages;
let lm: ServedModel;
let app: ReturnType<typeof createApp>;

const options = { maxBatch: 8, maxQueue: 16, delayMs: 1, timeoutMs: 10_000 };

before(async () => {
  const runtime = await openRuntime('cpu', () => {});
  sessions = [await runtime.createSession(classifier.onnx), await runtime.createSession(identity.onnx)];
  packages = await buildPackages();
  lm = await openModel(packages.lstm, { runtime, maxBatch: 4, maxQueue: 8 });
  app = createApp({
    models: [lm],
    inferenceModels: [createPlainModel(classifier.spec, sessions[0]!, options), createPlainModel(identity.spec, sessions[1]!, options)],
  });
});

after(async () => {
  for (const session of sessions) await session.release();
  await lm.close();
  await packages.remove();
});

const get = (path: string) => Promise.resolve(app.request(path));

test('server metadata, liveness and readiness follow the protocol', async () => {
  for (const path of ['/v2', '/v2/']) {
    const response = await get(path);
    assert.equal(response.status, 200);
    const body = await response.json() as { name: string; extensions: string[] };
    assertMatches('metadata_server_response', body);
    assert.equal(body.name, 'ferry');
    assert.ok(body.extensions.includes('binary_tensor_data'));
  }
  for (const path of ['/v2/health/live', '/v2/health/ready', '/v2/models/classifier/ready', '/v2/models/classifier/versions/1/ready']) {
    const response = await get(path);
    assert.equal(response.status, 200, path);
    assert.equal(await response.text(), '');
  }
  await assertProtocolError(await get('/v2/models/nope/ready'), 404, 'metadata_model_error_response');
  await assertProtocolError(await get('/v2/models/classifier/versions/2/ready'), 404, 'metadata_model_error_response');
  await assertProtocolError(await get('/v2/nothing/here'), 404, 'metadata_server_error_response');
});

test('model metadata names every tensor with its v2 datatype and -1 for dynamic dims', async () => {
  for (const path of ['/v2/models/classifier', '/v2/models/classifier/versions/1']) {
    const response = await get(path);
    assert.equal(response.status, 200);
    const body = await response.json();
    assertMatches('metadata_model_response', body);
    assert.deepEqual(body, {
      name: 'classifier', versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }, { name: 'probs', datatype: 'FP32', shape: [-1, 3] }],
    });
  }
  const identityMeta = await (await get('/v2/models/identity')).json() as { inputs: { datatype: string }[] };
  assert.deepEqual(identityMeta.inputs.map((i) => i.datatype), Object.keys(V2_DATATYPES));
  const lmMeta = await (await get('/v2/models/tiny-lstm')).json();
  assertMatches('metadata_model_response', lmMeta);
  assert.deepEqual((lmMeta as { inputs: unknown }).inputs, [{ name: 'text_input', datatype: 'BYTES', shape: [-1] }]);
  await assertProtocolError(await get('/v2/models/nope'), 404, 'metadata_model_error_response');
  await assertProtocolError(await get('/v2/models/classifier/versions/7'), 404, 'metadata_model_error_response');
});

const rows = [[0.5, -1, 2, 0, 0.25, 1, -0.5, 3], [1, 1, 1, 1, -1, -1, -1, -1]];

test('JSON inference computes the model, flat or nested data, all outputs or the ones asked for', async () => {
  for (const data of [rows.flat(), rows]) {
    const response = await postJson(app, 'classifier', { id: 'req-1', inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], data }] });
    assert.equal(response.status, 200);
    const body = await response.json() as { id: string; model_name: string; model_version: string; outputs: { name: string; shape: number[]; data: number[] }[] };
    assertMatches('inference_response', body);
    assert.equal(body.id, 'req-1');
    assert.equal(body.model_name, 'classifier');
    assert.deepEqual(body.outputs.map((o) => [o.name, o.shape]), [['logits', [2, 3]], ['probs', [2, 3]]]);
    const expected = expectedLogits(classifier, rows).flat();
    body.outputs[0]!.data.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `logit ${i}: ${v} vs ${expected[i]}`));
    for (let r = 0; r < 2; r++) assert.ok(Math.abs(body.outputs[1]!.data.slice(r * 3, r * 3 + 3).reduce((a, b) => a + b) - 1) < 1e-6);
  }
  const only = await postJson(app, 'classifier', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: rows[0] }], outputs: [{ name: 'probs' }] });
  const body = await only.json() as { outputs: { name: string }[] };
  assertMatches('inference_response', body);
  assert.deepEqual(body.outputs.map((o) => o.name), ['probs']);
  const versioned = await app.request('/v2/models/classifier/versions/1/infer', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: rows[0] }] }),
  });
  assert.equal(versioned.status, 200);
  assert.equal((await versioned.json() as { model_version: string }).model_version, '1');
});

// Two rows of each datatype, at the edges of its range where JSON can carry them exactly.
const JSON_VALUES: Record<string, unknown[]> = {
  BOOL: [true, false], UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295], UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647], INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  FP16: [65504, -0.5], FP32: [3.4028234663852886e38, 'NaN'], FP64: [Number.MIN_VALUE, '-Infinity'], BYTES: ['héllo', '😀'],
};

test('every v2 datatype goes through a model and back in JSON', async () => {
  const inputs = Object.keys(V2_DATATYPES).map((datatype) => ({ name: `in_${datatype}`, datatype, shape: [2, 2], data: [...JSON_VALUES[datatype]!, ...JSON_VALUES[datatype]!] }));
  const response = await postJson(app, 'identity', { inputs });
  assert.equal(response.status, 200);
  const body = await response.json() as { outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] };
  assertMatches('inference_response', body);
  for (const output of body.outputs) {
    const datatype = output.name.slice(4);
    assert.equal(output.datatype, datatype);
    assert.deepEqual(output.shape, [2, 2]);
    assert.deepEqual(output.data, [...JSON_VALUES[datatype]!, ...JSON_VALUES[datatype]!], datatype);
  }
});

test('binary tensors in and out, for every datatype, at the full range of 64-bit integers', async () => {
  const arrays: Record<string, ArrayBufferView> = {
    BOOL: Uint8Array.of(1, 0, 0, 1), UINT8: Uint8Array.of(0, 255, 7, 8), UINT16: Uint16Array.of(0, 65535, 1, 2), UINT32: Uint32Array.of(0, 4294967295, 1, 2),
    UINT64: BigUint64Array.of(0n, 2n ** 64n - 1n, 1n, 2n), INT8: Int8Array.of(-128, 127, 0, 1), INT16: Int16Array.of(-32768, 32767, 0, 1),
    INT32: Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0, 1), INT64: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, 1n),
    FP16: Uint16Array.from([1, -2, 65504, 0.25], toHalfBits), FP32: Float32Array.of(1.5, -0, Infinity, 1e-30), FP64: Float64Array.of(Math.PI, -1e300, 0, 5e-324),
  };
  const strings = ['', 'naïve', 'x'.repeat(300), '€'];
  const blobs = [...Object.values(arrays).map(bytesOf), lengthPrefixed(strings)];
  const header = {
    inputs: Object.keys(V2_DATATYPES).map((datatype, i) => ({ name: `in_${datatype}`, datatype, shape: [2, 2], parameters: { binary_data_size: blobs[i]!.byteLength } })),
    parameters: { binary_data_output: true },
  };
  assertMatches('inference_request', header, { binary: true });
  const response = await postBinary(app, 'identity', header, blobs);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/octet-stream');
  const { json, binary } = await readResponse(response);
  assertMatches('inference_response', json, { binary: true });
  let offset = 0;
  for (const [i, output] of (json as { outputs: { name: string; parameters: { binary_data_size: number } }[] }).outputs.entries()) {
    const size = output.parameters.binary_data_size;
    assert.deepEqual(binary.subarray(offset, offset + size), blobs[i], output.name);
    offset += size;
  }
  assert.equal(offset, binary.byteLength);

  // One output binary, the other JSON; JSON writes 64-bit integers exactly too.
  const mixed = await postBinary(app, 'identity', { ...header, parameters: {}, outputs: [{ name: 'out_INT64' }, { name: 'out_FP16', parameters: { binary_data: true } }] }, blobs);
  const read = await readResponse(mixed);
  assertMatches('inference_response', read.json, { binary: true });
  const outputs = (read.json as { outputs: { name: string; data?: unknown[] }[] }).outputs;
  assert.equal(outputs[0]!.data!.length, 4);
  assert.deepEqual(halvesToNumbers(new Uint16Array(read.binary.slice().buffer)), [1, -2, 65504, 0.25]);
  const raw = await postBinary(app, 'identity', { ...header, parameters: {}, outputs: [{ name: 'out_INT64' }] }, blobs);
  assert.match(new TextDecoder().decode(new Uint8Array(await raw.arrayBuffer())), /"data":\[-9223372036854775808,9223372036854775807,0,1\]/);
});

test('a language model answers text_input with the text /v1/completions gives', async () => {
  const parameters = { max_tokens: 8, temperature: 0 };
  const response = await postJson(app, 'tiny-lstm', { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [2], data: ['ROMEO:', 'to be'] }], parameters });
  assert.equal(response.status, 200);
  const body = await response.json() as { outputs: { name: string; datatype: string; data: string[] }[] };
  assertMatches('inference_response', body);
  const completion = await (await app.request('/v1/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-lstm', prompt: ['ROMEO:', 'to be'], ...parameters }),
  })).json() as { choices: { text: string }[] };
  assert.deepEqual(body.outputs[0]!.data, completion.choices.map((c) => c.text));
  assert.equal(body.outputs[0]!.datatype, 'BYTES');
  const bad = await postJson(app, 'tiny-lstm', { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1], data: ['x'] }], parameters: { max_tokens: -1 } });
  await assertProtocolError(bad, 400);
});

const features = (extra: Record<string, unknown> = {}) => ({ name: 'features', datatype: 'FP32', shape: [1, 8], data: rows[0], ...extra });

test('bad requests get the protocol error shape with a 4xx status naming the problem', async () => {
  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    ['wrong dtype', () => postJson(app, 'classifier', { inputs: [features({ datatype: 'INT32' })] }), 400, /must be FP32, not INT32/],
    ['unknown dtype', () => postJson(app, 'classifier', { inputs: [features({ datatype: 'FLOAT' })] }), 400, /unknown datatype "FLOAT"/],
    ['wrong shape', () => postJson(app, 'classifier', { inputs: [features({ shape: [1, 7] })] }), 400, /has shape \[1, 7\]; classifier takes \[-1, 8\]/],
    ['wrong rank', () => postJson(app, 'classifier', { inputs: [features({ shape: [8] })] }), 400, /has shape \[8\]/],
    ['shape and data disagree', () => postJson(app, 'classifier', { inputs: [features({ shape: [2, 8] })] }), 400, /holds 16 elements but data has 8/],
    ['a string in FP32 data', () => postJson(app, 'classifier', { inputs: [features({ data: [1, 2, 3, 'four', 5, 6, 7, 8] })] }), 400, /data\[3\] is "four", not a number/],
    ['unknown input', () => postJson(app, 'classifier', { inputs: [features(), features({ name: 'pixels' })] }), 400, /unknown input "pixels"/],
    ['missing input', () => postJson(app, 'identity', { inputs: [{ name: 'in_FP32', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }), 400, /missing input "in_BOOL"/],
    ['input twice', () => postJson(app, 'classifier', { inputs: [features(), features()] }), 400, /given twice/],
    ['unknown output', () => postJson(app, 'classifier', { inputs: [features()], outputs: [{ name: 'scores' }] }), 400, /unknown output "scores"/],
    ['batch over the max', () => postJson(app, 'classifier', { inputs: [features({ shape: [9, 8], data: new Array(72).fill(0) })] }), 400, /exceeds classifier's max batch size 8/],
    ['an empty batch', () => postJson(app, 'classifier', { inputs: [features({ shape: [0, 8], data: [] })] }), 400, /batch dim is 0/],
    ['not JSON', () => postJson(app, 'classifier', '{"inputs": ['), 400, /not valid JSON/],
    ['no inputs', () => postJson(app, 'classifier', { inputs: [] }), 400, /inputs/],
    ['integer out of range', () => postJson(app, 'identity', { inputs: Object.keys(V2_DATATYPES).map((d) => ({ name: `in_${d}`, datatype: d, shape: [1, 2], data: d === 'UINT8' ? [1, 256] : [...JSON_VALUES[d]!] })) }), 400, /data\[1\] is 256, not an integer in \[0, 255\]/],
    ['unknown model', () => postJson(app, 'nope', { inputs: [features()] }), 404, /no model named "nope"/],
    ['binary header length past the body', () => postBinary(app, 'classifier', { inputs: [features({ data: undefined, parameters: { binary_data_size: 32 } })] }, [new Uint8Array(32)], 10_000), 400, /Inference-Header-Content-Length is 10000 but the body has only/],
    ['binary size past the body', () => postBinary(app, 'classifier', { inputs: [features({ data: undefined, parameters: { binary_data_size: 64 } })] }, [new Uint8Array(32)]), 400, /runs past the end of the body/],
    ['binary size wrong for the shape', () => postBinary(app, 'classifier', { inputs: [features({ data: undefined, parameters: { binary_data_size: 16 } })] }, [new Uint8Array(16)]), 400, /takes 32 bytes but binary_data_size is 16/],
    ['bytes no input claims', () => postBinary(app, 'classifier', { inputs: [features()] }, [new Uint8Array(5)]), 400, /5 bytes after the JSON header/],
    ['a declared 100 MB body', () => Promise.resolve(app.request('/v2/models/classifier/infer', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(100e6) }, body: '{}' })), 413, /exceeds 67108864 bytes/],
  ];
  for (const [name, send, status, message] of cases) {
    const error = await assertProtocolError(await send(), status);
    assert.match(error, message, name);
  }
});

test('a 100 MB body streamed without a length is cut off at the limit with 413', async () => {
  let sent = 0;
  const chunk = new Uint8Array(1 << 20).fill(0x20);
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 100e6) return controller.close();
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  const response = await app.request('/v2/models/classifier/infer', { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
  await assertProtocolError(response, 413);
  assert.ok(sent < 100e6, `stopped reading after ${sent} bytes`);
});

test('with an API key, refusals on /v2 routes (no key, a wrong key, a foreign Host) take the protocol error shape', async () => {
  const guarded = createApp({
    models: [lm],
    inferenceModels: [createPlainModel(classifier.spec, sessions[0]!, options)],
    apiKey: 'sesame',
  });
  const missing = await guarded.request('/v2/models/classifier');
  assert.match(await assertProtocolError(missing, 401, 'metadata_model_error_response'), /API key is required/);
  assert.match(missing.headers.get('www-authenticate') ?? '', /Bearer/);
  const wrong = await guarded.request('/v2/models/classifier/infer', { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}' });
  assert.match(await assertProtocolError(wrong, 401), /not valid/);
  const ok = await guarded.request('/v2/models/classifier', { headers: { authorization: 'Bearer sesame' } });
  assert.equal(ok.status, 200);
  assertMatches('metadata_model_response', await ok.json());
  // Outside /v2 the same refusal keeps OpenAI's shape.
  const openai = await guarded.request('/v1/models');
  assert.equal(openai.status, 401);
  assert.equal(typeof ((await openai.json()) as { error: { message: string } }).error.message, 'string');

  const loopback = createApp({ models: [lm], inferenceModels: [], allowedHosts: ['127.0.0.1'] });
  await assertProtocolError(await loopback.request('http://evil.example/v2'), 403, 'metadata_server_error_response');
});
