// `ferry train --arch t5` (src/train/t5-trainer.ts): a tiny run on generated pairs trains and writes
// T5 checkpoints, a stopped and resumed run takes exactly the uninterrupted run's steps, the scores
// (exact match, CER) are computed right, and flags of the other kind of model are refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../../src/errors.ts';
import { mulberry32 } from '../../src/random.ts';
import { createT5, disposeT5, t5Weights } from '../../src/train/models/t5.ts';
import { readCheckpointManifest } from '../../src/train/checkpoint.ts';
import { readT5Checkpoint } from '../../src/train/t5-checkpoint.ts';
import { editDistance, evaluateT5Checkpoint, evenlySpaced } from '../../src/train/t5-evaluate.ts';
import { isHeldOut } from '../../src/train/data/pair-split.ts';
import { trainT5, type TrainT5Options } from '../../src/train/t5-trainer.ts';
import { collectingReporter, tempDir } from './trainer-helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Dropout on, so that resuming must also replay its draws.
const TINY = { dModel: 16, nHeads: 2, dFf: 32, nEncoderLayers: 1, nDecoderLayers: 1, dropout: 0.1, maxSourceLength: 10, maxTargetLength: 10 };

/** Seeded pairs of a reversal task: "abc<TAB>cba". */
function writeReversalPairs(dir: string, count = 300): string {
  const random = mulberry32(11);
  const lines = Array.from({ length: count }, () => {
    const word = Array.from({ length: 2 + Math.floor(random() * 5) }, () => 'abcdef'[Math.floor(random() * 6)]).join('');
    return `${word}\t${[...word].reverse().join('')}`;
  });
  const file = join(dir, 'reverse.tsv');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function tinyOptions(dir: string, corpus: string, overrides: Partial<TrainT5Options> = {}): TrainT5Options {
  return {
    corpus, out: join(dir, 'run'), preset: 't5-tiny', model: TINY, backend: 'cpu', evalPairs: 16, reporter: collectingReporter(),
    ...overrides,
    hyperparameters: { steps: 8, batchSize: 8, lr: 5e-3, warmupSteps: 1, evalInterval: 4, seed: 3, ...overrides.hyperparameters },
  };
}

test('a tiny T5 run trains on pairs and writes best/ and last/ T5 checkpoints with its scores', async () => {
  const dir = tempDir('ferry-t5-train-');
  const reporter = collectingReporter();
  const result = await trainT5(tinyOptions(dir, writeReversalPairs(dir), { reporter, hyperparameters: { steps: 12, evalInterval: 6 } }));
  assert.equal(result.step, 12);
  assert.equal(result.losses.length, 12);
  assert.ok(result.losses.at(-1)! < result.losses[0]!, `loss ${result.losses[0]} -> ${result.losses.at(-1)}`);
  assert.ok(result.lastScore && result.lastScore.decoded === 16 && result.lastScore.cer >= 0 && result.lastScore.exactMatch >= 0);
  assert.ok(reporter.lines.some((line) => /step 12: val loss [\d.]+, perplexity [\d.]+, exact match [\d.]+%, CER [\d.]+% over 16 held-out pairs/.test(line)), reporter.lines.join('\n'));

  const last = await readT5Checkpoint(join(dir, 'run'), { which: 'last' });
  assert.equal(last.manifest.model.arch, 't5');
  assert.equal(last.manifest.model.dModel, 16);
  assert.equal(last.manifest.training.step, 12);
  assert.equal(last.manifest.training.cer, result.lastScore.cer);
  assert.equal(last.tokenizer.vocabSize, last.manifest.model.vocabSize);
  const events = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { type: string; exactMatch?: number });
  assert.deepEqual(events.filter((e) => e.type === 'eval').map((e) => typeof e.exactMatch), ['number', 'number']);
  // The language-model readers say what a T5 checkpoint is, rather than failing on its config.
  await assert.rejects(readCheckpointManifest(last.dir), (error: unknown) => error instanceof FerryError && error.code === 't5_checkpoint' && /ferry export/.test(error.hint ?? ''));
});

test('a run stopped after 3 steps and resumed takes the same steps as one that ran through', async () => {
  const dir = tempDir('ferry-t5-resume-');
  const corpus = writeReversalPairs(dir);
  const straight = await trainT5(tinyOptions(dir, corpus, { out: join(dir, 'straight') }));

  const controller = new AbortController();
  const stopping = collectingReporter((step) => {
    if (step === 3) controller.abort();
  });
  const first = await trainT5(tinyOptions(dir, corpus, { out: join(dir, 'stopped'), reporter: stopping, signal: controller.signal }));
  assert.equal(first.stopReason, 'interrupted');
  assert.equal(first.step, 3);
  const resumed = await trainT5({ out: join(dir, 'stopped'), resume: true, backend: 'cpu', reporter: collectingReporter() });
  assert.equal(resumed.startStep, 3);
  assert.deepEqual([...first.losses, ...resumed.losses], straight.losses);
  const a = await readT5Checkpoint(join(dir, 'straight'), { which: 'last' });
  const b = await readT5Checkpoint(join(dir, 'stopped'), { which: 'last' });
  for (const [name, weight] of a.weights) assert.deepEqual(b.weights.get(name)!.data, weight.data, name);

  // What would change the resumed run is refused, all at once, in flag names.
  await assert.rejects(
    trainT5({ out: join(dir, 'stopped'), resume: true, backend: 'cpu', model: { dModel: 32 }, tokenizer: 'bpe', corpus, reporter: collectingReporter() }),
    (error: unknown) => error instanceof FerryError && error.code === 'invalid_flag' && /dModel differs/.test(error.message) && /--tokenizer bpe/.test(error.message) && /--corpus/.test(error.message),
  );
});

