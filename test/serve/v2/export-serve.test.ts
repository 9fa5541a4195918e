// The whole path of a foreign model: a tfjs Layers conv classifier, `ferry export --triton-repo`,
// then `ferry serve` on the Triton repository answering /v2 with tfjs's own predictions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { startServer, type RunningServer } from '../../../src/serve/node.ts';
import { mulberry32 } from '../../../src/random.ts';
import { fileSystemIO } from '../../../src/train/tfjs-io.ts';
import { checkTextFormat, parseProto } from '../../export/protobuf-text.ts';
import { assertMatches } from './protocol.ts';

let root: string;
let model: tf.LayersModel;
let server: RunningServer;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'ferry-v2-export-'));
  const input = tf.input({ shape: [8, 8, 3] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(conv) as tf.SymbolicTensor;
  const probs = tf.layers.dense({ units: 5, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(pooled) as tf.SymbolicTensor;
  model = tf.model({ inputs: input, outputs: probs, name: 'tiny_convnet' });
  await model.save(fileSystemIO(path.join(root, 'tfjs')));
  await promisify(execFile)(process.execPath, [path.resolve('bin/ferry.js'), 'export', path.join(root, 'tfjs', 'model.json'), '--out', path.join(root, 'pkg'), '--name', 'convnet', '--triton-repo', path.join(root, 'repo')], { maxBuffer: 1 << 24 });
  server = await startServer({ dirs: [path.join(root, 'repo')], port: 0, host: '127.0.0.1', maxBatch: 8, maxQueue: 16, device: 'cpu', log: () => {} });
  await server.plainModels;
});

after(async () => {
  await server?.close();
  model?.dispose();
  await rm(root, { recursive: true, force: true });
});

test('an exported tfjs conv classifier, laid out for Triton, is served over /v2 with the predictions tfjs makes', async () => {
  const schema = parseProto(readFileSync(new URL('./protocol/model_config.proto', import.meta.url), 'utf8'));
  const config = checkTextFormat(await readFile(path.join(root, 'repo', 'convnet', 'config.pbtxt'), 'utf8'), schema, 'ModelConfig');
  assert.deepEqual(config.get('max_batch_size'), ['32']);
  assert.deepEqual(config.get('input.dims'), ['8', '8', '3']);

  const meta = await (await fetch(`${server.url}/v2/models/convnet`)).json() as { inputs: { name: string; shape: number[] }[]; outputs: { name: string }[] };
  assertMatches('metadata_model_response', meta);
  assert.deepEqual(meta.inputs[0]!.shape, [-1, 8, 8, 3]);
  const random = mulberry32(5);
  const images = Array.from({ length: 3 }, () => Float32Array.from({ length: 8 * 8 * 3 }, () => random()));
  const expected = tf.tidy(() => (model.predict(tf.tensor(images.flatMap((i) => [...i]), [3, 8, 8, 3])) as tf.Tensor).arraySync() as number[][]);
  const answers = await Promise.all(images.map((image) => fetch(`${server.url}/v2/models/convnet/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: meta.inputs[0]!.name, datatype: 'FP32', shape: [1, 8, 8, 3], data: [...image] }] }),
  })));
  for (const [i, response] of answers.entries()) {
    assert.equal(response.status, 200);
    const body = await response.json() as { outputs: { name: string; shape: number[]; data: number[] }[] };
    assertMatches('inference_response', body);
    assert.equal(body.outputs[0]!.name, meta.outputs[0]!.name);
    assert.deepEqual(body.outputs[0]!.shape, [1, 5]);
    body.outputs[0]!.data.forEach((p, j) => assert.ok(Math.abs(p - expected[i]![j]!) < 1e-5, `image ${i} class ${j}: ${p} vs ${expected[i]![j]}`));
  }
});
