/** `ferry quantize`: an exported package's int8 copy written again from its fp32 file alone. */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { FerryError } from '../../src/errors.ts';
import { exportModel } from '../../src/export/index.ts';
import { readModel } from '../../src/export/reader.ts';
import { requantizePackage } from '../../src/export/requantize.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { makeCheckpoint, tempDir, TINY_TRANSFORMER } from './fixtures.ts';

test('an ONNX file ferry wrote reads back into a graph that writes the same bytes', async () => {
  const { dir } = await makeCheckpoint(TINY_TRANSFORMER);
  const out = path.join(await tempDir(), 'pkg');
  await exportModel({ source: dir, outDir: out, quantize: 'int8', verify: false });
  for (const file of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
    const bytes = await readFile(path.join(out, file));
    const read = readModel(bytes);
    assert.ok(read.graph.nodes.length > 10 && read.graph.initializers.length > 5);
    assert.ok(Buffer.from(serializeModel(read.graph, { docString: read.docString, properties: read.properties })).equals(bytes), file);
  }
});

test('ferry quantize gives an fp32-only package a checked int8 copy and keeps every other file', async () => {
  const { dir } = await makeCheckpoint(TINY_TRANSFORMER, { trainSteps: 10 });
  const out = path.join(await tempDir(), 'pkg');
  await exportModel({ source: dir, outDir: out });
  const before = JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8'));
  assert.equal(before.files.int8, null);
  const tokenizer = await readFile(path.join(out, 'tokenizer.json'));

  const parity = await requantizePackage(out);
  const after = JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8'));
  assert.equal(after.files.int8, 'onnx/model_quantized.onnx');
  assert.deepEqual(after.parity.int8, parity);
  assert.ok(parity.maxAbsDiff! > 0 && parity.maxAbsDiff! <= parity.tolerance!);
  assert.ok(parity.incrementalMaxAbsDiff! <= parity.incrementalTolerance!);
  assert.deepEqual(after.parity.fp32, before.parity.fp32, 'the fp32 parity stays as export measured it');
  assert.ok((await readFile(path.join(out, 'tokenizer.json'))).equals(tokenizer));
  const embedded = JSON.parse(readModel(await readFile(path.join(out, 'onnx/model_quantized.onnx'))).properties.ferry!);
  assert.deepEqual(embedded.parity.int8, parity);
  assert.deepEqual((await readdir(path.dirname(out))).filter((f) => f.includes('.tmp-')), [], 'no temp dir left');
});

test('ferry quantize refuses a dir that is not a language-model package and leaves it as it was', async () => {
  const dir = await tempDir();
  await writeFile(path.join(dir, 'ferry.json'), JSON.stringify({ format: 'ferry-checkpoint', version: 1 }));
  await assert.rejects(requantizePackage(dir), (error: unknown) => {
    assert.ok(error instanceof FerryError && error.code === 'quantize_bad_package');
    assert.match(error.message, /is not a ferry language-model package: .*ferry\.json: field "format"/);
    return true;
  });
  assert.deepEqual(await readdir(dir), ['ferry.json']);
});
