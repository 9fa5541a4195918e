/**
 * `ferry eval --by-position`: the loss at each position of windows from an empty context, from
 * a checkpoint (tfjs) and from its exported package (onnxruntime), as table, JSONL and SVG.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../src/errors.ts';
import { exportModel } from '../../src/export/index.ts';
import { isOnnxPackage, positionLossOfPackage } from '../../src/export/position-loss.ts';
import { evaluateCheckpoint, positionLossOfCheckpoint } from '../../src/train/evaluate.ts';
import { formatPositionTable, writePositionReport } from '../../src/train/position-loss.ts';
import { CORPUS, makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from '../export/fixtures.ts';
import { assertWellFormedSvg } from './trainer-svg.ts';

await tf.setBackend('cpu');

for (const [label, shape] of [['lstm', TINY_LSTM], ['transformer rope', { ...TINY_TRANSFORMER, blockSize: 16, positional: 'rope' as const }]] as const) {
  test(`${label}: by-position means average to the plain eval of the same windows, and the package agrees`, async () => {
    const dir = await tempDir();
    const { dir: checkpoint } = await makeCheckpoint(shape, { trainSteps: 60 });
    const window = 16;
    // Five windows and the token after them, so that the plain eval scores exactly these windows.
    const corpusPath = path.join(dir, 'held-out.txt');
    await writeFile(corpusPath, (CORPUS + CORPUS).slice(0, 5 * window + 1));
    const options = { batchSize: 2, window, cacheDir: path.join(dir, 'cache') };
    const report = await positionLossOfCheckpoint(checkpoint, corpusPath, options);
    assert.equal(report.windows, 5);
    assert.deepEqual(report.positions.map((p) => p.position), Array.from({ length: window }, (_, i) => i));
    assert.ok(report.positions.every((p) => p.tokens === 5));
    const plain = await evaluateCheckpoint(checkpoint, corpusPath, { batchSize: 4, cacheDir: options.cacheDir });
    assert.ok(Math.abs(report.loss - plain.loss) < 1e-5, `by-position mean ${report.loss} vs eval ${plain.loss}`);
    assert.ok(new Set(report.positions.map((p) => p.loss.toFixed(6))).size > 1, 'positions are scored apart');

    const pkg = path.join(dir, 'pkg');
    await exportModel({ source: checkpoint, outDir: pkg, verify: false });
    assert.equal(await isOnnxPackage(pkg), true);
    assert.equal(await isOnnxPackage(checkpoint), false);
    const onnx = await positionLossOfPackage(pkg, corpusPath, options);
    report.positions.forEach((p, i) => assert.ok(Math.abs(p.loss - onnx.positions[i]!.loss) < 1e-4, `position ${i}: tfjs ${p.loss} vs onnx ${onnx.positions[i]!.loss}`));

    const written = writePositionReport(path.join(dir, 'by-position'), report);
    const lines = (await readFile(written[0]!, 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(lines.length, window);
    assert.deepEqual(Object.keys(lines[3]!), ['model', 'arch', 'position', 'loss', 'tokens']);
    assert.equal(lines[3]!.loss, report.positions[3]!.loss);
    assertWellFormedSvg(await readFile(written[1]!, 'utf8'));
    assert.match(formatPositionTable(report), new RegExp(`5 windows of 16 tokens[^]*\\n {7}3 {8}4 +${report.positions[3]!.loss.toFixed(4)}`));
  });
}

test('a held-out text shorter than one window is a FerryError saying how long it must be', async () => {
  const dir = await tempDir();
  const { dir: checkpoint } = await makeCheckpoint(TINY_LSTM);
  const corpusPath = path.join(dir, 'short.txt');
  await writeFile(corpusPath, CORPUS.slice(0, 10));
  await assert.rejects(positionLossOfCheckpoint(checkpoint, corpusPath, { batchSize: 2, window: 16, cacheDir: path.join(dir, 'cache') }),
    (error: unknown) => error instanceof FerryError && /holds 10 token\(s\); loss by position needs at least 17/.test(error.message));
});

test('a window past a Transformer\'s position table is a FerryError naming the context; ALiBi and the LSTM take longer windows', async () => {
  const dir = await tempDir();
  const corpusPath = path.join(dir, 'text.txt');
  await writeFile(corpusPath, CORPUS);
  const options = { batchSize: 2, window: 32, cacheDir: path.join(dir, 'cache') };
  const { dir: learned } = await makeCheckpoint({ ...TINY_TRANSFORMER, blockSize: 16 });
  await assert.rejects(positionLossOfCheckpoint(learned, corpusPath, options),
    (error: unknown) => error instanceof FerryError && /--window 32 is longer than this Transformer's context of 16 \(its learned positions/.test(error.message));
  for (const shape of [{ ...TINY_TRANSFORMER, blockSize: 16, positional: 'alibi' as const }, TINY_LSTM]) {
    const { dir: checkpoint } = await makeCheckpoint(shape);
    const report = await positionLossOfCheckpoint(checkpoint, corpusPath, options);
    assert.equal(report.positions.length, 32);
  }
});
