/**
 * Keras image layers (Conv2D and friends, 2-D pooling, padding, cropping, upsampling) with seeded
 * weights, exported with free height and width and compared with tfjs at two sizes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { convertModel } from '../../src/export/convert.ts';
import { checkModels } from './checker.ts';
import { expectParity, exported, seedWeights } from './parity.ts';

let seed = 1;
function image(channels: number, ...layers: tf.layers.Layer[]): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.inputLayer({ inputShape: [null, null, channels] }));
  for (const layer of layers) model.add(layer);
  return seedWeights(model, seed++);
}

const cases: [string, () => tf.layers.Layer[]][] = [
  ['conv2d valid relu', () => [tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' })]],
  ['conv2d same, rectangular kernel', () => [tf.layers.conv2d({ filters: 3, kernelSize: [3, 2], padding: 'same' })]],
  ['conv2d same strided', () => [tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' })]],
  ['conv2d valid strided no bias', () => [tf.layers.conv2d({ filters: 2, kernelSize: 2, strides: [2, 1], useBias: false })]],
  ['conv2d dilated same', () => [tf.layers.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' })]],
  ['conv2d dilated valid', () => [tf.layers.conv2d({ filters: 3, kernelSize: 3, dilationRate: [2, 3] })]],
  ['depthwise conv2d multiplier 2', () => [tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' })]],
  ['depthwise conv2d strided valid', () => [tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2 })]],
  ['separable conv2d', () => [tf.layers.separableConv2d({ filters: 5, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu6' })]],
  ['conv2d transpose valid', () => [tf.layers.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2 })]],
  ['conv2d transpose same', () => [tf.layers.conv2dTranspose({ filters: 3, kernelSize: 4, strides: 2, padding: 'same' })]],
  ['conv2d transpose same, kernel below stride', () => [tf.layers.conv2dTranspose({ filters: 2, kernelSize: 1, strides: 2, padding: 'same' })]],
  ['max pooling 2d', () => [tf.layers.maxPooling2d({ poolSize: 2 })]],
  ['max pooling 2d same strided', () => [tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' })]],
  ['average pooling 2d same', () => [tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' })]],
  ['average pooling 2d valid', () => [tf.layers.averagePooling2d({ poolSize: [2, 3], strides: 1 })]],
  ['global average pooling 2d', () => [tf.layers.globalAveragePooling2d({})]],
  ['global max pooling 2d', () => [tf.layers.globalMaxPooling2d({})]],
  ['zero padding 2d', () => [tf.layers.zeroPadding2d({ padding: [[1, 2], [0, 3]] })]],
  ['upsampling 2d nearest', () => [tf.layers.upSampling2d({ size: [2, 3] })]],
  ['upsampling 2d bilinear', () => [tf.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear' })]],
  ['conv2d then PReLU shared over height and width', () => [tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }), tf.layers.prelu({ sharedAxes: [1, 2] })]],
];
for (const [name, layers] of cases) test(name, async () => void await expectParity(name, image(3, ...layers())));

test('cropping 2d (tfjs needs the spatial size known)', async () => {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [9, 8, 2], filters: 3, kernelSize: 2 }));
  model.add(tf.layers.cropping2D({ cropping: [[1, 0], [2, 1]] }));
  await expectParity('cropping 2d', seedWeights(model, 5));
});

test('a small CNN: conv, pool, conv, global pool, dense; fixed spatial size', async () => {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [12, 10, 1], filters: 4, kernelSize: 3, activation: 'relu' }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 3, activation: 'softmax' }));
  await expectParity('small cnn', seedWeights(model, 77));
});

test('NCHW inside: no Transpose pair left between consecutive channels-first ops', () => {
  const model = image(3,
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }),
    tf.layers.zeroPadding2d({ padding: 1 }),
    tf.layers.conv2d({ filters: 4, kernelSize: 3 }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.upSampling2d({ size: [2, 2] }),
    tf.layers.conv2d({ filters: 2, kernelSize: 1 }),
  );
  const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
  assert.equal(graph.nodes.filter((n) => n.opType === 'Transpose').length, 2, graph.nodes.map((n) => n.opType).join(' '));
  assert.deepEqual(graph.inputs[0]!.shape, ['batch_size', 'sequence_length', 'dim_2', 3]);
});

test('Conv, BatchNormalization, ReLU blocks with a residual Add stay channels-first between their ends', async () => {
  const x = tf.input({ shape: [null, null, 3] });
  const block = (input: tf.SymbolicTensor) => {
    const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    return tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization({}).apply(conv)) as tf.SymbolicTensor;
  };
  const first = block(x);
  const sum = tf.layers.add().apply([first, block(first)]) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: tf.layers.concatenate().apply([sum, first]) as tf.SymbolicTensor });
  seedWeights(model, 41);
  await expectParity('conv bn relu residual', model);
  const { graph } = convertModel(model, { opset: 17, target: 'cpu' });
  assert.equal(graph.nodes.filter((n) => n.opType === 'Transpose').length, 2, graph.nodes.map((n) => n.opType).join(' '));
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  assert.deepEqual(graph.initializers.filter((i) => !read.has(i.name)).map((i) => i.name), [], 'no unread initializer');
});

test('every image export passes the ONNX checker with full shape inference', async () => {
  assert.ok(exported.length >= cases.length);
  await checkModels(exported);
});
