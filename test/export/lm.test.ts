/**
 * Language-model exports end to end: state / KV-cache I/O of docs/FORMATS.md, every attention
 * form against tfjs (full sequence, token by token, left padding), quantized files, the ONNX
 * checker and onnxruntime-web (WASM) on the packages.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import onnxProto from 'onnx-proto';
import { exportModel, type ExportReport } from '../../src/export/index.ts';
import { createSession, initialState, runStep } from '../../src/export/runner.ts';
import type { ParityReport, VariantParity } from '../../src/export/verify.ts';
import { parseManifest } from '../../src/package/index.ts';
import { fileSystemIO } from '../../src/train/tfjs-io.ts';
import { checkModels } from './checker.ts';
import { makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from './fixtures.ts';

const packages: string[] = [];
let lstm: { dir: string; vocab: number };
let transformer: { dir: string; vocab: number };

before(async () => {
  const a = await makeCheckpoint(TINY_LSTM, { trainSteps: 30 });
  lstm = { dir: a.dir, vocab: a.config.vocabSize };
  const b = await makeCheckpoint({ ...TINY_TRANSFORMER, nEmbd: 32, positional: 'sinusoidal', tieWeights: true }, { trainSteps: 10 });
  transformer = { dir: b.dir, vocab: b.config.vocabSize };
});

async function exportTo(options: Omit<Parameters<typeof exportModel>[0], 'outDir'>): Promise<{ out: string; report: ExportReport; manifest: Record<string, any> }> {
  const out = path.join(await tempDir(), 'pkg');
  const report = await exportModel({ ...options, outDir: out });
  packages.push(out);
  return { out, report, manifest: JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8')) };
}

/** The int8 / fp16 parity export recorded: measured, and within the bounds it was checked against. */
function assertVariantParity(parity: VariantParity): void {
  for (const key of ['maxAbsDiff', 'tolerance', 'incrementalMaxAbsDiff', 'incrementalTolerance'] as const) assert.equal(typeof parity[key], 'number', key);
  assert.ok(parity.maxAbsDiff > 0 && parity.maxAbsDiff <= parity.tolerance, `logits vs fp32 ${parity.maxAbsDiff} within ${parity.tolerance}`);
  assert.ok(parity.incrementalMaxAbsDiff <= parity.incrementalTolerance, `incremental vs full ${parity.incrementalMaxAbsDiff} within ${parity.incrementalTolerance}`);
}

function caseDiff(parity: unknown, prefix: string): number {
  const found = (parity as ParityReport).cases.find((c) => c.name.startsWith(prefix));
  assert.ok(found, `a parity case named ${prefix}…`);
  return found.maxAbsDiff;
}

test('LSTM: state I/O as FORMATS.md, parity incl. token-by-token decoding, int8 and fp16 within bounds', async () => {
  const { out, report, manifest } = await exportTo({ source: lstm.dir, quantize: 'int8', fp16: true });
  assert.equal(manifest.arch, 'lstm');
  assert.deepEqual(manifest.state, { kind: 'lstm', layers: 2, hiddenSize: 12 });
  assert.deepEqual(manifest.inputs.map((i: { name: string }) => i.name), ['input_ids', 'past_h.0', 'past_c.0', 'past_h.1', 'past_c.1']);
  assert.deepEqual(manifest.inputs[1].shape, ['batch_size', 12]);
  assert.deepEqual(manifest.outputs.map((i: { name: string }) => i.name), ['logits', 'present_h.0', 'present_c.0', 'present_h.1', 'present_c.1']);
  assert.deepEqual(manifest.outputs[0].shape, ['batch_size', 'sequence_length', lstm.vocab]);
  assert.equal(manifest.contextLength, null);
  assert.deepEqual(manifest.cpuOnlyNodes, []);
  assert.ok(caseDiff(report.parity.fp32, 'LSTM state decode') <= 1e-4);
  assert.ok(caseDiff(report.parity.fp32, 'sample text') <= 1e-4);
  const int8 = report.parity.int8 as unknown as VariantParity & { perplexityChange: number; perplexity: number; bytes: number; fp32Bytes: number };
  assert.ok(int8.bytes < int8.fp32Bytes * 0.75, `int8 (LSTM weights stored as int8) ${int8.bytes} vs fp32 ${int8.fp32Bytes}`);
  assertVariantParity(manifest.parity.int8);
  assertVariantParity(manifest.parity.fp16);
  const fp16 = report.parity.fp16 as { perplexityChange: number; bytes: number; fp32Bytes: number };
  assert.ok(int8.perplexity < lstm.vocab * 0.8, `trained model predicts better than uniform (${int8.perplexity})`);
  assert.ok(Math.abs(int8.perplexityChange) < 0.02, `int8 perplexity change ${int8.perplexityChange}`);
  assert.ok(Math.abs(fp16.perplexityChange) < 0.001, `fp16 perplexity change ${fp16.perplexityChange}`);
  assert.ok(fp16.bytes < fp16.fp32Bytes * 0.75, `fp16 ${fp16.bytes} vs fp32 ${fp16.fp32Bytes}`);
  assert.deepEqual(manifest.files, { fp32: 'onnx/model.onnx', int8: 'onnx/model_quantized.onnx', fp16: 'onnx/model_fp16.onnx' });
  const proto = onnxProto.onnx.ModelProto.decode(await readFile(path.join(out, 'onnx/model.onnx')));
  assert.equal(proto.producerName, 'ferry');
  const embedded = JSON.parse(proto.metadataProps.find((p) => p.key === 'ferry')!.value!);
  assert.deepEqual(embedded.state, manifest.state);
});

