import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FerryError } from '../../src/errors.ts';
import { trainTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import {
  applyEmbeddings, checkEmbeddingsWidth, describeEmbeddings, embeddingFlagProblems, readPretrainedEmbeddings, tokenWord, trainedWeights, type PretrainedEmbeddings,
} from '../../src/train/embeddings.ts';
import { createModel, resolveModelConfig } from '../../src/train/models/index.ts';
import { tempDir } from './trainer-helpers.ts';
import { seededVectors, writeGlove, writeWord2vecBinary, type WordVectors } from './embeddings-files.ts';

const CORPUS = 'The cat sat on the mat.\nA Dog ran.\n'.repeat(4);
const DIM = 4;

async function wordTokenizer(): Promise<Tokenizer> {
  return trainTokenizer('word', [CORPUS], { vocabSize: 100 });
}

/** The id of the token that reads `text` exactly. */
function idOf(tokenizer: Tokenizer, text: string): number {
  const ids = tokenizer.encode(text);
  assert.equal(ids.length, 1, `"${text}" is one token`);
  return ids[0]!;
}

// "THE" before "the": the lowercase fallback for "The" prefers the all-lowercase spelling.
// "Dog" and "dog": " Dog" matches "Dog" exactly. "zebra" is no token. "a" serves "A" in lower case,
// and "Mat" serves " mat" (the same in lower case, either way round).
const WORDS = ['THE', 'the', 'cat', 'Dog', 'dog', 'sat', 'zebra', 'a', '.', 'Mat'];

function expectRows(tokenizer: Tokenizer, vectors: WordVectors, embeddings: PretrainedEmbeddings): void {
  const row = (text: string) => embeddings.rows[idOf(tokenizer, text)];
  assert.deepEqual(row('The'), vectors.get('the'), 'The -> the (lowercase, the lowercase spelling preferred over THE)');
  assert.deepEqual(row(' the'), vectors.get('the'));
  assert.deepEqual(row(' cat'), vectors.get('cat'));
  assert.deepEqual(row(' Dog'), vectors.get('Dog'), 'exact match first');
  assert.deepEqual(row('A'), vectors.get('a'));
  assert.deepEqual(row('.'), vectors.get('.'));
  assert.deepEqual(row(' sat'), vectors.get('sat'));
  assert.deepEqual(row(' mat'), vectors.get('Mat'));
  for (const missing of [' on', ' ran', '\n']) assert.equal(row(missing), null, `${JSON.stringify(missing)} keeps the random init`);
  // <|endoftext|> and <unk> are not in the file either.
  const { coverage } = embeddings;
  assert.equal(coverage.tokens, tokenizer.vocabSize);
  assert.equal(coverage.found, 8);
  assert.equal(coverage.lowercase, 3);
  assert.equal(coverage.random, tokenizer.vocabSize - 8);
  assert.equal(coverage.dim, DIM);
}

test('GloVe text, word2vec text (header) and word2vec binary give the same rows: exact match, then lower case; the rest stay random', async () => {
  const dir = tempDir('ferry-embeddings-');
  const tokenizer = await wordTokenizer();
  const vectors = seededVectors(WORDS, DIM, 3);
  const files = {
    glove: writeGlove(join(dir, 'glove.txt'), vectors),
    header: writeGlove(join(dir, 'w2v.txt'), vectors, { header: true }),
    binary: writeWord2vecBinary(join(dir, 'w2v.bin'), vectors),
    gzipped: join(dir, 'glove.txt.gz'),
    binaryNoNewlines: writeWord2vecBinary(join(dir, 'gensim.bin'), vectors, { newlines: false }),
  };
  writeFileSync(files.gzipped, gzipSync(Buffer.from(writeGloveText(vectors))));
  const formats = { glove: 'text', header: 'text', binary: 'word2vec-binary', gzipped: 'text', binaryNoNewlines: 'word2vec-binary' } as const;
  for (const [name, file] of Object.entries(files)) {
    const embeddings = await readPretrainedEmbeddings(file, tokenizer, DIM);
    assert.equal(embeddings.coverage.format, formats[name as keyof typeof files], name);
    assert.equal(embeddings.coverage.vectors, WORDS.length, name);
    expectRows(tokenizer, vectors, embeddings);
  }
  const embeddings = await readPretrainedEmbeddings(files.glove, tokenizer, DIM);
  const config = resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: { embeddingDim: DIM }, vocabSize: tokenizer.vocabSize });
  const [first, second] = describeEmbeddings(embeddings, config);
  assert.equal(first, `embeddings: 8 of ${tokenizer.vocabSize} tokens found in ${files.glove} (${((800 / tokenizer.vocabSize)).toFixed(1)}%), ${tokenizer.vocabSize - 8} random`);
  assert.match(second!, /text file of 10 vectors; 3 tokens matched in lower case; the \d+ without a vector keep the seeded random init \("<\|endoftext\|>", "<unk>", /);
});

