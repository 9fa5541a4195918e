import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMetrics, type EvalEvent, type TrainEvent } from '../../src/train/metrics.ts';
import { DEFAULT_HYPERPARAMETERS, train, type TrainOptions } from '../../src/train/trainer.ts';
import { assertWellFormedSvg } from './trainer-svg.ts';
import { collectingReporter, tempDir, TINY_TRANSFORMER, tinyRunOptions, writePatternCorpus } from './trainer-helpers.ts';

function options(dir: string, corpus: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return tinyRunOptions(dir, corpus, { steps: 12, batchSize: 4, lr: 1e-2, warmupSteps: 2, evalInterval: 4, evalIters: 2, logInterval: 2, seed: 7 }, overrides);
}

test('a tiny Transformer learns a repeating pattern: val loss below ln(vocab) / 3', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir);
  const reporter = collectingReporter();
  const result = await train(options(dir, corpus, { reporter, hyperparameters: { steps: 60, evalInterval: 30, batchSize: 8 } }));
  const vocabSize = result.config.vocabSize;
  const bound = Math.log(vocabSize) / 3;
  assert.equal(result.stopReason, 'completed');
  assert.equal(result.step, 60);
  assert.ok(result.lastValLoss! < bound, `val loss ${result.lastValLoss} should be below ln(${vocabSize})/3 = ${bound.toFixed(3)}`);
  assert.ok(result.losses[59]! < result.losses[0]! / 3, `train loss fell from ${result.losses[0]} to ${result.losses[59]}`);
  assert.match(reporter.lines[0]!, /^backend: /);
  assert.ok(reporter.lines.some((line) => /^step 60: val loss \d\.\d{4}, perplexity/.test(line)));
});

test('a tiny LSTM learns the pattern too: val loss below ln(vocab) / 3', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir);
  // The LSTM sits on the unigram plateau (ln 9) for a while before it uses its input: more steps, higher lr.
  const result = await train(options(dir, corpus, {
    arch: 'lstm',
    model: {},
    hyperparameters: { steps: 250, evalInterval: 250, batchSize: 8, lr: 3e-2, logInterval: 50 },
  }));
  assert.equal(result.config.arch, 'lstm');
  const bound = Math.log(result.config.vocabSize) / 3;
  assert.ok(result.lastValLoss! < bound, `val loss ${result.lastValLoss} should be below ${bound.toFixed(3)}`);
});

test('an interrupted then resumed run takes exactly the steps of an uninterrupted one (dropout on)', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir, 120, 'the cat sat on a mat\n');
  const withDropout = { model: { ...TINY_TRANSFORMER, dropout: 0.2 } };
  const whole = await train(options(dir, corpus, { ...withDropout, out: join(dir, 'whole') }));

  const controller = new AbortController();
  const interrupted = await train(
    options(dir, corpus, {
      ...withDropout,
      out: join(dir, 'split'),
      signal: controller.signal,
      // Stop between evaluations, so that the resume point is not an eval checkpoint.
      reporter: collectingReporter((step) => step === 6 && controller.abort()),
    }),
  );
  assert.equal(interrupted.stopReason, 'interrupted');
  assert.equal(interrupted.step, 6);
  const saved = JSON.parse(readFileSync(join(dir, 'split', 'last', 'state.json'), 'utf8'));
  assert.equal(saved.step, 6);

  const resumed = await train({ out: join(dir, 'split'), resume: true, cacheDir: join(dir, 'cache'), reporter: collectingReporter() });
  assert.equal(resumed.startStep, 6);
  assert.equal(resumed.stopReason, 'completed');
  assert.deepEqual([...interrupted.losses, ...resumed.losses], whole.losses);
  assert.equal(resumed.lastValLoss, whole.lastValLoss);
  assert.equal(resumed.bestValLoss, whole.bestValLoss);
  // The run's metrics continue as if never interrupted (times aside).
  const strip = (text: string) =>
    parseMetrics(text).map((event) => ({ ...event, seconds: 0, ...(event.type === 'train' ? { tokensPerSecond: 0 } : {}) }));
  assert.deepEqual(
    strip(readFileSync(join(dir, 'split', 'metrics.jsonl'), 'utf8')),
    strip(readFileSync(join(dir, 'whole', 'metrics.jsonl'), 'utf8')),
  );
  // Same weights at the end, byte for byte.
  assert.ok(readFileSync(join(dir, 'split', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'whole', 'last', 'weights.bin'))));
});