test('the checkpoint holds exactly the model weights; a damaged one is refused', async () => {
  const dir = tempDir('ferry-t5-ckpt-');
  await trainT5(tinyOptions(dir, writeReversalPairs(dir), { hyperparameters: { steps: 2, evalInterval: 2 } }));
  const checkpoint = await readT5Checkpoint(join(dir, 'run'));
  const model = createT5(checkpoint.manifest.model, { seed: 1 });
  const fresh = await t5Weights(model);
  disposeT5(model);
  assert.deepEqual([...checkpoint.weights.keys()], [...fresh.keys()]);
  for (const [name, weight] of fresh) assert.deepEqual(checkpoint.weights.get(name)!.shape, weight.shape, name);

  const weightsFile = join(checkpoint.dir, 'model.safetensors');
  const bytes = readFileSync(weightsFile);
  writeFileSync(weightsFile, bytes.subarray(0, bytes.length - 40));
  await assert.rejects(readT5Checkpoint(join(dir, 'run')), (error: unknown) => error instanceof FerryError && error.code === 'invalid_safetensors' && error.message.includes(weightsFile));
  const manifestFile = join(checkpoint.dir, 'ferry.json');
  writeFileSync(weightsFile, bytes);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, model: { ...manifest.model, dFf: 48 } }));
  await assert.rejects(readT5Checkpoint(join(dir, 'run')), (error: unknown) => error instanceof FerryError && error.code === 'inconsistent_checkpoint' && /wi_0\.weight is \[16, 32\], the config needs \[16, 48\]/.test(error.message));
});

test('ferry eval scores a T5 checkpoint on pairs: all of them, or the held-out ones spread over the file', async () => {
  const dir = tempDir('ferry-t5-eval-');
  const corpus = writeReversalPairs(dir);
  await trainT5(tinyOptions(dir, corpus, { hyperparameters: { steps: 2, evalInterval: 2 } }));
  const all = await evaluateT5Checkpoint(join(dir, 'run'), corpus, { batchSize: 16, maxPairs: 40 });
  assert.equal(all.pairs, 40);
  assert.ok(Number.isFinite(all.loss) && all.cer >= 0 && all.exactMatch >= 0 && all.examples.length === 3);
  const heldOut = await evaluateT5Checkpoint(join(dir, 'run'), corpus, { batchSize: 16, heldOut: true, maxPairs: 10 });
  assert.equal(heldOut.pairs, 10);
  assert.match(heldOut.skipped ?? '', /left out the \d+ pairs the run trained on/);
  for (const { source } of heldOut.examples) assert.ok(isHeldOut(source, 0.1, 3), `${source} is a held-out pair of seed 3`);
  assert.deepEqual(evenlySpaced([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4), [0, 2, 5, 7]);
  assert.deepEqual(evenlySpaced([1, 2], 4), [1, 2]);

  const cli = ferry(['eval', join(dir, 'run'), '--corpus', corpus, '--held-out', '--max-pairs', '5', '--backend', 'cpu']);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /5 pairs \(\d+ target tokens\), loss [\d.]+ nats\/token, perplexity [\d.]+; greedy: exact match [\d.]+%, CER [\d.]+%/);
  const byPosition = ferry(['eval', join(dir, 'run'), '--corpus', corpus, '--by-position']);
  assert.equal(byPosition.status, 1);
  assert.match(byPosition.stderr, /--by-position scores language models; .* is a T5 checkpoint/);
});

test('edit distance counts code points; CER and exact match follow from it', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('Haus😀', 'Maus😀'), 1);
  assert.equal(editDistance('😀', '😁'), 1);
  assert.equal(editDistance('flaw', 'lawn'), 2);
});

function ferry(args: string[]) {
  return spawnSync(process.execPath, ['bin/ferry.js', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
}

test('ferry train refuses language-model flags for t5 and t5 flags for language models, naming each', () => {
  const dir = tempDir('ferry-t5-flags-');
  const t5 = ferry(['train', '--arch', 't5', '--corpus', join(dir, 'x.tsv'), '--out', join(dir, 'a'), '--hidden', '64', '--block-size', '32', '--stateful', '--heads', '3', '--embd', '16']);
  assert.equal(t5.status, 1, t5.stderr);
  for (const expected of ['--hidden applies only to language models', '--block-size applies only to language models', '--stateful applies only to language models', '--heads 3 must divide --embd 16']) {
    assert.ok(t5.stderr.includes(expected), `${expected} in ${t5.stderr}`);
  }
  const lm = ferry(['train', '--arch', 'lstm', '--corpus', join(dir, 'x.txt'), '--out', join(dir, 'b'), '--max-source-length', '20', '--target-corpus', join(dir, 'y.txt')]);
  assert.equal(lm.status, 1, lm.stderr);
  assert.match(lm.stderr, /--max-source-length applies only to t5 models/);
  assert.match(lm.stderr, /--target-corpus applies only to t5 models/);
  assert.doesNotMatch(t5.stderr + lm.stderr, /\n\s+at /, 'no stack trace');
});
