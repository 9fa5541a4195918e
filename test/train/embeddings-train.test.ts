/**
 * The tutorial's classic word-level LSTM (preset lstm-classic: Embedding 10000x128 -> LSTM 128 ->
 * LSTM 128 -> softmax; here the vocabulary is the tiny corpus's) trained from pretrained vectors:
 * GloVe text and word2vec binary, frozen or not, resumed, exported and served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../src/errors.ts';
import { exportModel } from '../../src/export/index.ts';
import { generateText } from '../../src/serve/generate.ts';
import { loadCheckpoint } from '../../src/train/checkpoint.ts';
import { tokenWord } from '../../src/train/embeddings.ts';
import { createModel } from '../../src/train/models/index.ts';
import { withSeededRandom } from '../../src/train/parallel/shard.ts';
import { sampleFromCheckpoint } from '../../src/train/sample.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { seededVectors, writeGlove, writeWord2vecBinary } from './embeddings-files.ts';
import { collectingReporter, tempDir } from './trainer-helpers.ts';

const SENTENCES = [
  'The cat sat on the mat.', 'A dog ran to the park.', 'The dog saw the cat.', 'Rain fell on the park.',
  'A cat ran from the dog.', 'The mat was red.',
];
// 2,000 words or so: enough that the val split holds a 35-token window.
const CORPUS = Array.from({ length: 40 }, (_, i) => SENTENCES.map((_, j) => SENTENCES[(i + j) % SENTENCES.length]).join(' ')).join('\n') + '\n';
// Lower case as GloVe 6B is; "the" serves "The" and " the"; "red" and "rain" are left out; "zebra" is no token.
const FILE_WORDS = ['the', 'cat', 'sat', 'on', 'mat', '.', 'a', 'dog', 'ran', 'to', 'park', 'saw', 'fell', 'from', 'was', 'zebra'];
const DIM = 128;
const SEED = 5;

const dir = tempDir('ferry-embeddings-train-');
const corpus = join(dir, 'corpus.txt');
writeFileSync(corpus, CORPUS);
const vectors = seededVectors(FILE_WORDS, DIM, 17);
const glove = writeGlove(join(dir, 'glove.6B.128d.txt'), vectors);
const binary = writeWord2vecBinary(join(dir, 'vectors.bin'), vectors);

function classic(name: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    corpus,
    out: join(dir, name),
    preset: 'lstm-classic',
    cacheDir: join(dir, 'cache'),
    reporter: collectingReporter(),
    ...overrides,
    hyperparameters: { steps: 6, batchSize: 4, lr: 1e-2, warmupSteps: 1, evalInterval: 3, evalIters: 1, logInterval: 1, seed: SEED, ...overrides.hyperparameters },
  };
}

async function table(checkpoint: string): Promise<{ rows: number[][]; words: (string | undefined)[]; lstmKernel: number[] }> {
  const loaded = await loadCheckpoint(checkpoint);
  try {
    const rows = loaded.model.getLayer('token_embedding').getWeights()[0]!.arraySync() as number[][];
    const lstmKernel = [...loaded.model.getLayer('lstm_0').getWeights()[0]!.dataSync()];
    const words = rows.map((_, id) => tokenWord(loaded.tokenizer.tokenBytes(id)));
    return { rows, words, lstmKernel };
  } finally {
    loaded.model.dispose();
  }
}

/** The file's vector for a token's word, exactly or in lower case, as the trainer aligns them. */
function fileVector(word: string | undefined): number[] | undefined {
  if (word === undefined) return undefined;
  const vector = vectors.get(word) ?? vectors.get(word.toLowerCase());
  return vector ? [...vector] : undefined;
}

