// Plain packages under `ferry serve` (a package dir and a Triton model repository) over real
// HTTP, and `ferry infer` from the command line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeTritonRepo } from '../../../src/export/triton.ts';
import { decodeNpy, encodeNpy } from '../../../src/npy.ts';
import { startServer, type RunningServer } from '../../../src/serve/node.ts';
import { denseClassifier, expectedLogits, identityOfEveryDatatype, writePlainPackage } from './models.ts';
import { assertMatches, assertProtocolError } from './protocol.ts';

const run = promisify(execFile);
const ferry = path.resolve('bin/ferry.js');
const classifier = denseClassifier();
const rows = [[0.5, -1, 2, 0, 0.25, 1, -0.5, 3], [1, 1, 1, 1, -1, -1, -1, -1]];
let root: string;
let server: RunningServer;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'ferry-v2-node-'));
  const pkg = await writePlainPackage(path.join(root, 'classifier'), classifier);
  await writePlainPackage(path.join(root, 'identity'), identityOfEveryDatatype());
  await writeTritonRepo(pkg, path.join(root, 'repo'));
  await writeTritonRepo(path.join(root, 'identity'), path.join(root, 'repo'));
  server = await startServer({ dirs: [path.join(root, 'repo')], port: 0, host: '127.0.0.1', maxBatch: 8, maxQueue: 16, device: 'cpu', batchDelayMs: 250, log: () => {} });
  await server.plainModels;
});

after(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

test('ferry serve serves a Triton model repository over /v2, batching concurrent requests', async () => {
  const health = await fetch(`${server.url}/v2/health/ready`);
  assert.equal(health.status, 200);
  const meta = await (await fetch(`${server.url}/v2/models/classifier`)).json();
  assertMatches('metadata_model_response', meta);
  const infer = (row: number[]) => fetch(`${server.url}/v2/models/classifier/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: row }] }),
  });
  const responses = await Promise.all([...rows, ...rows].map(infer));
  const expected = expectedLogits(classifier, [...rows, ...rows]);
  for (const [i, response] of responses.entries()) {
    assert.equal(response.status, 200);
    const body = await response.json() as { outputs: { name: string; data: number[] }[] };
    assertMatches('inference_response', body);
    body.outputs[0]!.data.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-5));
  }
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const runs = Number(/ferry_infer_batch_rows_count\{model="classifier"\} (\d+)/.exec(metrics)![1]);
  assert.ok(runs < 4, `four concurrent requests ran in ${runs} runs`);
  await assertProtocolError(await fetch(`${server.url}/v2/models/classifier/infer`, { method: 'POST', body: '{"inputs": []}' }), 400);
  assert.equal((await fetch(`${server.url}/v1/models`)).status, 200, 'the OpenAI routes still answer (with no language model)');
});

test('ferry infer runs a plain package on .npy and JSON inputs, printing a v2 response or writing .npy files', async () => {
  const input = path.join(root, 'features.npy');
  await writeFile(input, encodeNpy({ dtype: 'float32', dims: [2, 8], data: Float32Array.from(rows.flat()) }));
  const out = path.join(root, 'out');
  const written = await run(process.execPath, [ferry, 'infer', path.join(root, 'classifier'), '--input', `features=${input}`, '--output-dir', out, '--device', 'cpu']);
  assert.deepEqual(written.stdout.trim().split('\n'), [path.join(out, 'logits.npy'), path.join(out, 'probs.npy')]);
  const logits = decodeNpy(new Uint8Array(await readFile(path.join(out, 'logits.npy'))), 'logits.npy');
  assert.deepEqual(logits.dims, [2, 3]);
  const expected = expectedLogits(classifier, rows).flat();
  (logits.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5));

  const json = path.join(root, 'features.json');
  await writeFile(json, JSON.stringify(rows));
  const printed = await run(process.execPath, [ferry, 'infer', path.join(root, 'classifier'), '--input', `features=${json}`, '--device', 'cpu']);
  const response = JSON.parse(printed.stdout);
  assertMatches('inference_response', response);
  assert.deepEqual(response.outputs.map((o: { name: string }) => o.name), ['logits', 'probs']);

  const bad = await run(process.execPath, [ferry, 'infer', path.join(root, 'classifier'), '--input', `features=${path.join(root, 'nope.npy')}`, '--device', 'cpu']).catch((error: { code: number; stderr: string }) => error);
  assert.equal((bad as { code: number }).code, 1);
  assert.match((bad as { stderr: string }).stderr, /^ferry: --input features=.*nope\.npy: cannot read the file \(ENOENT\)/);
  assert.doesNotMatch((bad as { stderr: string }).stderr, /at .*\.ts:\d+/, 'no stack trace');
});
