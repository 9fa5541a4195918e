/**
 * A MobileNet v1 (width 1.0, 224x224x3, 1000 classes: 4.2M parameters, ~570M multiply-adds per
 * image) as a plain ONNX model built with the exporter's graph builder, with seeded He-scaled
 * random weights: the size and op mix of a real image classifier, for the serving benchmark.
 * Input `image` [batch, 224, 224, 3] float32 (NHWC, as tfjs models take it); output `probs` [batch, 1000].
 */
import { Graph, attr } from '../src/export/graph.ts';
import { serializeModel } from '../src/export/writer.ts';
import { mulberry32 } from '../src/random.ts';
import type { PlainModelSpec } from '../src/serve/v2/plain-model.ts';

// [output channels, stride] of the 13 depthwise-separable blocks.
const BLOCKS: [number, number][] = [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]];

export function mobilenet(name = 'mobilenet', seed = 1): { spec: PlainModelSpec; onnx: Uint8Array } {
  const random = mulberry32(seed);
  const heNormal = (count: number, fanIn: number) => {
    const scale = Math.sqrt(2 / fanIn) * Math.sqrt(3);
    return Float32Array.from({ length: count }, () => (random() * 2 - 1) * scale);
  };
  const g = new Graph(name, 17);
  const zero = g.scalarFloat('zero', 0);
  const six = g.scalarFloat('six', 6);
  const conv = (x: string, inChannels: number, outChannels: number, kernel: number, stride: number, group: number) => {
    const fanIn = (inChannels / group) * kernel * kernel;
    const w = g.float('weight', [outChannels, inChannels / group, kernel, kernel], heNormal(outChannels * fanIn, fanIn));
    const b = g.float('bias', [outChannels], new Float32Array(outChannels));
    const y = g.op('Conv', [x, w, b], { group: attr.int(group), strides: attr.ints([stride, stride]), pads: attr.ints(kernel === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0]), kernel_shape: attr.ints([kernel, kernel]) });
    return g.op('Clip', [y, zero, six]);
  };
  const image = g.addInput('image', 'float32', ['batch', 224, 224, 3]);
  let x = conv(g.transpose(image, [0, 3, 1, 2]), 3, 32, 3, 2, 1);
  let channels = 32;
  for (const [out, stride] of BLOCKS) {
    x = conv(x, channels, channels, 3, stride, channels);
    x = conv(x, channels, out, 1, 1, 1);
    channels = out;
  }
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [x])]);
  const logits = g.op('Gemm', [pooled, g.float('fc/kernel', [channels, 1000], heNormal(channels * 1000, channels)), g.float('fc/bias', [1000], new Float32Array(1000))]);
  g.addOutput(g.op('Softmax', [logits], { axis: attr.int(-1) }), 'probs', 'float32', ['batch', 1000]);
  return {
    spec: {
      name,
      inputs: [{ name: 'image', dtype: 'float32', shape: ['batch', 224, 224, 3], batchDim: 0 }],
      outputs: [{ name: 'probs', dtype: 'float32', shape: ['batch', 1000], batchDim: 0 }],
    },
    onnx: serializeModel(g),
  };
}

/** `image` [batch, 224, 224, 3] float32 straight back out as `echo`: a model whose time is all transport. */
export function echo224(name = 'echo224'): { spec: PlainModelSpec; onnx: Uint8Array } {
  const g = new Graph(name, 17);
  const image = g.addInput('image', 'float32', ['batch', 224, 224, 3]);
  g.addOutput(g.op('Identity', [image]), 'echo', 'float32', ['batch', 224, 224, 3]);
  return {
    spec: {
      name,
      inputs: [{ name: 'image', dtype: 'float32', shape: ['batch', 224, 224, 3], batchDim: 0 }],
      outputs: [{ name: 'echo', dtype: 'float32', shape: ['batch', 224, 224, 3], batchDim: 0 }],
    },
    onnx: serializeModel(g),
  };
}