test('lstm-classic with GloVe vectors, frozen: the covered rows are the file\'s, the others the seeded init, before and after training; coverage in the log and ferry.json', async () => {
  const reporter = collectingReporter();
  const result = await train(classic('frozen', { initEmbeddings: glove, reporter, hyperparameters: { freezeEmbeddings: true } }));
  assert.equal(result.stopReason, 'completed');
  assert.equal(result.config.arch, 'lstm');
  const { vocabSize } = result.config;
  const after = await table(join(dir, 'frozen', 'last'));
  // The seeded init the trainer drew, for the rows the file does not cover.
  const init = withSeededRandom(SEED, () => createModel(result.config));
  const initRows = init.getLayer('token_embedding').getWeights()[0]!.arraySync() as number[][];
  const initKernel = [...init.getLayer('lstm_0').getWeights()[0]!.dataSync()];
  init.dispose();
  let found = 0;
  after.rows.forEach((row, id) => {
    const expected = fileVector(after.words[id]);
    if (expected) found += 1;
    assert.deepEqual(row, expected ?? initRows[id], `row ${id} (${JSON.stringify(after.words[id])}) is ${expected ? 'the file\'s vector' : 'the seeded init'}`);
  });
  // "The" and " the" (and "A", " a") share a vector; "red", "Rain", "\n", <unk>, <|endoftext|> have none.
  assert.ok(found >= 16, `${found} rows from the file`);
  assert.notDeepEqual(after.lstmKernel, initKernel, 'the LSTM trained');
  const random = vocabSize - found;
  const percent = ((100 * found) / vocabSize).toFixed(1);
  const lines = (reporter as ReturnType<typeof collectingReporter>).lines;
  assert.ok(lines.includes(`embeddings: ${found} of ${vocabSize} tokens found in ${glove} (${percent}%), ${random} random`), lines.join('\n'));
  assert.ok(lines.some((line) => line.startsWith('embeddings: frozen (--freeze-embeddings)')));
  const manifest = JSON.parse(readFileSync(join(dir, 'frozen', 'last', 'ferry.json'), 'utf8'));
  assert.deepEqual(manifest.training.embeddings, {
    file: glove, format: 'text', dim: DIM, vectors: FILE_WORDS.length, tokens: vocabSize, found, lowercase: manifest.training.embeddings.lowercase, random, frozen: true,
  });
  assert.ok(manifest.training.embeddings.lowercase >= 2, '"The" and "A" matched in lower case');
  assert.equal(manifest.training.hyperparameters.freezeEmbeddings, true);

  // Exported and served at word level: the ONNX package continues a prompt as tfjs does.
  const pkg = join(dir, 'frozen-pkg');
  await exportModel({ source: join(dir, 'frozen'), outDir: pkg });
  let served = '';
  const text = await generateText(pkg, { prompt: 'The cat', max_tokens: 8, temperature: 0 }, {
    device: 'cpu', stream: false, write: (piece) => (served += piece), log: () => {},
  });
  const sampled = await sampleFromCheckpoint(join(dir, 'frozen'), 'The cat', { maxTokens: 8, temperature: 0, topK: null, seed: 1, stopAtEos: true });
  assert.ok(text.length > 0);
  assert.equal(text, sampled.text);
  assert.equal(served, `The cat${text}\n`);
});

