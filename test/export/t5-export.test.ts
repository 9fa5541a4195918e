// `ferry export RUN` of a T5 run (src/export/t5/export.ts): the Optimum-layout package, verified
// against tfjs and recorded in ferry.json, whose graphs decode the checkpoint's greedy outputs;
// options that do not apply and damaged checkpoints refused before anything is written.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { FerryError } from '../../src/errors.ts';
import { exportModel } from '../../src/export/index.ts';
import { createSession } from '../../src/export/runner.ts';
import { T5_DECODER_FILE, T5_ENCODER_FILE } from '../../src/export/t5/package.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq } from '../../src/package/seq2seq.ts';
import { encodeSafetensors } from '../../src/safetensors.ts';
import { createT5, disposeT5, greedyGenerate, setT5Weights } from '../../src/train/models/t5.ts';
import { readT5Checkpoint } from '../../src/train/t5-checkpoint.ts';
import { trainT5 } from '../../src/train/t5-trainer.ts';
import { collectingReporter, tempDir } from '../train/trainer-helpers.ts';

const dir = tempDir('ferry-t5-export-');
const corpus = join(dir, 'pairs.tsv');
writeFileSync(corpus, ['Haus\thouse', 'Maus\tmouse', 'Baum\ttree', 'Hund\tdog', 'Katze\tcat', 'Vogel\tbird', 'Fisch\tfish', 'Apfel\tapple'].flatMap((line) => [line, line.toLowerCase()]).join('\n'));
const run = join(dir, 'run');
await trainT5({
  corpus, out: run, preset: 't5-tiny', backend: 'cpu', evalPairs: 4, reporter: collectingReporter(),
  model: { dModel: 16, nHeads: 2, dFf: 32, nEncoderLayers: 2, nDecoderLayers: 2, maxSourceLength: 12, maxTargetLength: 12 },
  hyperparameters: { steps: 6, batchSize: 4, lr: 1e-2, warmupSteps: 1, evalInterval: 6, valFraction: 0.3, seed: 2 },
});

test('a T5 run exports to a verified package whose graphs decode what the checkpoint decodes', async () => {
  const out = join(dir, 'package');
  const lines: string[] = [];
  const report = await exportModel({ source: run, outDir: out, log: (line) => lines.push(line) });
  assert.equal(report.arch, 't5');
  for (const file of [T5_ENCODER_FILE, T5_DECODER_FILE, 'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'ferry.json', 'metrics.jsonl']) {
    assert.ok(existsSync(join(out, file)), file);
  }
  const manifest = JSON.parse(readFileSync(join(out, 'ferry.json'), 'utf8'));
  assert.equal(manifest.arch, 't5');
  assert.equal(manifest.name, 'package');
  assert.equal(manifest.training.step, 6);
  assert.deepEqual(manifest.parity.fp32.cases.map((c: { name: string }) => c.name), [
    'teacher-forced logits, right-padded sources', '8 decode steps with both caches, right-padded',
    'teacher-forced logits, left-padded sources', '8 decode steps with both caches, left-padded',
  ]);
  assert.ok(manifest.parity.fp32.maxRelativeDiff <= 1e-4, JSON.stringify(manifest.parity));
  assert.ok(lines.some((line) => line.includes('decode steps with both caches')));

  const checkpoint = await readT5Checkpoint(run);
  const config = checkpoint.manifest.model;
  const model = createT5(config);
  setT5Weights(model, checkpoint.weights);
  const sources = ['Haus', 'Katze', 'Fisch', 'Hund'].map((text) => [...checkpoint.tokenizer.encode(text), 1]);
  const expected = await greedyGenerate(model, sources, 10);
  disposeT5(model);
  const session = async (file: string) => wrapOrtSession(ort.Tensor, await createSession(readFileSync(join(out, file))), 'onnxruntime-node cpu');
  const seq2seq = createSeq2SeqDecoder(await session(T5_ENCODER_FILE), await session(T5_DECODER_FILE), {
    vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0,
  });
  assert.deepEqual(await greedySeq2Seq(seq2seq, sources, 10, 'left'), expected);
});

test('options that do not apply to T5 are refused by flag, and nothing is written', async () => {
  const out = join(dir, 'refused');
  await assert.rejects(exportModel({ source: run, outDir: out, target: 'webgpu', attention: 'mha' }), (error: unknown) =>
    error instanceof FerryError && error.code === 'export_bad_options' && /--target webgpu/.test(error.message) && /--attention mha/.test(error.message));
  assert.equal(existsSync(out), false);
});

test('a checkpoint with a non-finite weight is refused, naming the weight', async () => {
  const checkpoint = await readT5Checkpoint(run, { which: 'last' });
  const broken = new Map(checkpoint.weights);
  const norm = broken.get('decoder.final_layer_norm.weight')!;
  const data = norm.data.slice();
  data[3] = Number.NaN;
  broken.set('decoder.final_layer_norm.weight', { shape: norm.shape, data });
  writeFileSync(join(checkpoint.dir, 'model.safetensors'), encodeSafetensors(broken));
  const out = join(dir, 'broken');
  await assert.rejects(exportModel({ source: checkpoint.dir, outDir: out }), (error: unknown) =>
    error instanceof FerryError && error.code === 'inconsistent_checkpoint' && /decoder\.final_layer_norm\.weight holds NaN at index 3/.test(error.message));
  assert.equal(existsSync(out), false);
});