test('checkpoints: last/ and best/ are complete, ferry.json and metrics describe the run', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir);
  const result = await train(options(dir, corpus));
  const run = join(dir, 'run');
  assert.deepEqual(readdirSync(run).sort(), ['best', 'last', 'loss.svg', 'metrics.jsonl']);
  for (const name of ['last', 'best']) {
    assert.deepEqual(readdirSync(join(run, name)).sort(), [
      'ferry.json', 'loss.svg', 'metrics.jsonl', 'model.json', 'optimizer.bin', 'state.json', 'tokenizer.json', 'weights.bin',
    ]);
  }
  const manifest = JSON.parse(readFileSync(join(run, 'last', 'ferry.json'), 'utf8'));
  assert.equal(manifest.format, 'ferry-checkpoint');
  assert.equal(manifest.version, 1);
  assert.deepEqual(manifest.model, result.config);
  assert.deepEqual(manifest.tokenizer, { kind: 'char' });
  assert.equal(manifest.training.step, 12);
  assert.match(manifest.training.corpusHash, /^sha256:[0-9a-f]{64}$/);
  assert.equal(manifest.training.backend, result.backend);
  assert.equal(manifest.training.seed, 7);
  assert.equal(manifest.training.valLoss, result.lastValLoss);
  assert.ok(manifest.training.seconds > 0);
  assert.equal(manifest.training.hyperparameters.steps, 12);
  assert.equal(manifest.training.hyperparameters.weightDecay, DEFAULT_HYPERPARAMETERS.weightDecay);
  const best = JSON.parse(readFileSync(join(run, 'best', 'ferry.json'), 'utf8'));
  assert.equal(best.training.valLoss, result.bestValLoss);

  const events = parseMetrics(readFileSync(join(run, 'metrics.jsonl'), 'utf8'));
  const trainEvents = events.filter((event): event is TrainEvent => event.type === 'train');
  const evalEvents = events.filter((event): event is EvalEvent => event.type === 'eval');
  assert.deepEqual(trainEvents.map((event) => event.step), [2, 4, 6, 8, 10, 12]);
  assert.deepEqual(evalEvents.map((event) => event.step), [4, 8, 12]);
  // Each train event is the mean of the steps since the previous one.
  assert.ok(Math.abs(trainEvents[0]!.loss - (result.losses[0]! + result.losses[1]!) / 2) < 1e-9);
  for (const event of evalEvents) assert.ok(Math.abs(event.valPerplexity - Math.exp(event.valLoss)) < 1e-9);
  assert.equal(evalEvents[2]!.bestValLoss, result.bestValLoss);
  assert.equal(readFileSync(join(run, 'last', 'metrics.jsonl'), 'utf8'), readFileSync(join(run, 'metrics.jsonl'), 'utf8'));
  const svg = readFileSync(join(run, 'loss.svg'), 'utf8');
  assertWellFormedSvg(svg);
  assert.equal([...svg.matchAll(/<path d="M/g)].length, 2);
  // Nothing temporary is left behind.
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes('tmp')), []);
});

test('early stop: training away from the val text stops after `patience` evaluations without improvement', async () => {
  const dir = tempDir();
  const corpus = join(dir, 'shifted.txt');
  // Train on a's, validate on b's: every step makes the val text less likely.
  writeFileSync(corpus, `${'a'.repeat(900)}${'b'.repeat(100)}`);
  const result = await train(options(dir, corpus, { hyperparameters: { steps: 50, evalInterval: 1, patience: 2, warmupSteps: 0 } }));
  assert.equal(result.stopReason, 'early-stop');
  assert.equal(result.step, 3);
  const state = JSON.parse(readFileSync(join(dir, 'run', 'last', 'state.json'), 'utf8'));
  assert.equal(state.stopReason, 'early-stop');
  assert.equal(state.bestStep, 1);
  assert.equal(JSON.parse(readFileSync(join(dir, 'run', 'best', 'ferry.json'), 'utf8')).training.step, 1);
});

test('resume refuses another architecture and keeps the run untouched', async () => {
  const dir = tempDir();
  const corpus = writePatternCorpus(dir);
  await train(options(dir, corpus, { hyperparameters: { steps: 2, evalInterval: 2, warmupSteps: 0 } }));
  const before = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8');
  await assert.rejects(
    train({ out: join(dir, 'run'), resume: true, arch: 'lstm', cacheDir: join(dir, 'cache'), reporter: collectingReporter() }),
    /Cannot resume a transformer checkpoint as --arch lstm/,
  );
  await assert.rejects(
    train({ out: join(dir, 'run'), resume: true, model: { nEmbd: 32 }, cacheDir: join(dir, 'cache'), reporter: collectingReporter() }),
    /different model: nEmbd 16 -> 32/,
  );
  assert.equal(readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8'), before);
  assert.ok(!existsSync(join(dir, 'run', 'last', 'state.json.tmp')));
});
