// Training from pre-tokenized ids (src/train/data/token-bin.ts): nanoGPT's uint16 .bin with the
// tokenizer.json that produced it trains exactly as the text it came from; bad files are named.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FerryError } from '../../src/errors.ts';
import { readTokenizerFile } from '../../src/tokenizer/node.ts';
import { openTokenBin } from '../../src/train/data/token-bin.ts';
import { train } from '../../src/train/trainer.ts';
import { tempDir, tinyRunOptions } from './trainer-helpers.ts';

const HYPERPARAMETERS = { steps: 6, batchSize: 4, evalInterval: 3, evalIters: 2, warmupSteps: 1, seed: 5 };
const TEXT = 'the quick brown fox jumps over the lazy dog.\n'.repeat(60);

function writeIds(path: string, ids: ArrayLike<number>): void {
  writeFileSync(path, Buffer.from(Uint16Array.from(ids).buffer));
}

test('a .bin of the ids a tokenizer.json gives a text trains exactly as the text does', async () => {
  const dir = tempDir('ferry-token-bin-');
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, TEXT);
  const fromText = await train(tinyRunOptions(dir, corpus, HYPERPARAMETERS, { out: join(dir, 'text'), backend: 'cpu' }));
  const tokenizerFile = join(dir, 'text', 'last', 'tokenizer.json');
  const tokenizer = await readTokenizerFile(tokenizerFile);
  const bin = join(dir, 'train.bin');
  writeIds(bin, tokenizer.encode(TEXT));
  const fromIds = await train(tinyRunOptions(dir, bin, HYPERPARAMETERS, { out: join(dir, 'ids'), backend: 'cpu', tokenizer: undefined, tokenizerFile }));
  assert.deepEqual(fromIds.losses, fromText.losses);
  assert.equal(readFileSync(join(dir, 'ids', 'last', 'tokenizer.json'), 'utf8'), readFileSync(tokenizerFile, 'utf8'));
  // --resume finds the .bin and the run's own tokenizer again.
  const resumed = await train(tinyRunOptions(dir, bin, { ...HYPERPARAMETERS, steps: 8 }, { out: join(dir, 'ids'), backend: 'cpu', tokenizer: undefined, corpus: undefined, resume: true }));
  assert.equal(resumed.step, 8);

  await assert.rejects(train(tinyRunOptions(dir, bin, HYPERPARAMETERS, { out: join(dir, 'no-tokenizer'), backend: 'cpu', tokenizer: undefined })), (error: unknown) =>
    error instanceof FerryError && error.code === 'tokenizer_not_found' && /--tokenizer-file/.test(error.hint ?? ''));
  await assert.rejects(train(tinyRunOptions(dir, bin, HYPERPARAMETERS, { out: join(dir, 'both'), backend: 'cpu', tokenizerFile })), (error: unknown) =>
    error instanceof FerryError && error.code === 'invalid_flag' && /--tokenizer-file gives the tokenizer; --tokenizer would train another/.test(error.message));
});

test('a .bin of an odd size, or with an id past the vocabulary, is refused naming the file and the token', async () => {
  const dir = tempDir('ferry-token-bin-bad-');
  const odd = join(dir, 'odd.bin');
  writeFileSync(odd, Buffer.from([1, 0, 2]));
  await assert.rejects(openTokenBin(odd, 100), (error: unknown) => error instanceof FerryError && error.code === 'corpus_bad_tokens' && /odd\.bin .* has 3 bytes, an odd number/.test(error.message));
  const big = join(dir, 'big.bin');
  // Past one read's chunk, so the check spans chunk boundaries.
  const ids = Array.from({ length: 700_000 }, (_, i) => i % 90);
  ids[654_321] = 4242;
  writeIds(big, ids);
  await assert.rejects(openTokenBin(big, 90), (error: unknown) => error instanceof FerryError && error.code === 'corpus_bad_tokens' && /token 654321 is id 4242, outside the tokenizer's 90 ids/.test(error.message));
  ids[654_321] = 7;
  const good = await openTokenBin((writeIds(big, ids), big), 90);
  assert.equal(good.tokens.length, 700_000);
  assert.deepEqual([...good.tokens.slice(654_320, 654_323)], [ids[654_320], 7, ids[654_322]]);
  assert.match(good.corpusHash, /^sha256:[0-9a-f]{64}$/);
});
