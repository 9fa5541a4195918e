import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../src/export/index.ts';
import { makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from './fixtures.ts';

test('an LSTM checkpoint exports to a verified package with the state I/O of FORMATS.md', async () => {
  const { dir, config } = await makeCheckpoint(TINY_LSTM);
  const out = path.join(await tempDir(), 'pkg');
  const lines: string[] = [];
  const report = await exportModel({ source: dir, outDir: out, log: (l) => lines.push(l) });
  const manifest = JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8'));
  assert.equal(manifest.arch, 'lstm');
  assert.deepEqual(manifest.state, { kind: 'lstm', layers: 2, hiddenSize: 12 });
  assert.deepEqual(manifest.inputs.map((i: { name: string }) => i.name), ['input_ids', 'past_h.0', 'past_c.0', 'past_h.1', 'past_c.1']);
  assert.deepEqual(manifest.outputs.map((i: { name: string }) => i.name), ['logits', 'present_h.0', 'present_c.0', 'present_h.1', 'present_c.1']);
  assert.deepEqual(manifest.outputs[0].shape, ['batch_size', 'sequence_length', config.vocabSize]);
  assert.ok(report.parity.fp32 && (report.parity.fp32 as { maxAbsDiff: number }).maxAbsDiff <= 1e-4);
  assert.ok(lines.some((l) => l.includes('incremental decode')));
  const session = await ort.InferenceSession.create(path.join(out, 'onnx/model.onnx'));
  assert.ok(session.inputNames.includes('past_c.1'));
  await session.release();
});

test('a Transformer checkpoint exports with KV-cache I/O, config.json and generation_config.json', async () => {
  const { dir, config } = await makeCheckpoint(TINY_TRANSFORMER);
  const out = path.join(await tempDir(), 'pkg');
  await exportModel({ source: dir, outDir: out });
  const manifest = JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8'));
  assert.deepEqual(manifest.state, { kind: 'kv', layers: 2, heads: 2, headDim: 8 });
  assert.deepEqual(manifest.inputs.find((i: { name: string }) => i.name === 'past_key_values.1.value').shape, ['batch_size', 2, 'past_sequence_length', 8]);
  assert.equal(manifest.contextLength, 24);
  const gpt2 = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
  assert.equal(gpt2.model_type, 'gpt2');
  assert.equal(gpt2.n_layer, 2);
  assert.equal(gpt2.vocab_size, config.vocabSize);
  assert.ok(JSON.parse(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8')).clean_up_tokenization_spaces === false);
  assert.ok((manifest.parity.fp32.cases as { name: string }[]).some((c) => c.name.startsWith('left-padded')));
});
