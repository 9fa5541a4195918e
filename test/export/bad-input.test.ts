/** Bad input: a FerryError naming the problem, a non-zero exit from the CLI, and never a partial package dir. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { FerryError } from '../../src/errors.ts';
import { trainTokenizer } from '../../src/tokenizer/index.ts';
import { convertModel } from '../../src/export/convert.ts';
import { exportModel, type ExportOptions } from '../../src/export/index.ts';
import { lstmLanguageModelIO } from '../../src/export/lm/lstm.ts';
import { verifyLanguageModel } from '../../src/export/verify.ts';
import { serializeModel } from '../../src/export/writer.ts';
import { makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from './fixtures.ts';

let lstmDir: string;
let transformerDir: string;

before(async () => {
  lstmDir = (await makeCheckpoint(TINY_LSTM)).dir;
  transformerDir = (await makeCheckpoint({ ...TINY_TRANSFORMER, nEmbd: 8, nHead: 2 })).dir;
});

/** A copy of a checkpoint dir whose files `damage` may change. */
async function damagedCopy(from: string, damage: (dir: string) => Promise<void>): Promise<string> {
  const dir = await tempDir();
  for (const name of await readdir(from)) await writeFile(path.join(dir, name), await readFile(path.join(from, name)));
  await damage(dir);
  return dir;
}

async function expectRefused(options: Omit<ExportOptions, 'outDir'>, code: string | RegExp, message: RegExp): Promise<FerryError> {
  const parent = await tempDir();
  const outDir = path.join(parent, 'pkg');
  const error = await exportModel({ ...options, outDir }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError, `expected a FerryError, got ${String(error)}`);
  if (typeof code === 'string') assert.equal(error.code, code);
  else assert.match(error.code, code);
  assert.match(error.message, message);
  if (error.code.startsWith('EXPORT_')) assert.ok(error.hint && error.hint.length > 10, 'the error says what to do');
  assert.deepEqual(await readdir(parent), [], 'no package dir and no temp dir left behind');
  return error;
}

test('missing source, missing model.json, malformed model.json', async () => {
  await expectRefused({ source: '/nonexistent/ferry/ckpt' }, 'export_source_not_found', /does not exist/);
  const empty = await tempDir();
  await expectRefused({ source: empty }, 'model_not_found', /model\.json/);
  const notJson = await damagedCopy(lstmDir, (dir) => writeFile(path.join(dir, 'model.json'), '{"modelTopology": '));
  await expectRefused({ source: notJson }, 'invalid_model_json', /not valid JSON/);
  const noTopology = await damagedCopy(lstmDir, (dir) => writeFile(path.join(dir, 'model.json'), '{"weightsManifest": []}'));
  await expectRefused({ source: noTopology }, 'invalid_model_json', /modelTopology/);
});

test('a checkpoint without its tokenizer, with one of another size, or of another format or version', async () => {
  const noTokenizer = await damagedCopy(lstmDir, (dir) => rm(path.join(dir, 'tokenizer.json')));
  await expectRefused({ source: noTokenizer }, 'export_bad_checkpoint', /has a ferry\.json but no tokenizer\.json/);
  const otherVocab = await damagedCopy(lstmDir, async (dir) => {
    const ferry = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8'));
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify((await trainTokenizer('char', ['abc'], { byteFallback: false })).toJSON()));
    await writeFile(path.join(dir, 'ferry.json'), JSON.stringify(ferry));
  });
  await expectRefused({ source: otherVocab }, 'inconsistent_checkpoint', /the tokenizer has \d+ tokens but the model config says \d+/);
  const rewrite = (change: Record<string, unknown>) => damagedCopy(lstmDir, async (dir) => {
    const ferry = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8'));
    await writeFile(path.join(dir, 'ferry.json'), JSON.stringify({ ...ferry, ...change }));
  });
  await expectRefused({ source: await rewrite({ version: 2 }) }, 'unsupported_checkpoint_version', /has version 2; this ferry reads version 1/);
  await expectRefused({ source: await rewrite({ format: 'ferry-onnx' }) }, 'invalid_checkpoint', /format is "ferry-onnx", not "ferry-checkpoint"/);
});

test('a run dir exports best/, or last/ before any evaluation wrote best/, and the log names the checkpoint', async () => {
  const run = await tempDir();
  await makeCheckpoint(TINY_LSTM, { dir: path.join(run, 'last') });
  const lines: string[] = [];
  const report = await exportModel({ source: run, outDir: path.join(await tempDir(), 'pkg'), verify: false, log: (line) => lines.push(line) });
  assert.equal(report.manifest.name, 'pkg', 'named after the package dir');
  assert.equal(lines[0], `checkpoint ${path.join(run, 'last')} (step 0)`);
  await makeCheckpoint(TINY_LSTM, { dir: path.join(run, 'best') });
  lines.length = 0;
  await exportModel({ source: run, outDir: path.join(await tempDir(), 'pkg'), verify: false, log: (line) => lines.push(line) });
  assert.equal(lines[0], `checkpoint ${path.join(run, 'best')} (step 0)`);
});

test('weights shorter or longer than the manifest says', async () => {
  const weights = await readFile(path.join(lstmDir, 'weights.bin'));
  const short = await damagedCopy(lstmDir, (dir) => writeFile(path.join(dir, 'weights.bin'), weights.subarray(0, weights.length - 8)));
  await expectRefused({ source: short }, 'weights_size_mismatch', new RegExp(`${weights.length - 8} bytes`));
  const long = await damagedCopy(lstmDir, (dir) => writeFile(path.join(dir, 'weights.bin'), Buffer.concat([weights, Buffer.alloc(12)])));
  await expectRefused({ source: long }, 'weights_size_mismatch', new RegExp(`${weights.length + 12} bytes`));
});

