/**
 * The --target webgpu forms on onnxruntime-node's WebGPU EP (the native WebGPU implementation
 * that onnxruntime-web/webgpu also uses), in software through SwiftShader's Vulkan driver
 * (Debian's chromium package ships it). Compares with the CPU EP on a left-padded batch and a
 * decode step. (gqa, which --target webgpu refuses, differs there by ~0.03 on the same check.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { exportModel } from '../../src/export/index.ts';
import { fileSystemIO } from '../../src/train/tfjs-io.ts';
import { makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from './fixtures.ts';

const VULKAN_DIR = process.env.FERRY_SWIFTSHADER_DIR ?? '/usr/lib/chromium';
const ICD = path.join(VULKAN_DIR, 'vk_swiftshader_icd.json');

async function runOnWebGpu(files: { file: string; inputs: unknown; cpuOnlyNodes: unknown }[]): Promise<{ file: string; maxAbsDiff?: number; error?: string }[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'webgpu-runner.ts'), ...files.map((f) => JSON.stringify(f))], {
    env: { ...process.env, VK_ICD_FILENAMES: ICD, LD_LIBRARY_PATH: VULKAN_DIR },
    maxBuffer: 1 << 20,
  });
  return stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

test('webgpu target: LSTM, decomposed, mha and a HardSigmoid LSTM (its cpuOnlyNodes forced to CPU) match CPU on the WebGPU EP', { skip: existsSync(ICD) ? false : `no SwiftShader Vulkan driver at ${ICD} (apt-get install chromium, or set FERRY_SWIFTSHADER_DIR)` }, async () => {
  const lstm = await makeCheckpoint(TINY_LSTM);
  const transformer = await makeCheckpoint({ ...TINY_TRANSFORMER });
  const foreign = await tempDir();
  const hardSigmoid = tf.sequential();
  hardSigmoid.add(tf.layers.inputLayer({ inputShape: [null, 4] }));
  hardSigmoid.add(tf.layers.lstm({ units: 5, returnSequences: true }));
  await hardSigmoid.save(fileSystemIO(foreign));
  const files: { file: string; inputs: unknown; cpuOnlyNodes: unknown }[] = [];
  for (const [source, attention] of [[lstm.dir, undefined], [transformer.dir, 'decomposed'], [transformer.dir, 'mha'], [path.join(foreign, 'model.json'), undefined]] as const) {
    const out = path.join(await tempDir(), 'pkg');
    const report = await exportModel({ source, outDir: out, target: 'webgpu', attention, verify: false });
    files.push({ file: path.join(out, 'onnx/model.onnx'), inputs: report.manifest.inputs, cpuOnlyNodes: report.manifest.cpuOnlyNodes });
  }
  assert.equal((files[3]!.cpuOnlyNodes as string[]).length, 1);
  const results = await runOnWebGpu(files);
  assert.equal(results.length, files.length);
  for (const r of results) {
    assert.equal(r.error, undefined, `${r.file}: ${r.error}`);
    assert.ok(r.maxAbsDiff! <= 1e-4, `${r.file}: WebGPU vs CPU max |diff| ${r.maxAbsDiff}`);
  }
});