test('int8 and fp16 files carry the state: token-by-token decoding follows their own full-sequence logits', async () => {
  for (const pkg of packages) {
    const manifest = JSON.parse(await readFile(path.join(pkg, 'ferry.json'), 'utf8'));
    if (manifest.arch !== 'lstm') continue;
    const spec = { arch: 'lstm', vocabSize: manifest.model.vocabSize, layers: 2, hiddenSize: 12, withCell: true } as const;
    for (const file of [manifest.files.int8, manifest.files.fp16]) {
      const session = await createSession(await readFile(path.join(pkg, file)));
      const ids = [[3, 1, 4, 1, 5, 9, 2, 6]];
      const full = await runStep(session, spec, ids, initialState(spec, 1));
      let state = initialState(spec, 1);
      let worst = 0;
      for (let t = 0; t < ids[0]!.length; t++) {
        const step = await runStep(session, spec, [[ids[0]![t]!]], state);
        state = step.state;
        const row = full.logits.subarray(t * spec.vocabSize, (t + 1) * spec.vocabSize);
        step.logits.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - row[i]!))));
      }
      // int8 quantizes activations per call, so a one-token call rounds a little differently.
      assert.ok(worst < (file === manifest.files.int8 ? 0.05 : 1e-4), `${file}: incremental vs full ${worst}`);
      await session.release();
    }
    return;
  }
  assert.fail('no LSTM package with int8 and fp16 files');
});

test('LSTM with tied weights: the shared table is stored once and converts both calls', async () => {
  const { dir } = await makeCheckpoint({ ...TINY_LSTM, embeddingDim: 12, tieWeights: true });
  const { report } = await exportTo({ source: dir });
  assert.ok((report.parity.fp32 as ParityReport).maxAbsDiff <= 1e-4);
});

