import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FerryError } from '../../../src/errors.ts';
import { decodeNpy, encodeNpy } from '../../../src/npy.ts';
import type { TensorSignature } from '../../../src/serve/v2/model.ts';
import { readInputs, writeOutputs } from '../../../src/serve/v2/local-io.ts';

const inputs: TensorSignature[] = [{ name: 'features', datatype: 'FP32', shape: [-1, 2] }, { name: 'ids', datatype: 'INT64', shape: [-1] }];

test('inputs from .npy, a JSON tensor or a nested JSON array; outputs written as .npy', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-infer-io-'));
  try {
    await writeFile(path.join(dir, 'f.npy'), encodeNpy({ dtype: 'float32', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) }));
    await writeFile(path.join(dir, 'f.json'), '[[1, 2], [3, 4]]');
    await writeFile(path.join(dir, 'ids.json'), JSON.stringify({ datatype: 'INT64', shape: [3], data: [7, 8, 9] }));
    for (const features of ['f.npy', 'f.json']) {
      const feeds = await readInputs([`features=${path.join(dir, features)}`, `ids=${path.join(dir, 'ids.json')}`], inputs);
      assert.deepEqual(feeds.features, { dtype: 'float32', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, features);
      assert.deepEqual(feeds.ids, { dtype: 'int64', dims: [3], data: BigInt64Array.of(7n, 8n, 9n) });
    }
    const written = await writeOutputs({ 'probs/0': { dtype: 'float32', dims: [1, 2], data: Float32Array.of(0.25, 0.75) } }, path.join(dir, 'out'));
    assert.deepEqual(written, [path.join(dir, 'out', 'probs_0.npy')]);
    assert.deepEqual(await readdir(path.join(dir, 'out')), ['probs_0.npy']);
    assert.deepEqual(decodeNpy(new Uint8Array(await readFile(written[0]!)), 'x').data, Float32Array.of(0.25, 0.75));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bad --input values are FerryErrors naming the flag, file and problem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-infer-io-'));
  try {
    await writeFile(path.join(dir, 'ragged.json'), '[[1, 2], [3]]');
    await writeFile(path.join(dir, 'text.json'), '[["a", "b"]]');
    await writeFile(path.join(dir, 'ok.json'), '[[1, 2]]');
    await writeFile(path.join(dir, 'ids.json'), '[1]');
    const ids = `ids=${path.join(dir, 'ids.json')}`;
    const cases: [string[], RegExp][] = [
      [['features'], /--input features: expected NAME=FILE/],
      [[`pixels=${path.join(dir, 'ok.json')}`, ids], /the model has no input "pixels"/],
      [[`features=${path.join(dir, 'missing.npy')}`, ids], /cannot read the file \(ENOENT\)/],
      [[`features=${path.join(dir, 'ragged.json')}`, ids], /ragged.json: the array is ragged/],
      [[`features=${path.join(dir, 'text.json')}`, ids], /text.json: input "features": data\[0\] is "a", not a number/],
      [[`features=${path.join(dir, 'ok.json')}`], /no --input for ids/],
    ];
    for (const [pairs, message] of cases) {
      await assert.rejects(readInputs(pairs, inputs), (error: unknown) => error instanceof FerryError && message.test(error.message), String(message));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
