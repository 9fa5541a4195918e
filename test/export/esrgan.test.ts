/**
 * The ESRGAN super-resolution layers models that @upscalerjs ships on npm (Conv2D, Activation,
 * Add, Concatenate, UpSampling2D; free height and width), read from node_modules: each exports,
 * matches tfjs within 1e-4 of its output's scale at two image sizes, and keeps NHWC outside.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../src/export/index.ts';
import type { ParityReport } from '../../src/export/verify.ts';
import { tempDir } from './fixtures.ts';

const MODELS = ['esrgan-slim', 'esrgan-medium'].flatMap((pkg) => ['x2', 'x3', 'x4', 'x8'].map((scale) => `${pkg}/models/${scale}`));

for (const model of MODELS) {
  const source = path.resolve('node_modules/@upscalerjs', model, 'model.json');
  test(`@upscalerjs/${model}`, { skip: existsSync(source) ? false : `${source} is not installed (npm ci installs the devDependencies)` }, async () => {
    const outDir = path.join(await tempDir(), 'pkg');
    const report = await exportModel({ source, outDir });
    const parity = report.parity.fp32 as ParityReport;
    assert.ok(parity.maxRelativeDiff <= 1e-4, `relative diff ${parity.maxRelativeDiff}`);
    const sizes = new Set(parity.cases.map((c) => c.name.replace(/.*batch \d+, /, '')));
    assert.equal(sizes.size, 2, `two image sizes: ${[...sizes].join(', ')}`);
    const manifest = JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8'));
    assert.deepEqual(manifest.inputs, [{ name: 'LR', dtype: 'float32', shape: ['batch_size', 'sequence_length', 'dim_2', 3], batchDim: 0 }]);
    const session = await ort.InferenceSession.create(path.join(outDir, 'onnx/model.onnx'));
    const out = await session.run({ LR: new ort.Tensor('float32', new Float32Array(3 * 4 * 3).fill(0.5), [1, 3, 4, 3]) });
    const scale = Number(model.slice(-1));
    assert.deepEqual(out[session.outputNames[0]!]!.dims, [1, 3 * scale, 4 * scale, 3], 'an image scale times larger, NHWC');
    await session.release();
  });
}
