import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng } from '../../src/train/data/index.ts';
import { pickToken } from '../../src/train/sample.ts';
import { train } from '../../src/train/trainer.ts';
import { collectingReporter, tempDir, TINY_TRANSFORMER, writePatternCorpus } from './trainer-helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('pickToken: greedy takes the argmax; top-k never leaves the k best; temperature sharpens', () => {
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0]);
  assert.equal(pickToken(logits, { temperature: 0, topK: null }, Math.random), 1);
  const rng = createRng(3);
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < 2000; i += 1) counts[pickToken(logits, { temperature: 1, topK: 2 }, () => rng.next())]! += 1;
  assert.equal(counts[0]! + counts[2]! + counts[4]!, 0, `only ids 1 and 3: ${counts}`);
  // p(1) / p(3) = e^0.1 ~ 1.105, so id 1 gets about 52.5% of 2000 draws.
  assert.ok(Math.abs(counts[1]! / 2000 - 0.525) < 0.04, `${counts}`);
  const cold = [0, 0, 0, 0, 0];
  for (let i = 0; i < 500; i += 1) cold[pickToken(logits, { temperature: 0.01, topK: null }, () => rng.next())]! += 1;
  assert.equal(cold[1], 500, 'a temperature near 0 is greedy');
  const wide = new Set<number>();
  for (let i = 0; i < 500; i += 1) wide.add(pickToken(logits, { temperature: 5, topK: null }, () => rng.next()));
  assert.equal(wide.size, 5, 'a high temperature reaches every token');
});

test('ferry sample and ferry eval on a trained checkpoint', async () => {
  const dir = tempDir('ferry-sample-');
  const corpus = writePatternCorpus(dir);
  const out = join(dir, 'run');
  const cacheDir = join(dir, 'cache');
  const result = await train({
    corpus, out, arch: 'transformer', preset: 'tiny', model: TINY_TRANSFORMER, tokenizer: 'char', cacheDir,
    reporter: collectingReporter(),
    hyperparameters: { steps: 60, batchSize: 8, lr: 1e-2, warmupSteps: 2, evalInterval: 30, evalIters: 2, seed: 7 },
  });
  assert.ok(result.bestValLoss! < 0.5, `trained to val loss ${result.bestValLoss}`);
  const run = (args: string[]) => spawnSync(process.execPath, ['bin/ferry.js', ...args], {
    cwd: root, encoding: 'utf8', env: { ...process.env, FERRY_CACHE_DIR: cacheDir }, timeout: 60_000,
  });

  const greedy = run(['sample', out, '--prompt', 'abc', '--greedy', '--max-tokens', '24']);
  assert.equal(greedy.status, 0, greedy.stderr);
  // The prompt, 24 tokens of the pattern it learned, then the newline the CLI ends with.
  assert.equal(greedy.stdout, `${'abcdefgh\n'.repeat(3)}\n`);

  const sampled = () => run(['sample', join(out, 'last'), '--prompt', 'ab', '--temperature', '1.5', '--top-k', '0', '--seed', '5', '--max-tokens', '30']);
  const first = sampled();
  assert.equal(first.status, 0, first.stderr);
  assert.equal(sampled().stdout, first.stdout, 'the same seed gives the same text');
  assert.ok(first.stdout.startsWith('ab') && [...first.stdout].length >= 20, first.stdout);

  const evaluated = run(['eval', out, '--corpus', corpus, '--json']);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const report = JSON.parse(evaluated.stdout);
  assert.equal(report.checkpointDir, join(out, 'best'));
  assert.equal(report.tokens, readFileSync(corpus, 'utf8').length);
  assert.ok(Math.abs(report.perplexity - Math.exp(report.loss)) < 1e-9);
  assert.ok(Math.abs(report.bitsPerToken - report.loss / Math.LN2) < 1e-9);
  // The corpus is the pattern the val split held, so the loss is about the run's val loss.
  assert.ok(Math.abs(report.loss - result.bestValLoss!) < 0.1, `eval ${report.loss} vs val ${result.bestValLoss}`);
  const text = run(['eval', out, '--corpus', corpus]);
  assert.match(text.stdout, /best: 1,799 tokens scored \(of 1,800; the first has no context\), loss \d\.\d{4} nats\/token \(\d\.\d{4} bits\), perplexity \d+\.\d{3}/);
  assert.equal(report.scoredTokens, 1799);
  // Progress on stderr (a bar on a terminal, a line per tenth here), so stdout keeps the result.
  assert.match(text.stderr, /^eval: 10% \(\d[\d,]*\/1,799 tokens scored, ETA \d+s\)$/m);
  assert.match(text.stderr, /^eval: 100% \(1,799\/1,799 tokens scored/m);
  const twoCharacters = join(dir, 'two.txt');
  writeFileSync(twoCharacters, 'ab');
  assert.match(run(['eval', out, '--corpus', twoCharacters]).stdout, /best: 1 token scored \(of 2; the first has no context\)/);

  const notCheckpoint = run(['sample', dir, '--prompt', 'a']);
  assert.equal(notCheckpoint.status, 1);
  assert.match(notCheckpoint.stderr, /is not a ferry checkpoint/);
  const badTemperature = run(['sample', out, '--temperature', 'hot']);
  assert.equal(badTemperature.status, 1);
  assert.match(badTemperature.stderr, /--temperature must be a number >= 0, got "hot"/);
});
