/**
 * int8 files must compute the same logits on every CPU. onnxruntime's u8 x s8 integer products
 * saturate on x86-64 CPUs with AVX2 but without VNNI unless the weights keep to 7 bits
 * (src/export/quantize.ts), so this runs the same files natively and under qemu's emulation of an
 * AVX2-only CPU (Haswell: no AVX-512, no VNNI), whatever CPU the test machine has.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import { exportModel } from '../../src/export/index.ts';
import { Graph } from '../../src/export/graph.ts';
import { lstmLanguageModelIO } from '../../src/export/lm/lstm.ts';
import { quantizeInt8 } from '../../src/export/quantize.ts';
import { createSession } from '../../src/export/runner.ts';
import { VARIANT_BOUNDS } from '../../src/export/variants.ts';
import { verifyVariant } from '../../src/export/verify.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { convertModel } from '../../src/export/convert.ts';
import { FerryError } from '../../src/errors.ts';
import { makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from './fixtures.ts';
import { buildT5Package } from './t5-package.ts';

const run = promisify(execFile);
const PROBE = path.join(import.meta.dirname, 'int8-probe.mjs');
const QEMU = ['/usr/bin/qemu-x86_64', '/usr/local/bin/qemu-x86_64'].find((p) => existsSync(p));

const packages: string[] = [];

before(async () => {
  const lstm = await makeCheckpoint(TINY_LSTM, { trainSteps: 30 });
  const transformer = await makeCheckpoint({ ...TINY_TRANSFORMER, nEmbd: 32, positional: 'sinusoidal', tieWeights: true }, { trainSteps: 10 });
  for (const [name, dir] of [['lstm', lstm.dir], ['transformer', transformer.dir]] as const) {
    const out = path.join(await tempDir(), name);
    await exportModel({ source: dir, outDir: out, quantize: 'int8' });
    packages.push(out);
  }
  // A T5 pair (encoder, merged decoder with its If branches) of int8 and fp16 files.
  packages.push((await buildT5Package('t5', { copies: true })).dir);
});

async function probe(prefix: string[]): Promise<Record<string, number[]>> {
  const [command, ...args] = [...prefix, process.execPath, PROBE, ...packages];
  const { stdout } = await run(command!, args, { maxBuffer: 64 << 20, timeout: 300_000 });
  return JSON.parse(stdout) as Record<string, number[]>;
}

test('int8 files give the same logits on an AVX2-only CPU (emulated) as on this one', { skip: process.arch !== 'x64' ? 'x86-64 only' : false }, async (t) => {
  if (!QEMU) {
    t.skip('qemu-x86_64 is not installed (Debian package qemu-user; .ci/run installs it)');
    console.log('# skipped: qemu-x86_64 is not installed (apt-get install qemu-user)');
    return;
  }
  const [native, avx2] = await Promise.all([probe([]), probe([QEMU, '-cpu', 'Haswell-v4'])]);
  const files = Object.keys(native);
  assert.ok(files.includes('lstm/onnx/model_quantized.onnx') && files.includes('transformer/onnx/model_quantized.onnx'), files.join(', '));
  assert.ok(files.includes('t5/onnx/decoder_model_merged_quantized.onnx'), files.join(', '));
  assert.deepEqual(Object.keys(avx2), files);
  for (const file of files) {
    const [a, b] = [native[file]!, avx2[file]!];
    assert.equal(a.length, b.length);
    const worst = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    assert.ok(worst <= 1e-5, `${file}: this CPU vs AVX2-only max |diff| ${worst}`);
  }
});

test('an int8 copy that strays from its fp32 file is refused with the figures', async () => {
  const { dir } = await makeCheckpoint(TINY_LSTM, { trainSteps: 30 });
  const { readExportSource } = await import('../../src/export/source.ts');
  const source = await readExportSource(dir);
  const spec = { arch: 'lstm', vocabSize: source.config!.vocabSize, layers: 2, hiddenSize: 12, withCell: true } as const;
  const { graph } = convertModel(source.model, { opset: 17, target: 'cpu', io: lstmLanguageModelIO(spec.vocabSize), name: 'probe' });
  const fp32 = await createSession(serializeModel(graph));
  const text = Array.from({ length: 40 }, (_, i) => (i * 5 + 1) % spec.vocabSize);
  const bounds = VARIANT_BOUNDS.int8;
  const good = await createSession(serializeModel(quantizeInt8(graph)));
  const parity = await verifyVariant('int8', good, fp32, spec, text, bounds);
  assert.ok(parity.maxAbsDiff > 0 && parity.maxAbsDiff <= parity.tolerance, JSON.stringify(parity));

  // The same file with the scales of the output layer doubled, as a quantizer bug would leave it.
  const broken: Graph = quantizeInt8(graph);
  for (const init of broken.initializers.filter((i) => i.name.includes('weight_scale'))) init.data = (init.data as Float32Array).map((x) => x * 2);
  const bad = await createSession(serializeModel(broken));
  await assert.rejects(verifyVariant('int8', bad, fp32, spec, text, bounds), (error: unknown) => {
    assert.ok(error instanceof FerryError && error.code === 'export_parity', String(error));
    assert.match(error.message, /int8 copy fails its parity check: its logits differ from the fp32 file's by [0-9.e+-]+ \(bound/);
    return true;
  });
  await Promise.all([fp32, good, bad].map((s) => s.release()));
});
