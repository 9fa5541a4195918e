import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { tritonConfigText, writeTritonRepo, type TritonModel } from '../../src/export/triton.ts';
import { denseClassifier, identityOfEveryDatatype } from '../serve/v2/models.ts';
import { checkTextFormat, parseProto } from './protobuf-text.ts';

const schema = parseProto(readFileSync(new URL('../serve/v2/protocol/model_config.proto', import.meta.url), 'utf8'));

test("the proto reader sees Triton's ModelConfig as the .proto states it", () => {
  const config = schema.messages.get('ModelConfig')!;
  assert.deepEqual(config.get('max_batch_size'), { type: 'int32', repeated: false, map: false });
  assert.deepEqual(config.get('input'), { type: 'ModelInput', repeated: true, map: false });
  assert.deepEqual(config.get('dynamic_batching'), { type: 'ModelDynamicBatching', repeated: false, map: false });
  assert.deepEqual(schema.messages.get('ModelInput')!.get('dims'), { type: 'int64', repeated: true, map: false });
  assert.ok(schema.enums.get('DataType')!.has('TYPE_STRING'));
  assert.throws(() => checkTextFormat('max_batch_size: "8"', schema, 'ModelConfig'), /max_batch_size is int32 but holds "8"/);
  assert.throws(() => checkTextFormat('input [ { name: "x" data_type: TYPE_FLOAT32 } ]', schema, 'ModelConfig'), /enum DataType, which has no TYPE_FLOAT32/);
  assert.throws(() => checkTextFormat('batch_size: 4', schema, 'ModelConfig'), /ModelConfig has no field "batch_size"/);
});

test('a plain model with a leading batch dim: max_batch_size, dims without it, dynamic_batching; every field as model_config.proto types it', () => {
  const { spec } = denseClassifier();
  const text = tritonConfigText(spec, { maxBatchSize: 16, queueDelayMicroseconds: 500 });
  const fields = checkTextFormat(text, schema, 'ModelConfig');
  assert.deepEqual(fields.get('name'), ['"classifier"']);
  assert.deepEqual(fields.get('platform'), ['"onnxruntime_onnx"']);
  assert.deepEqual(fields.get('max_batch_size'), ['16']);
  assert.deepEqual(fields.get('input.name'), ['"features"']);
  assert.deepEqual(fields.get('input.data_type'), ['TYPE_FP32']);
  assert.deepEqual(fields.get('input.dims'), ['8']);
  assert.deepEqual(fields.get('output.name'), ['"logits"', '"probs"']);
  assert.deepEqual(fields.get('output.dims'), ['3', '3']);
  assert.deepEqual(fields.get('dynamic_batching.max_queue_delay_microseconds'), ['500']);
});

test('every dtype maps to its Triton type; a model that cannot batch gets max_batch_size 0, full dims and no dynamic_batching', () => {
  const fields = checkTextFormat(tritonConfigText(identityOfEveryDatatype().spec), schema, 'ModelConfig');
  assert.deepEqual(fields.get('input.data_type'), ['TYPE_BOOL', 'TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP16', 'TYPE_FP32', 'TYPE_FP64', 'TYPE_STRING']);
  const lm: TritonModel = {
    name: 'tiny-lstm',
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch_size', 'sequence_length'] }, { name: 'past_h.0', dtype: 'float32', shape: ['batch_size', 24] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch_size', 'sequence_length', 300] }],
  };
  const lmFields = checkTextFormat(tritonConfigText(lm), schema, 'ModelConfig');
  assert.deepEqual(lmFields.get('max_batch_size'), ['0']);
  assert.deepEqual(lmFields.get('input.dims'), ['-1', '-1', '-1', '24']);
  assert.equal(lmFields.get('dynamic_batching.max_queue_delay_microseconds'), undefined);
});

test('--triton-repo lays a package out as OUT/<name>/config.pbtxt and OUT/<name>/1/model.onnx, which onnxruntime opens', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'ferry-triton-'));
  try {
    const { spec, onnx } = denseClassifier();
    const pkg = path.join(root, 'pkg');
    await mkdir(path.join(pkg, 'onnx'), { recursive: true });
    await writeFile(path.join(pkg, 'onnx/model.onnx'), onnx);
    await writeFile(path.join(pkg, 'ferry.json'), JSON.stringify({ format: 'ferry-onnx', version: 1, arch: 'model', ...spec, files: { fp32: 'onnx/model.onnx', int8: null, fp16: null } }));
    const repo = path.join(root, 'repo');
    const dir = await writeTritonRepo(pkg, repo);
    assert.equal(dir, path.join(repo, 'classifier'));
    assert.deepEqual((await readdir(dir)).sort(), ['1', 'config.pbtxt', 'ferry.json']);
    assert.deepEqual(await readdir(path.join(dir, '1')), ['model.onnx']);
    checkTextFormat(await readFile(path.join(dir, 'config.pbtxt'), 'utf8'), schema, 'ModelConfig');
    const manifest = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8'));
    assert.deepEqual(manifest.files, { fp32: '1/model.onnx', int8: null, fp16: null });
    const session = await ort.InferenceSession.create(path.join(dir, '1/model.onnx'));
    assert.deepEqual(session.inputNames, ['features']);
    await session.release();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
