/** Export a tfjs model, write it for the ONNX checker, and compare it with tfjs (verifyForeignModel). */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { convertModel } from '../../src/export/convert.ts';
import { verifyForeignModel, type ParityReport } from '../../src/export/verify.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { mulberry32 } from '../../src/random.ts';
import { tempDir } from './fixtures.ts';

/** Every file expectParity wrote, for one ONNX checker run at the end of a test file. */
export const exported: string[] = [];
const outDir = tempDir('ferry-layers-');

export async function expectParity(name: string, model: tf.LayersModel, opset = 17): Promise<ParityReport> {
  const { graph } = convertModel(model, { opset, target: 'cpu', name });
  const bytes = serializeModel(graph);
  const file = path.join(await outDir, `${name.replace(/[^a-z0-9]+/gi, '_')}.onnx`);
  await writeFile(file, bytes);
  exported.push(file);
  const report = await verifyForeignModel(model, bytes);
  assert.ok(report.maxRelativeDiff <= 1e-4, `${name}: max |diff| ${report.maxAbsDiff} (relative ${report.maxRelativeDiff})`);
  assert.ok(report.cases.length >= 4);
  return report;
}

/** Replaces every weight with seeded values in [-0.5, 0.5) (variances in [0.2, 1.2)), so that a run is reproducible. */
export function seedWeights(model: tf.LayersModel, seed: number): tf.LayersModel {
  const random = mulberry32(seed);
  model.setWeights(model.weights.map((v) => {
    const offset = v.originalName.endsWith('variance') ? 0.7 : 0;
    const shape = v.shape as number[];
    return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() - 0.5 + offset), shape);
  }));
  return model;
}
