import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { FerryError } from '../../src/errors.ts';
import {
  graphKeepsOwnCache,
  lstmNames,
  manifestSchema,
  namesOfState,
  parseLanguageModelManifest,
  parseManifest,
  transformerNames,
  type PlainModelManifest,
} from '../../src/package/index.ts';

const SHIPPED = ['models/shakespeare-lstm', 'models/shakespeare-transformer'];
const readShipped = async (dir: string) => JSON.parse(await readFile(`${dir}/ferry.json`, 'utf8')) as Record<string, unknown>;

test('the shipped packages are language-model manifests whose I/O the naming functions name, in graph order', async () => {
  for (const dir of SHIPPED) {
    const manifest = parseLanguageModelManifest(await readShipped(dir), dir);
    const inputs = manifest.inputs.map((t) => t.name);
    const outputs = manifest.outputs.map((t) => t.name);
    const names = manifest.state.kind === 'lstm'
      ? lstmNames(manifest.state.layers)
      : transformerNames(manifest.state.layers, { newKeyValues: graphKeepsOwnCache(outputs) });
    assert.deepEqual(inputs, names.inputs, `${dir}: inputs`);
    assert.deepEqual(outputs, names.outputs, `${dir}: outputs`);
    assert.deepEqual(namesOfState(manifest.state).inputs, names.inputs);
  }
});

test('the I/O names follow FORMATS.md: per layer, key before value, new K/V last', () => {
  assert.deepEqual(lstmNames(2), {
    inputs: ['input_ids', 'past_h.0', 'past_c.0', 'past_h.1', 'past_c.1'],
    outputs: ['logits', 'present_h.0', 'present_c.0', 'present_h.1', 'present_c.1'],
    past: ['past_h.0', 'past_c.0', 'past_h.1', 'past_c.1'],
    present: ['present_h.0', 'present_c.0', 'present_h.1', 'present_c.1'],
  });
  assert.deepEqual(lstmNames(1, { withCell: false }).past, ['past_h.0']);
  const kv = transformerNames(1, { newKeyValues: true });
  assert.deepEqual(kv.inputs, ['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value']);
  assert.deepEqual(kv.outputs, ['logits', 'present.0.key', 'present.0.value', 'new_key_values.0.key', 'new_key_values.0.value']);
  assert.ok(graphKeepsOwnCache(kv.outputs));
  assert.ok(!graphKeepsOwnCache(transformerNames(1).outputs));
});

const plainModel = {
  format: 'ferry-onnx', version: 1, name: 'classifier', arch: 'model',
  files: { fp32: 'onnx/model.onnx', int8: null, fp16: null },
  inputs: [{ name: 'image', dtype: 'uint8', shape: ['batch_size', 224, 224, 3], batchDim: 0 }],
  outputs: [{ name: 'scores', dtype: 'float32', shape: ['batch_size', 1000], batchDim: 0 }, { name: 'labels', dtype: 'string', shape: [1000], batchDim: null }],
};

test('a plain model needs no tokenizer, state or model config; batchDim must name a dim', () => {
  const manifest = parseManifest(plainModel, 'ferry.json') as PlainModelManifest;
  assert.equal(manifest.arch, 'model');
  assert.deepEqual(manifest.cpuOnlyNodes, [], 'defaults are filled in');
  assert.equal(manifest.outputs[1]!.batchDim, null);
  assert.throws(
    () => parseManifest({ ...plainModel, inputs: [{ ...plainModel.inputs[0], batchDim: 4 }] }, 'x/ferry.json'),
    (e: unknown) => e instanceof FerryError && /x\/ferry.json: field "inputs.0.batchDim"/.test(e.message),
  );
  assert.throws(
    () => parseLanguageModelManifest(plainModel, 'x/ferry.json'),
    (e: unknown) => e instanceof FerryError && e.code === 'not_generative' && /plain model/.test(e.message),
  );
});

test('the union refuses unknown kinds, a state of another kind and the old "foreign" arch, naming the field', async () => {
  const lstm = await readShipped(SHIPPED[0]!);
  const refuse = (raw: unknown, field: RegExp) => assert.throws(() => parseManifest(raw, 'ferry.json'), (e: unknown) => e instanceof FerryError && field.test(e.message));
  refuse({ ...lstm, arch: 'foreign' }, /field "arch"/);
  refuse({ ...lstm, state: { kind: 'kv', layers: 2, heads: 2, headDim: 8 } }, /field "state.kind"/);
  refuse({ ...lstm, format: 'onnx' }, /field "format"/);
});

test('parity stays open: a precision may carry figures the schema does not list, and they survive a read', async () => {
  const transformer = await readShipped(SHIPPED[1]!);
  const parity = { ...(transformer.parity as object), int8: { maxAbsDiff: 0.01, tolerance: 0.05, perCpu: { avx2: 0.01 } } };
  const read = manifestSchema.parse({ ...transformer, parity });
  assert.deepEqual(read.parity!.int8, { maxAbsDiff: 0.01, tolerance: 0.05, perCpu: { avx2: 0.01 } });
});

test('a T5 package\'s ferry.json reads back as written; generation refuses it by name; the union checks its fields', async () => {
  const { buildT5Package } = await import('../export/t5-package.ts');
  const pkg = await buildT5Package('t5-round-trip');
  try {
    const raw = JSON.parse(await readFile(`${pkg.dir}/ferry.json`, 'utf8')) as Record<string, unknown>;
    const manifest = parseManifest(raw, 'ferry.json');
    assert.equal(manifest.arch, 't5');
    if (manifest.arch !== 't5') return;
    assert.equal(manifest.name, 't5-round-trip');
    assert.deepEqual(manifest.files, { fp32: 'onnx/decoder_model_merged.onnx', int8: null, fp16: null });
    assert.deepEqual(manifest.encoderFiles, { fp32: 'onnx/encoder_model.onnx', int8: null, fp16: null });
    assert.equal(manifest.hfConfig, 'config.json');
    assert.deepEqual(manifest.model, pkg.config);
    assert.deepEqual(manifestSchema.parse(JSON.parse(JSON.stringify(manifest))), manifest, 'a read manifest written again reads the same');
    assert.throws(() => parseLanguageModelManifest(raw, 'x/ferry.json'), (e: unknown) => e instanceof FerryError && e.code === 't5_not_served' && /x\/ferry.json is a T5 encoder-decoder/.test(e.message) && /ferry serve/.test(e.hint ?? ''));
    const { encoderFiles: _, ...withoutEncoder } = raw;
    assert.throws(() => parseManifest(withoutEncoder, 'ferry.json'), (e: unknown) => e instanceof FerryError && /field "encoderFiles"/.test(e.message));
    assert.throws(() => parseManifest({ ...raw, model: { vocabSize: 40 } }, 'ferry.json'), (e: unknown) => e instanceof FerryError && /field "model.nHeads"/.test(e.message));
  } finally {
    await pkg.remove();
  }
});
