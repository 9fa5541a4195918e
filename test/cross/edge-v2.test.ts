// A plain package in the edge worker (src/serve/edge.ts bundled by scripts/build-edge.ts) in real
// workerd through miniflare: /v2 from the same Hono app, the same answers as the float64 reference.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Miniflare } from 'miniflare';
import { buildEdge } from '../../scripts/build-edge.ts';
import { denseClassifier, expectedLogits, writePlainPackage } from '../serve/v2/models.ts';
import { assertMatches, assertProtocolError } from '../serve/v2/protocol.ts';
import { startWorkerd } from './harness.ts';

const classifier = denseClassifier();
let root: string;
let worker: Miniflare;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'ferry-edge-v2-'));
  const pkg = await writePlainPackage(path.join(root, 'classifier'), classifier);
  worker = startWorkerd(await buildEdge({ packages: [pkg], outDir: path.join(root, 'dist') }));
});

after(async () => {
  await worker?.dispose();
  await rm(root, { recursive: true, force: true });
});

test('the edge worker serves a plain package over /v2: metadata, JSON and binary inference, protocol errors', async () => {
  const meta = await (await worker.dispatchFetch('http://edge.test/v2/models/classifier')).json();
  assertMatches('metadata_model_response', meta);
  const rows = [[0.5, -1, 2, 0, 0.25, 1, -0.5, 3], [1, 1, 1, 1, -1, -1, -1, -1]];
  const response = await worker.dispatchFetch('http://edge.test/v2/models/classifier/infer', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 8], data: rows }], outputs: [{ name: 'logits' }] }),
  });
  assert.equal(response.status, 200);
  const body = await response.json() as { outputs: { data: number[] }[] };
  assertMatches('inference_response', body);
  const expected = expectedLogits(classifier, rows).flat();
  body.outputs[0]!.data.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5));

  const features = Float32Array.from(rows[0]!);
  const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], parameters: { binary_data_size: 32 } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
  const binary = await worker.dispatchFetch('http://edge.test/v2/models/classifier/infer', {
    method: 'POST', headers: { 'inference-header-content-length': String(header.byteLength) }, body: Buffer.concat([header, new Uint8Array(features.buffer)]),
  });
  assert.equal(binary.status, 200);
  const bytes = new Uint8Array(await binary.arrayBuffer());
  const length = Number(binary.headers.get('inference-header-content-length'));
  assertMatches('inference_response', JSON.parse(new TextDecoder().decode(bytes.subarray(0, length))), { binary: true });
  const logits = new Float32Array(bytes.slice(length).buffer);
  logits.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5));

  const bad = await worker.dispatchFetch('http://edge.test/v2/models/classifier/infer', { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'INT8', shape: [1, 8], data: [1, 2, 3, 4, 5, 6, 7, 8] }] }) });
  assert.match(await assertProtocolError(bad as unknown as Response, 400), /must be FP32, not INT8/);
});
