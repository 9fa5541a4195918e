/** Models used as layers inside models (Sequential in functional, functional in Sequential, one model called twice). */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { convertModel } from '../../src/export/convert.ts';
import { exportModel } from '../../src/export/index.ts';
import type { ParityReport } from '../../src/export/verify.ts';
import { fileSystemIO } from '../../src/train/tfjs-io.ts';
import { tempDir } from './fixtures.ts';
import { checkModels } from './checker.ts';
import { expectParity, exported, seedWeights } from './parity.ts';

test('a Sequential feature extractor inside a functional model', async () => {
  const backbone = tf.sequential({ name: 'backbone' });
  backbone.add(tf.layers.conv2d({ inputShape: [null, null, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }));
  backbone.add(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }));
  const image = tf.input({ shape: [null, null, 3] });
  const features = backbone.apply(image) as tf.SymbolicTensor;
  const head = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
  const model = seedWeights(tf.model({ inputs: image, outputs: tf.layers.dense({ units: 2 }).apply(head) as tf.SymbolicTensor }), 21);
  await expectParity('sequential in functional', model);
  const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
  assert.ok(graph.nodes.some((n) => n.name.startsWith('backbone/')), 'inner nodes are scoped by the inner model');
});

test('a functional block inside a Sequential, and one model called on two inputs (shared weights)', async () => {
  const x = tf.input({ shape: [null, 5] });
  const hidden = tf.layers.dense({ units: 6, activation: 'tanh' }).apply(x) as tf.SymbolicTensor;
  const block = tf.model({ inputs: x, outputs: tf.layers.add().apply([hidden, tf.layers.dense({ units: 6 }).apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor, name: 'block' });
  const outer = tf.sequential();
  outer.add(tf.layers.inputLayer({ inputShape: [null, 5] }));
  outer.add(block);
  outer.add(tf.layers.dense({ units: 3 }));
  await expectParity('functional in sequential', seedWeights(outer, 22));

  const a = tf.input({ shape: [null, 5] });
  const b = tf.input({ shape: [null, 5] });
  const siamese = tf.model({ inputs: [a, b], outputs: tf.layers.concatenate().apply([block.apply(a) as tf.SymbolicTensor, block.apply(b) as tf.SymbolicTensor]) as tf.SymbolicTensor });
  await expectParity('one model called twice', siamese);
  const { graph } = convertModel(siamese, { opset: 17, target: 'cpu' });
  assert.equal(graph.initializers.filter((i) => i.name.endsWith('kernel')).length, 2, 'the two inner kernels are stored once each');

  // The same through model.json: tfjs saves the inner model inside the outer one's topology.
  const dir = await tempDir();
  await siamese.save(fileSystemIO(dir));
  const report = await exportModel({ source: path.join(dir, 'model.json'), outDir: path.join(dir, 'pkg') });
  assert.ok((report.parity.fp32 as ParityReport).maxRelativeDiff <= 1e-4);
});

test('the nested exports pass the ONNX checker', async () => {
  await checkModels(exported);
});