test('without --freeze-embeddings the covered rows move; a word2vec binary file of the same vectors gives the same run, and a frozen one resumes exactly', async () => {
  const moving = await train(classic('moving', { initEmbeddings: glove }));
  const after = await table(join(dir, 'moving', 'last'));
  const moved = after.rows.filter((row, id) => {
    const expected = fileVector(after.words[id]);
    return expected !== undefined && row.some((value, k) => value !== expected[k]);
  });
  assert.ok(moved.length >= 10, `${moved.length} covered rows moved`);
  const manifest = JSON.parse(readFileSync(join(dir, 'moving', 'last', 'ferry.json'), 'utf8'));
  assert.equal(manifest.training.embeddings.frozen, false);
  assert.equal(manifest.training.hyperparameters.freezeEmbeddings, false);

  // The same vectors in word2vec's binary format: the same steps, byte for byte.
  const fromBinary = await train(classic('binary', { initEmbeddings: binary }));
  assert.deepEqual(fromBinary.losses, moving.losses);
  assert.ok(readFileSync(join(dir, 'binary', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'moving', 'last', 'weights.bin'))));

  // Frozen, interrupted at step 4 and resumed: the uninterrupted frozen run's weights, byte for byte.
  const whole = await train(classic('frozen-whole', { initEmbeddings: binary, hyperparameters: { freezeEmbeddings: true } }));
  const controller = new AbortController();
  const interrupted = await train(classic('frozen-split', {
    initEmbeddings: binary,
    hyperparameters: { freezeEmbeddings: true },
    signal: controller.signal,
    reporter: collectingReporter((step) => step === 4 && controller.abort()),
  }));
  assert.equal(interrupted.step, 4);
  const resumeReporter = collectingReporter();
  const resumed = await train({ out: join(dir, 'frozen-split'), resume: true, cacheDir: join(dir, 'cache'), reporter: resumeReporter });
  assert.equal(resumed.hyperparameters.freezeEmbeddings, true);
  assert.deepEqual([...interrupted.losses, ...resumed.losses], whole.losses);
  assert.ok(readFileSync(join(dir, 'frozen-split', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'frozen-whole', 'last', 'weights.bin'))));
  assert.ok(resumeReporter.lines.includes('embeddings: frozen (--freeze-embeddings), as when the run started'));
  const resumedManifest = JSON.parse(readFileSync(join(dir, 'frozen-split', 'last', 'ferry.json'), 'utf8'));
  assert.equal(resumedManifest.training.embeddings.format, 'word2vec-binary');

  // A resumed run keeps its weights and what it trains.
  const again = await train({ out: join(dir, 'frozen-split'), resume: true, initEmbeddings: glove, cacheDir: join(dir, 'cache'), reporter: collectingReporter() })
    .then(() => undefined, (error: unknown) => error);
  assert.ok(again instanceof FerryError && again.code === 'resume_mismatch', String(again));
  assert.match(again.message, /Cannot resume with --init-embeddings .*glove\.6B\.128d\.txt: a resumed run keeps its weights \(its embedding came from .*vectors\.bin\)/);
  const unfreeze = await train({ out: join(dir, 'moving'), resume: true, hyperparameters: { freezeEmbeddings: true, steps: 8 }, cacheDir: join(dir, 'cache'), reporter: collectingReporter() })
    .then(() => undefined, (error: unknown) => error);
  assert.ok(unfreeze instanceof FerryError, String(unfreeze));
  assert.match(unfreeze.message, /cannot resume a run that trains its embeddings with --freeze-embeddings/);
});

test('a file of another dimension is refused before the run dir appears, naming the flag, the file and both widths', async () => {
  const small = writeGlove(join(dir, 'glove.50d.txt'), seededVectors(FILE_WORDS, 50, 2));
  const error = await train(classic('wrong-dim', { initEmbeddings: small })).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError && error.code === 'embeddings_dim_mismatch', String(error));
  assert.equal(error.message, `--init-embeddings ${small} holds 50-dimensional vectors, but the model's embedding width is 128.`);
  assert.equal(error.hint, 'Train with --embd 50, or give a file of 128-dimensional vectors.');
  assert.throws(() => readFileSync(join(dir, 'wrong-dim', 'last', 'ferry.json')));
  // Checked from the file's first line before the corpus is read: a missing corpus is not reached.
  const first = await train(classic('wrong-dim-first', { initEmbeddings: small, corpus: join(dir, 'no-such-corpus.txt') })).then(() => undefined, (e: unknown) => e);
  assert.ok(first instanceof FerryError && first.code === 'embeddings_dim_mismatch', String(first));
  // --embd 50 makes the widths agree.
  const fitted = await train(classic('fitted-dim', { initEmbeddings: small, model: { embeddingDim: 50 }, hyperparameters: { steps: 2, evalInterval: 2 } }));
  assert.equal(fitted.stopReason, 'completed');
});

test('frozen over two threads: the workers train the same parameters, so two threads give one thread\'s weights and the table stays the file\'s', async () => {
  const options = (name: string, threads: number) => classic(name, { initEmbeddings: glove, threads, shards: 2, hyperparameters: { freezeEmbeddings: true, steps: 3, evalInterval: 3 } });
  const one = await train(options('frozen-one-thread', 1));
  const two = await train(options('frozen-two-threads', 2));
  assert.equal(two.threads, 2);
  assert.equal(two.shards, 2);
  assert.deepEqual(two.losses, one.losses);
  assert.ok(readFileSync(join(dir, 'frozen-two-threads', 'last', 'weights.bin')).equals(readFileSync(join(dir, 'frozen-one-thread', 'last', 'weights.bin'))));
  const after = await table(join(dir, 'frozen-two-threads', 'last'));
  after.rows.forEach((row, id) => {
    const expected = fileVector(after.words[id]);
    if (expected) assert.deepEqual(row, expected, `row ${id}`);
  });
});