for (const attention of ['decomposed', 'mha', 'gqa', 'attention23'] as const) {
  test(`Transformer, attention ${attention}: KV-cache I/O, parity, decoding and left padding`, async () => {
    const { report, manifest } = await exportTo({ source: transformer.dir, attention });
    assert.equal(manifest.attention, attention);
    assert.equal(manifest.opset, attention === 'attention23' ? 23 : 17);
    assert.deepEqual(manifest.state, { kind: 'kv', layers: 2, heads: 2, headDim: 16 });
    assert.deepEqual(manifest.inputs.map((i: { name: string }) => i.name), [
      'input_ids', 'attention_mask', 'position_ids',
      'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value',
    ]);
    assert.deepEqual(manifest.inputs[3].shape, ['batch_size', 2, 'past_sequence_length', 16]);
    const fresh = attention === 'decomposed' ? ['new_key_values.0.key', 'new_key_values.0.value', 'new_key_values.1.key', 'new_key_values.1.value'] : [];
    assert.deepEqual(manifest.outputs.map((i: { name: string }) => i.name), ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value', ...fresh]);
    assert.deepEqual(manifest.outputs[1].shape, ['batch_size', 2, 'total_sequence_length', 16]);
    if (fresh.length) {
      assert.deepEqual(manifest.outputs[5].shape, ['batch_size', 2, 'sequence_length', 16]);
      assert.ok(caseDiff(report.parity.fp32, 'server slab cache decode') <= 1e-4);
    }
    assert.ok(caseDiff(report.parity.fp32, 'random ids, batch 3') <= 1e-4);
    assert.ok(caseDiff(report.parity.fp32, 'concat KV cache decode') <= 1e-4);
    assert.ok(caseDiff(report.parity.fp32, 'left-padded') <= 1e-4);
    assert.ok(caseDiff(report.parity.fp32, `chunked prefill, batch ${attention === 'gqa' ? 1 : 2}`) <= 1e-4);
  });
}

test('Transformer at opset 20 (one Gelu op per block) matches tfjs', async () => {
  const { report, manifest } = await exportTo({ source: transformer.dir, opset: 20 });
  assert.equal(manifest.opset, 20);
  assert.ok((report.parity.fp32 as ParityReport).maxAbsDiff <= 1e-4);
});

test('Transformer package: GPT-2 style config.json, generation_config.json, tokenizer files; int8 smaller and within 2%', async () => {
  const { out, report, manifest } = await exportTo({ source: transformer.dir, quantize: 'int8', target: 'wasm' });
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt2');
  assert.deepEqual([config.n_layer, config.n_head, config.n_embd, config.n_positions], [2, 2, 32, 24]);
  assert.equal(config.vocab_size, manifest.model.vocabSize);
  const generation = JSON.parse(await readFile(path.join(out, 'generation_config.json'), 'utf8'));
  assert.equal(generation.do_sample, true);
  assert.equal(generation.max_length, 24, 'generation stops at the context length');
  const tokenizerConfig = JSON.parse(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8'));
  assert.equal(tokenizerConfig.clean_up_tokenization_spaces, false);
  assert.ok(JSON.parse(await readFile(path.join(out, 'tokenizer.json'), 'utf8')).model);
  assert.equal(manifest.contextLength, 24);
  assert.equal(manifest.target, 'wasm');
  const int8 = report.parity.int8 as { perplexityChange: number; perplexity: number; bytes: number; fp32Bytes: number };
  assertVariantParity(manifest.parity.int8);
  assert.ok(int8.perplexity < transformer.vocab * 0.8, `trained model predicts better than uniform (${int8.perplexity})`);
  assert.ok(Math.abs(int8.perplexityChange) < 0.02, `int8 perplexity change ${int8.perplexityChange}`);
  assert.ok(int8.bytes < int8.fp32Bytes * 0.5, `int8 ${int8.bytes} vs fp32 ${int8.fp32Bytes}`);
  assert.ok(report.sizes['onnx/model_quantized.onnx']! < report.sizes['onnx/model.onnx']!);
});

test('onnxruntime-web (WASM) runs the LSTM and Transformer packages (fp32 and int8) like onnxruntime-node', async () => {
  ortWeb.env.wasm.numThreads = 1;
  const checked: string[] = [];
  for (const pkg of packages) {
    const manifest = JSON.parse(await readFile(path.join(pkg, 'ferry.json'), 'utf8'));
    for (const file of [manifest.files.fp32, manifest.files.int8].filter(Boolean) as string[]) {
      const bytes = await readFile(path.join(pkg, file));
      const feeds = (T: typeof ortNode.Tensor | typeof ortWeb.Tensor) => {
        const f: Record<string, InstanceType<typeof T>> = {};
        const ids = BigInt64Array.from([3n, 1n, 4n, 1n, 5n, 9n]);
        for (const input of manifest.inputs as { name: string; shape: (string | number)[] }[]) {
          if (input.name === 'input_ids') f[input.name] = new T('int64', ids, [2, 3]);
          else if (input.name === 'attention_mask') f[input.name] = new T('int64', new BigInt64Array(6).fill(1n), [2, 3]);
          else if (input.name === 'position_ids') f[input.name] = new T('int64', BigInt64Array.from([0n, 1n, 2n, 0n, 1n, 2n]), [2, 3]);
          else if (input.name.startsWith('past_key_values')) f[input.name] = new T('float32', new Float32Array(0), [2, input.shape[1] as number, 0, input.shape[3] as number]);
          else f[input.name] = new T('float32', new Float32Array(2 * (input.shape[1] as number)).fill(0.1), [2, input.shape[1] as number]);
        }
        return f;
      };
      const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
      const node = await ortNode.InferenceSession.create(bytes);
      const a = (await web.run(feeds(ortWeb.Tensor) as Record<string, ortWeb.Tensor>)).logits!.data as Float32Array;
      const b = (await node.run(feeds(ortNode.Tensor) as Record<string, ortNode.Tensor>)).logits!.data as Float32Array;
      assert.equal(a.length, b.length);
      let max = 0;
      for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
      assert.ok(max <= 1e-4, `${pkg}/${file}: WASM vs node max |diff| ${max}`);
      await web.release();
      await node.release();
      checked.push(`${manifest.arch}:${file}`);
    }
  }
  assert.ok(checked.some((c) => c.startsWith('lstm:')) && checked.some((c) => c.startsWith('transformer:')));
  assert.ok(checked.includes('transformer:onnx/model_quantized.onnx') && checked.includes('lstm:onnx/model_quantized.onnx'));
});

test('--target webgpu records a HardSigmoid LSTM and opset-23 Attention as CPU-only; a foreign model.json is a plain model that keeps its I/O names', async () => {
  const dir = await tempDir();
  const model = tf.sequential({ name: 'classifier' });
  model.add(tf.layers.embedding({ inputDim: 30, outputDim: 8, inputShape: [null], name: 'words' }));
  model.add(tf.layers.lstm({ units: 6, name: 'encoder' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'label' }));
  await model.save(fileSystemIO(dir));
  const { manifest, report } = await exportTo({ source: path.join(dir, 'model.json'), target: 'webgpu' });
  assert.equal(manifest.arch, 'model');
  assert.equal(manifest.model, undefined, 'a plain model carries no language-model fields');
  assert.deepEqual(manifest.inputs.map((i: { name: string }) => i.name), ['words_input']);
  assert.deepEqual(manifest.outputs, [{ name: 'label', dtype: 'float32', shape: ['batch_size', 3], batchDim: 0 }]);
  assert.equal(parseManifest(manifest, 'ferry.json').arch, 'model');
  assert.deepEqual(manifest.cpuOnlyNodes, ['encoder/LSTM']);
  assert.ok((report.parity.fp32 as ParityReport).maxAbsDiff <= 1e-4);
  const ferry = await exportTo({ source: lstm.dir, target: 'webgpu' });
  assert.deepEqual(ferry.manifest.cpuOnlyNodes, [], 'ferry LSTMs use sigmoid, which WebGPU runs');
  const attention23 = await exportTo({ source: transformer.dir, target: 'webgpu', attention: 'attention23', verify: false });
  assert.deepEqual(attention23.manifest.cpuOnlyNodes, ['block_0/attn/Attention', 'block_1/attn/Attention']);
});

test('every exported package passes the ONNX checker (opset-23 files are skipped with a reason)', async () => {
  const files: string[] = [];
  for (const pkg of packages) {
    const manifest = JSON.parse(await readFile(path.join(pkg, 'ferry.json'), 'utf8'));
    for (const file of Object.values(manifest.files).filter(Boolean) as string[]) files.push(path.join(pkg, file));
  }
  const { checked, skipped } = await checkModels(files);
  assert.ok(checked + skipped === files.length && files.length >= 10);
  await writeFile(path.join(await tempDir(), 'checked.txt'), files.join('\n'));
});

test('the training curve (metrics.jsonl of the checkpoint) travels into the package; a checkpoint without one gets none', async () => {
  const { dir } = await makeCheckpoint(TINY_LSTM);
  const bare = await tempDir();
  await exportModel({ source: dir, outDir: path.join(bare, 'pkg'), verify: false, log: () => {} });
  await assert.rejects(readFile(path.join(bare, 'pkg', 'metrics.jsonl')), { code: 'ENOENT' });

  const curve = '{"type":"train","step":10,"loss":3.2}\n{"type":"eval","step":10,"valLoss":3.4}\n';
  await writeFile(path.join(dir, 'metrics.jsonl'), curve);
  const out = await tempDir();
  await exportModel({ source: dir, outDir: path.join(out, 'pkg'), verify: false, log: () => {} });
  assert.equal(await readFile(path.join(out, 'pkg', 'metrics.jsonl'), 'utf8'), curve);
});