test('NaN weights are named', async () => {
  const nan = await damagedCopy(lstmDir, async (dir) => {
    const weights = await readFile(path.join(dir, 'weights.bin'));
    const floats = new Float32Array(weights.buffer, weights.byteOffset, weights.length / 4);
    floats[3] = Number.NaN;
    await writeFile(path.join(dir, 'weights.bin'), weights);
  });
  await expectRefused({ source: nan }, 'export_nonfinite_weights', /weight token_embedding\/embeddings holds NaN at index 3/);
});

test('an unknown layer and an unsupported option name the layer, its class and what is supported', async () => {
  const unknown = await damagedCopy(lstmDir, async (dir) => {
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    json.modelTopology.config.layers[2].class_name = 'ConvLSTM2D';
    await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  });
  const error = await expectRefused({ source: unknown }, 'export_unsupported_layer', /layer lstm_0 \(ConvLSTM2D\) has no ONNX converter/);
  assert.match(error.hint!, /Supported layers: .*Bidirectional.*LSTM/);

  const masked = await damagedCopy(lstmDir, async (dir) => {
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    json.modelTopology.config.layers[1].config.mask_zero = true;
    await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  });
  await expectRefused({ source: masked }, 'export_unsupported_option', /layer token_embedding \(Embedding\): maskZero: true is not supported/);
});

test('unsupported option combinations', async () => {
  await expectRefused({ source: lstmDir, attention: 'mha' }, 'export_bad_options', /applies only to ferry Transformer/);
  await expectRefused({ source: transformerDir, quantize: 'int8', target: 'webgpu' }, 'export_bad_options', /int8 with --target webgpu/);
  await expectRefused({ source: transformerDir, attention: 'attention23', opset: 17 }, 'export_bad_options', /needs opset 23/);
  await expectRefused({ source: transformerDir, attention: 'gqa' }, 'export_bad_options', /multiple of 8 \(this model's is 4\)/);
  await expectRefused({ source: transformerDir, opset: 12 }, 'export_bad_options', /opset 12 is not supported/);
  await expectRefused({ source: transformerDir, target: 'tpu' as 'cpu' }, 'export_bad_options', /unknown target "tpu"/);
});

test('an output dir that cannot be written; a failed export leaves an existing package untouched', async () => {
  const parent = await tempDir();
  const file = path.join(parent, 'a-file');
  await writeFile(file, 'x');
  const error = await exportModel({ source: lstmDir, outDir: path.join(file, 'pkg') }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError);
  assert.equal(error.code, 'export_out_not_writable');
  assert.match(error.message, /ENOTDIR|EEXIST/);
  assert.deepEqual(await readdir(parent), ['a-file']);

  const out = path.join(await tempDir(), 'pkg');
  await exportModel({ source: lstmDir, outDir: out, verify: false });
  const before = await readFile(path.join(out, 'ferry.json'), 'utf8');
  await assert.rejects(exportModel({ source: lstmDir, outDir: out, attention: 'gqa' }), FerryError);
  assert.equal(await readFile(path.join(out, 'ferry.json'), 'utf8'), before);
  assert.deepEqual((await readdir(path.dirname(out))).sort(), ['pkg']);
  await exportModel({ source: lstmDir, outDir: out, name: 'replaced', verify: false });
  assert.equal(JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8')).name, 'replaced');
  assert.deepEqual((await readdir(path.dirname(out))).sort(), ['pkg']);
});

test('a graph that differs from tfjs fails verification with the figures of each case', async () => {
  const a = await makeCheckpoint(TINY_LSTM);
  const b = await makeCheckpoint(TINY_LSTM, { seed: 2 });
  const { graph } = convertModel(b.model, { opset: 17, target: 'cpu', io: lstmLanguageModelIO(b.config.vocabSize) });
  const spec = { arch: 'lstm', vocabSize: a.config.vocabSize, layers: 2, hiddenSize: 12, withCell: true } as const;
  const error = await verifyLanguageModel(a.model, serializeModel(graph), spec).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError);
  assert.equal(error.code, 'export_parity');
  assert.match(error.message, /differs from the tfjs model by more than 0\.0001: random ids, batch 1, length 5: \d\.\d\de-\d+/);
  assert.match(error.hint!, /--no-verify/);
});

test('the CLI exports a run dir (its best/) and exits non-zero with the message on bad input', async () => {
  const run = await tempDir();
  await makeCheckpoint(TINY_LSTM, { dir: path.join(run, 'best') });
  const out = path.join(await tempDir(), 'pkg');
  const bin = path.resolve('bin/ferry.js');
  const ok = await promisify(execFile)(process.execPath, [bin, 'export', run, '--out', out, '--fp16']);
  assert.match(ok.stdout, /LSTM state decode, 3 sequences, \d+ tokens\s+max \|diff\| \d\.\d\de-\d+/);
  assert.match(ok.stdout, /fp16: .* perplexity/);
  const manifest = JSON.parse(await readFile(path.join(out, 'ferry.json'), 'utf8'));
  assert.equal(manifest.name, 'pkg', 'named after the package dir, which `ferry serve` then serves it as');
  assert.equal(manifest.files.fp16, 'onnx/model_fp16.onnx');

  const bad = await promisify(execFile)(process.execPath, [bin, 'export', '/nonexistent/x', '--out', out]).then(() => undefined, (e: { code: number; stderr: string }) => e);
  assert.ok(bad);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ferry: \/nonexistent\/x does not exist/);
});