function writeGloveText(vectors: WordVectors): string {
  return [...vectors].map(([word, vector]) => `${word} ${[...vector].join(' ')}\n`).join('');
}

test('BPE tokens with byte-level markers (Ġthe) take the vector of their word', async () => {
  const dir = tempDir('ferry-embeddings-');
  const tokenizer = await trainTokenizer('bpe', [CORPUS.repeat(10)], { vocabSize: 300 });
  const vectors = seededVectors(['the', 'cat', 'Dog'], DIM, 5);
  const embeddings = await readPretrainedEmbeddings(writeGlove(join(dir, 'glove.txt'), vectors), tokenizer, DIM);
  const spaced = idOf(tokenizer, ' the');
  // The tokenizer's own spelling of the token is byte-level: a leading space is "Ġ".
  const vocab = (tokenizer.toJSON() as { model: { vocab: Record<string, number> } }).model.vocab;
  assert.equal(vocab['Ġthe'], spaced);
  assert.deepEqual(embeddings.rows[spaced], vectors.get('the'));
  assert.deepEqual(embeddings.rows[idOf(tokenizer, ' Dog')], vectors.get('Dog'));
  // Byte tokens that are not whole characters have no word.
  assert.equal(tokenWord(new Uint8Array([0xc3])), undefined);
  assert.equal(embeddings.rows[tokenizer.encode('é')[0]!], null);
});

test('applyEmbeddings writes the file rows into the seeded table and leaves the others; freezing drops exactly the table from training', async () => {
  const dir = tempDir('ferry-embeddings-');
  const tokenizer = await wordTokenizer();
  const vectors = seededVectors(WORDS, DIM, 3);
  const embeddings = await readPretrainedEmbeddings(writeGlove(join(dir, 'glove.txt'), vectors), tokenizer, DIM);
  // Both architectures keep their token table in the same layer.
  for (const config of [
    resolveModelConfig({ arch: 'lstm', preset: 'tiny', overrides: { embeddingDim: DIM }, vocabSize: tokenizer.vocabSize }),
    resolveModelConfig({ arch: 'transformer', preset: 'tiny', overrides: { nEmbd: DIM, nHead: 2 }, vocabSize: tokenizer.vocabSize }),
  ]) {
    const seeded = createModel(config, { seed: 11 });
    const model = createModel(config, { seed: 11 });
    try {
      applyEmbeddings(model, embeddings);
      const table = (m: typeof model) => m.getLayer('token_embedding').getWeights()[0]!.arraySync() as number[][];
      const before = table(seeded);
      const after = table(model);
      embeddings.rows.forEach((row, id) => {
        assert.deepEqual(after[id], row ? [...row] : before[id], `row ${id}`);
      });
      const names = (weights: ReturnType<typeof trainedWeights>) => weights.map((weight) => weight.originalName);
      assert.deepEqual(names(trainedWeights(model, false)), names(model.trainableWeights));
      assert.deepEqual(names(trainedWeights(model, true)), names(model.trainableWeights).filter((name) => !name.startsWith('token_embedding/')));
      assert.equal(trainedWeights(model, true).length, model.trainableWeights.length - 1);
    } finally {
      seeded.dispose();
      model.dispose();
    }
  }
});

