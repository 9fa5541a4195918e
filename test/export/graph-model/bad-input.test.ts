/** Broken graph models fail with one FerryError naming the file or node, and leave no package dir behind. */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { FerryError } from '../../../src/errors.ts';
import { exportModel } from '../../../src/export/index.ts';
import { tempDir } from '../fixtures.ts';
import { a, type GraphModelBuilder } from './builder.ts';
import { writeModel } from './helpers.ts';

const window = { data_format: a.s('NHWC'), padding: a.s('SAME'), strides: a.ints([1, 1, 1, 1]), dilations: a.ints([1, 1, 1, 1]) };

function smallConvNet(b: GraphModelBuilder, format = 'NHWC'): void {
  const x = b.placeholder('image', [-1, 8, 8, 3]);
  b.output(b.node('Conv2D', 'conv', [x, b.constant('w', [3, 3, 3, 4])], { ...window, data_format: a.s(format) }));
}

async function expectRefused(modelJson: string, code: string, message: RegExp): Promise<void> {
  const parent = await tempDir();
  const error = await exportModel({ source: modelJson, outDir: path.join(parent, 'pkg') }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError, `expected a FerryError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.match(error.message, message);
  assert.ok(error.hint && error.hint.length > 10, 'the error says what to do');
  assert.deepEqual(await readdir(parent), [], 'no package dir and no temp dir left behind');
}

async function editJson(file: string, edit: (json: Record<string, any>) => void): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8'));
  edit(json);
  await writeFile(file, JSON.stringify(json));
}

test('a good graph model exports; the same model with a truncated shard is refused naming the shard', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  const parent = await tempDir();
  const report = await exportModel({ source: file, outDir: path.join(parent, 'pkg') });
  assert.equal(report.arch, 'model');
  assert.deepEqual((await readdir(path.join(parent, 'pkg'))).sort(), ['ferry.json', 'onnx']);
  const shard = path.join(path.dirname(file), 'group1-shard1of1.bin');
  await truncate(shard, 100);
  await expectRefused(file, 'export_weights_size', /group1-shard1of1\.bin \(100 bytes\): 100 bytes, but model\.json's manifest describes 432 bytes/);
});

test('a manifest naming a missing shard', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  await rm(path.join(path.dirname(file), 'group1-shard1of1.bin'));
  await expectRefused(file, 'weights_not_found', /group1-shard1of1\.bin/);
});

test('a weight of an unknown dtype, and an input of one', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  await editJson(file, (json) => { json.weightsManifest[0].weights[0].dtype = 'complex64'; });
  await expectRefused(file, 'export_unknown_dtype', /weight w has dtype "complex64"/);
  const quantized = await writeModel((b) => smallConvNet(b));
  await editJson(quantized, (json) => { json.weightsManifest[0].weights[0].quantization = { dtype: 'int4', scale: 1, min: 0 }; });
  await expectRefused(quantized, 'export_unknown_dtype', /quantization dtype "int4"/);
  const input = await writeModel((b) => smallConvNet(b));
  await editJson(input, (json) => { json.modelTopology.node.find((n: { op: string }) => n.op === 'Placeholder').attr.dtype.type = 'DT_COMPLEX64'; });
  await expectRefused(input, 'export_unknown_dtype', /input image has dtype DT_COMPLEX64/);
});

test('an op with an attribute ferry does not support, an unknown op, and TF1 control flow, each named with its node', async () => {
  await expectRefused(await writeModel((b) => smallConvNet(b, 'NCHW')), 'export_unsupported_op', /node conv \(Conv2D\): attribute data_format NCHW is not supported/);
  const unknown = await writeModel((b) => {
    const x = b.placeholder('x', [2, 3]);
    b.output(b.node('Bucketize', 'buckets', [x], { boundaries: { list: { f: [0, 1] } } }));
  });
  await expectRefused(unknown, 'export_unsupported_op', /Bucketize \(node buckets\)/);
  const loop = await writeModel((b) => {
    const x = b.placeholder('x', [2, 3]);
    const enter = b.node('Enter', 'while/Enter', [x], { frame_name: a.s('while') });
    const merge = b.node('Merge', 'while/Merge', [enter, 'while/NextIteration']);
    const next = b.node('NextIteration', 'while/NextIteration', [merge]);
    void next;
    b.output(b.node('Exit', 'while/Exit', [merge]));
  });
  await expectRefused(loop, 'export_control_flow', /node while\/(Exit|Merge|Enter|NextIteration) \((Exit|Merge|Enter|NextIteration)\) is TF1 control flow/);
});

test('an attribute of the wrong type (a damaged file) is one FerryError naming the node, not a TypeError', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  await editJson(file, (json) => { json.modelTopology.node.find((n: { op: string }) => n.op === 'Conv2D').attr.strides = { list: { i: '1111' } }; });
  await expectRefused(file, 'export_bad_graph', /model\.json: node conv \(Conv2D\): attribute strides holds list\.i "1111", which is not a list/);
});

test('a Const node with no weight in the manifest names the node', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  await editJson(file, (json) => {
    json.weightsManifest[0].weights = [];
  });
  await writeFile(path.join(path.dirname(file), 'group1-shard1of1.bin'), new Uint8Array(0));
  await expectRefused(file, 'export_missing_weight', /node w \(Const\)/);
});

test('language-model options on a graph model are refused by name', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  const parent = await tempDir();
  const error = await exportModel({ source: file, outDir: path.join(parent, 'pkg'), quantize: 'int8' }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError);
  assert.equal(error.code, 'export_bad_options');
  assert.match(error.message, /--quantize apply only to ferry language-model checkpoints/);
  assert.deepEqual(await readdir(parent), []);
});

test('a model tfjs runs but whose export onnxruntime refuses (a float16 input into a float32 conv) is one FerryError naming the node, with --no-verify as the way out', async () => {
  const file = await writeModel((b) => smallConvNet(b));
  await editJson(file, (json) => { json.modelTopology.node.find((n: { op: string }) => n.op === 'Placeholder').attr.dtype.type = 'DT_HALF'; });
  await expectRefused(file, 'export_onnx_failed', /^onnxruntime cannot load the exported ONNX graph at node conv: .*tensor\(float16\) and tensor\(float\)/);
  const parent = await tempDir();
  const error = await exportModel({ source: file, outDir: path.join(parent, 'pkg') }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError && /--no-verify/.test(error.hint ?? ''), 'the hint names --no-verify');
  assert.doesNotMatch(error.message, /onnxruntime_src|\n/);
  // --no-verify writes it, as the hint says.
  const report = await exportModel({ source: file, outDir: path.join(parent, 'pkg'), verify: false });
  assert.deepEqual(report.parity, {});
  assert.deepEqual((await readdir(path.join(parent, 'pkg'))).sort(), ['ferry.json', 'onnx']);
});

test('a model tfjs itself cannot run on its declared input (4 channels into a 3-channel filter) is export_tfjs_failed naming model.json and the inputs, before onnxruntime runs', async () => {
  const file = await writeModel((b) => {
    const x = b.placeholder('image', [-1, 8, 8, 4]);
    b.output(b.node('Conv2D', 'conv', [x, b.constant('w', [3, 3, 3, 4])], window));
  });
  await expectRefused(file, 'export_tfjs_failed', /^tfjs cannot run \/.*model\.json itself \(on inputs \[1,8,8,4\]\): Error in conv2d: depth of input \(4\) must match input depth for filter 3/);
});

test('an input too large to feed in verification is refused by name before tfjs or onnxruntime allocate it', async () => {
  const file = await writeModel((b) => {
    const x = b.placeholder('image', [-1, 100000, 100000, 3]);
    b.output(b.node('Conv2D', 'conv', [x, b.constant('w', [3, 3, 3, 4])], window));
  });
  await expectRefused(file, 'export_verify_too_large', /^input image has the shape \[1,100000,100000,3\] in verification: 3\.00e\+10 elements/);
});

test('a conv or pool reading a tensor of the wrong rank (a damaged input list) names the node and the shape, not a converter TypeError', async () => {
  const file = await writeModel((b) => {
    const x = b.placeholder('image', [-1, 8, 8, 3]);
    b.output(b.node('Conv2D', 'conv', [x, b.constant('w', [3, 4])], window));
  });
  await expectRefused(file, 'export_bad_graph', /^node conv \(Conv2D\): input 1 has the shape \[3,4\]; a filter \[height, width, in, out\] is rank 4$/);
  const pooled = await writeModel((b) => {
    const x = b.placeholder('x', [-1, 16]);
    b.output(b.node('MaxPool', 'pool', [x], { ...window, ksize: a.ints([1, 2, 2, 1]) }));
  });
  await expectRefused(pooled, 'export_bad_graph', /^node pool \(MaxPool\): input 0 has the shape \[\?,16\]; an NHWC image batch is rank 4$/);
});
