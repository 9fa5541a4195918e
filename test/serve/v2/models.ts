// Small plain ONNX models for the inference protocol tests, built with the exporter's own graph
// builder and writer: a dense classifier with a dynamic batch dim, and an identity model with one
// input and output per v2 datatype. Weights come from a seeded generator.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Graph } from '../../../src/export/graph.ts';
import { serializeModel } from '../../../src/export/writer.ts';
import { mulberry32 } from '../../../src/random.ts';
import { V2_DATATYPES } from '../../../src/serve/v2/datatypes.ts';
import type { PlainModelSpec } from '../../../src/serve/v2/plain-model.ts';

export interface BuiltModel {
  spec: PlainModelSpec;
  onnx: Uint8Array;
  /** The classifier's weights, for computing expected outputs by hand. */
  weights?: { kernel: Float32Array; bias: Float32Array; features: number; classes: number };
}

/** `features` [batch, 8] float32 -> `logits` = x W + b and `probs` = softmax(logits), both [batch, 3]. */
export function denseClassifier(name = 'classifier', seed = 7): BuiltModel {
  const features = 8;
  const classes = 3;
  const random = mulberry32(seed);
  const kernel = Float32Array.from({ length: features * classes }, () => random() * 2 - 1);
  const bias = Float32Array.from({ length: classes }, () => random() - 0.5);
  const g = new Graph(name, 17);
  const x = g.addInput('features', 'float32', ['batch', features]);
  const logits = g.op('Add', [g.op('MatMul', [x, g.float('kernel', [features, classes], kernel)]), g.float('bias', [classes], bias)]);
  g.addOutput(logits, 'logits', 'float32', ['batch', classes]);
  g.addOutput(g.op('Softmax', [logits], {}), 'probs', 'float32', ['batch', classes]);
  const spec: PlainModelSpec = {
    name,
    inputs: [{ name: 'features', dtype: 'float32', shape: ['batch', features], batchDim: 0 }],
    outputs: [
      { name: 'logits', dtype: 'float32', shape: ['batch', classes], batchDim: 0 },
      { name: 'probs', dtype: 'float32', shape: ['batch', classes], batchDim: 0 },
    ],
  };
  return { spec, onnx: serializeModel(g), weights: { kernel, bias, features, classes } };
}

/** For each v2 datatype D: input `in_D` [batch, 2] -> Identity -> output `out_D`. */
export function identityOfEveryDatatype(name = 'identity'): BuiltModel {
  const g = new Graph(name, 17);
  const spec: { name: string; inputs: PlainModelSpec['inputs'][number][]; outputs: PlainModelSpec['outputs'][number][] } = { name, inputs: [], outputs: [] };
  for (const [datatype, dtype] of Object.entries(V2_DATATYPES)) {
    const x = g.addInput(`in_${datatype}`, dtype, ['batch', 2]);
    g.addOutput(g.op('Identity', [x]), `out_${datatype}`, dtype, ['batch', 2]);
    spec.inputs.push({ name: `in_${datatype}`, dtype, shape: ['batch', 2], batchDim: 0 });
    spec.outputs.push({ name: `out_${datatype}`, dtype, shape: ['batch', 2], batchDim: 0 });
  }
  return { spec, onnx: serializeModel(g) };
}

/** x W + b for each row of `rows`, in float64 (a reference for the classifier's logits). */
export function expectedLogits(model: BuiltModel, rows: number[][]): number[][] {
  const { kernel, bias, features, classes } = model.weights!;
  return rows.map((row) => Array.from({ length: classes }, (_, j) => {
    let sum = bias[j]!;
    for (let i = 0; i < features; i++) sum += row[i]! * kernel[i * classes + j]!;
    return sum;
  }));
}

/** Writes `model` as a plain package dir (ferry.json of arch "model", onnx/model.onnx). */
export async function writePlainPackage(dir: string, model: BuiltModel): Promise<string> {
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  await writeFile(path.join(dir, 'onnx/model.onnx'), model.onnx);
  const manifest = { format: 'ferry-onnx', version: 1, arch: 'model', ...model.spec, files: { fp32: 'onnx/model.onnx', int8: null, fp16: null }, cpuOnlyNodes: [] };
  await writeFile(path.join(dir, 'ferry.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