test('only the vocabulary\'s vectors are kept from a big file; GloVe 840B\'s words with spaces are passed over', async () => {
  const dir = tempDir('ferry-embeddings-');
  const tokenizer = await wordTokenizer();
  const many = seededVectors(Array.from({ length: 20_000 }, (_, i) => `w${i}`), DIM, 9);
  const vectors = seededVectors(['the', 'cat'], DIM, 4);
  const file = join(dir, 'big.txt');
  writeFileSync(file, `${writeGloveText(many)}. . . 1 2 3 4\n${writeGloveText(vectors)}`);
  const embeddings = await readPretrainedEmbeddings(file, tokenizer, DIM);
  assert.equal(embeddings.coverage.vectors, 20_003);
  assert.equal(embeddings.coverage.found, 3);
  assert.deepEqual(embeddings.rows[idOf(tokenizer, ' cat')], vectors.get('cat'));
});

async function rejection(file: string, width = DIM): Promise<FerryError> {
  const tokenizer = await wordTokenizer();
  const error = await readPretrainedEmbeddings(file, tokenizer, width).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FerryError, `expected a FerryError, got ${String(error)}`);
  return error;
}

test('bad files: one FerryError naming the flag, the file and the line (binary: the vector)', async () => {
  const dir = tempDir('ferry-embeddings-');
  const write = (name: string, content: string | Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const vectors = seededVectors(WORDS, DIM, 3);

  // The early check reads the first line only: the header's dimension, or the first vector's.
  for (const file of [writeGlove(join(dir, 'early.txt'), vectors), writeGlove(join(dir, 'early-header.txt'), vectors, { header: true }), writeWord2vecBinary(join(dir, 'early.bin'), vectors)]) {
    await checkEmbeddingsWidth(file, DIM);
    await assert.rejects(checkEmbeddingsWidth(file, 128), (error: FerryError) => error.code === 'embeddings_dim_mismatch' && error.message.includes('holds 4-dimensional vectors'));
  }
  await checkEmbeddingsWidth(write('blank.txt', '\n'), DIM);
  const dim = await rejection(writeGlove(join(dir, 'dim.txt'), vectors), 128);
  assert.equal(dim.code, 'embeddings_dim_mismatch');
  assert.match(dim.message, new RegExp(`^--init-embeddings ${dir}/dim.txt holds 4-dimensional vectors, but the model's embedding width is 128\\.$`));
  assert.match(dim.hint!, /--embd 4/);

  const cases: [string, string | Uint8Array, RegExp][] = [
    ['short.txt', 'the 1 2 3 4\ncat 1 2 3\n', /short\.txt, line 2: "cat" has 3 values, expected 4 \(as the first line has\)/],
    ['long.txt', '2 4\nthe 1 2 3 4\ncat 1 2 3 4 5\n', /long\.txt, line 3: "cat" has 5 values, expected 4 \(as the header says\)/],
    ['nan.txt', 'the 1 2 3 4\ncat 1 2 x 4\n', /nan\.txt, line 2: value 3 of "cat" is "x", not a number/],
    // Words no token has go through the quick check of their values, and get the same errors.
    ['short-unwanted.txt', 'the 1 2 3 4\nzebra 1 2 3\n', /short-unwanted\.txt, line 2: "zebra" has 3 values, expected 4/],
    ['nan-unwanted.txt', 'the 1 2 3 4\nzebra 1 2 3 4\nzebu 1 -2e5 .5 1,5\n', /nan-unwanted\.txt, line 3: value 4 of "zebu" is "1,5", not a number/],
    ['huge.txt', 'the 1 2 3 1e99\n', /huge\.txt, line 1: a value of "the" is too large for float32/],
    ['utf8.txt', Buffer.concat([Buffer.from('the 1 2 3 4\n'), Buffer.from([0x63, 0xff, 0x74]), Buffer.from(' 1 2 3 4\n')]), /utf8\.txt, line 2: not valid UTF-8/],
    ['few.txt', '3 4\nthe 1 2 3 4\ncat 1 2 3 4\n', /few\.txt, line 3: the file ends after 2 of the 3 vectors its header announces \(truncated\?\)/],
    ['more.txt', '1 4\nthe 1 2 3 4\ncat 1 2 3 4\n', /more\.txt, line 3: a vector more than the 1 its header announces/],
    ['empty.txt', '\n', /empty\.txt, line 1: the file holds no vectors/],
    ['novalues.txt', 'the\n', /novalues\.txt, line 1: "the" has no values/],
  ];
  const binary = writeWord2vecBinary(join(dir, 'full.bin'), vectors);
  const bytes = readBytes(binary);
  cases.push(
    ['cut.bin', bytes.subarray(0, bytes.length - 3), /cut\.bin, vector 10 \(byte offset [\d,]+\): the file ends inside the values of "Mat" \(9 of the 10 vectors its header announces are complete: truncated\?\)/],
    // "10 4\n", "THE " and 16 bytes and "\n", then the first letter of "the".
    ['cutword.bin', bytes.subarray(0, 27), /cutword\.bin, vector 2 \(byte offset 26\): the file ends inside its word/],
    ['missing.bin', writeWord2vecBytes(new Map([...vectors].slice(0, 2)), { count: 3 }), /missing\.bin, vector 3 \(byte offset [\d,]+\): the file ends before it/],
    ['badword.bin', writeWord2vecBytes(new Map([['c\xff', vectors.get('cat')!]]), { raw: [0x63, 0xff] }), /badword\.bin, vector 1 \(byte offset 4\): its word is not valid UTF-8/],
    ['nanvalue.bin', writeWord2vecBytes(new Map([['the', Float32Array.from([1, Number.NaN, 3, 4])]])), /nanvalue\.bin, vector 1 \(byte offset 4\): value 2 of "the" is NaN, not a number/],
    ['trailing.bin', Buffer.concat([writeWord2vecBytes(new Map([...vectors].slice(0, 1))), Buffer.from('more ')]), /trailing\.bin, byte offset [\d,]+: data after the 1 vectors its header announces/],
  );
  for (const [name, content, message] of cases) {
    const error = await rejection(write(name, content));
    assert.equal(error.code, 'embeddings_bad_file', name);
    assert.match(error.message, new RegExp(`^--init-embeddings ${dir}/`), name);
    assert.match(error.message, message, name);
  }
});

function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** A word2vec binary file's bytes; `count` may announce more vectors than it holds, `raw` replaces the first word's bytes. */
function writeWord2vecBytes(vectors: WordVectors, options: { count?: number; raw?: number[] } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from(`${options.count ?? vectors.size} ${DIM}\n`)];
  let first = true;
  for (const [word, vector] of vectors) {
    parts.push(first && options.raw ? Buffer.from(options.raw) : Buffer.from(word), Buffer.from(' '));
    first = false;
    parts.push(Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength), Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

test('flag problems: --freeze-embeddings alone, a missing file, a directory', () => {
  const dir = tempDir('ferry-embeddings-');
  assert.deepEqual(embeddingFlagProblems(undefined, true), ['--freeze-embeddings needs --init-embeddings FILE (frozen random embeddings would never learn)']);
  assert.deepEqual(embeddingFlagProblems(join(dir, 'nope.txt'), false), [`--init-embeddings ${dir}/nope.txt does not exist`]);
  assert.deepEqual(embeddingFlagProblems(dir, undefined), [`--init-embeddings ${dir} is not a file`]);
  assert.deepEqual(embeddingFlagProblems(undefined, undefined), []);
});
