/**
 * Export verification decodes with the server's own decoders: a graph whose new K/V (what the
 * slab cache writes into its rows) are laid out wrong passes every check on whole calls and the
 * concatenated cache, and fails the slab decoder's. onnxruntime failing on a Layers model's graph
 * is one FerryError naming the layer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../src/errors.ts';
import * as tf from '@tensorflow/tfjs';
import { convertModel } from '../../src/export/convert.ts';
import { Graph } from '../../src/export/graph.ts';
import { transformerLanguageModelIO } from '../../src/export/lm/transformer.ts';
import { verifyForeignModel, verifyLanguageModel } from '../../src/export/verify.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { makeCheckpoint, TINY_TRANSFORMER } from './fixtures.ts';

test('a graph whose new K/V break the slab layout fails export verification on the server cache decode alone', async () => {
  const { model, config } = await makeCheckpoint(TINY_TRANSFORMER, { weightScale: 3 });
  if (config.arch !== 'transformer') throw new Error('unreachable');
  const shape = { vocabSize: config.vocabSize, layers: config.nLayer, heads: config.nHead, headDim: config.nEmbd / config.nHead };
  const spec = { arch: 'transformer' as const, ...shape, contextLength: config.blockSize };
  const convert = () => convertModel(model, { opset: 17, target: 'cpu', io: transformerLanguageModelIO(shape, 'decomposed', { newKeyValues: true }) }).graph;

  const sound = await verifyLanguageModel(model, serializeModel(convert()), spec);
  assert.ok(sound.cases.some((c) => c.name.startsWith('server slab cache decode')), 'the slab decoder is among the checks');

  // Layer 0's new keys and values trade places: same shapes, so ORT runs it; the full-sequence
  // logits and present.* are untouched.
  const broken = convert();
  const producers = ['key', 'value'].map((part) => broken.nodes.find((n) => n.outputs.includes(`new_key_values.0.${part}`))!);
  [producers[0]!.inputs, producers[1]!.inputs] = [producers[1]!.inputs, producers[0]!.inputs];
  await assert.rejects(verifyLanguageModel(model, serializeModel(broken), spec), (error: unknown) => {
    assert.ok(error instanceof FerryError && error.code === 'export_parity', String(error));
    const failing = error.message.split(': ').slice(1).join(': ');
    assert.match(failing, /^server slab cache decode, 3 sequences, \d+ tokens: [^;]*$/, 'only the slab decoder case fails');
    return true;
  });
});

test('onnxruntime failing on the exported graph of a Layers model is one export_onnx_failed naming the layer, not ORT\'s message with its source paths', async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [4], name: 'squeeze_me' })] });
  // What a converter bug could write: the layer's nodes reshape 4 values into rows of 3, which onnxruntime refuses when it runs.
  const graph = new Graph('broken', 17);
  const x = graph.addInput('x', 'float32', ['batch_size', 4]);
  const y = graph.inScope('squeeze_me', () => graph.reshape(x, [-1, 3]));
  graph.addOutput(y, 'y', 'float32', ['batch_size', 3]);
  const error = await verifyForeignModel(model, serializeModel(graph)).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError, String(error));
  assert.equal(error.code, 'export_onnx_failed');
  assert.match(error.message, /^onnxruntime cannot run the exported ONNX graph at node squeeze_me: .*Reshape/);
  assert.doesNotMatch(error.message, /onnxruntime_src|\n/);
  assert.match(error.hint!, /--no-verify/);
  model.dispose();
});
