import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { FerryError } from '../../src/errors.ts';
import { trainTokenizer } from '../../src/tokenizer/index.ts';
import {
  arrayTokenSource,
  createRng,
  describeCorpus,
  hashCorpus,
  prepareTokens,
  readCorpus,
  sampleBatch,
  sequentialBatches,
  splitTrainVal,
} from '../../src/train/data/index.ts';

let dir: string;
// Multi-byte characters placed so that 1 MiB read chunks split some of them.
const line = 'To be, or not to be: that is the question — 你好 🎉\n';
const corpus = line.repeat(Math.ceil((2.5 * 2 ** 20) / line.length));

// A valid first MiB and a bit, then "café" in Latin-1.
const latin1Head = Buffer.from('a'.repeat(2 ** 20 + 5) + 'é');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-data-'));
  await writeFile(join(dir, 'plain.txt'), corpus);
  await writeFile(join(dir, 'packed.txt.gz'), gzipSync(corpus));
  await mkdir(join(dir, 'parts'));
  // Cut inside a word: the files are joined as they are, so "que" + "stion" is one word again.
  const cut = corpus.indexOf('question', corpus.length / 3) + 3;
  // Written out of order: files are read in name order.
  await writeFile(join(dir, 'parts', 'b.txt'), corpus.slice(cut));
  await writeFile(join(dir, 'parts', 'a.txt'), corpus.slice(0, cut));
  await writeFile(join(dir, 'parts', 'notes.csv'), 'not part of the corpus');
  await writeFile(join(dir, 'latin1.txt'), Buffer.concat([latin1Head, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function text(path: string): Promise<string> {
  let all = '';
  for await (const chunk of readCorpus(path)) all += chunk;
  return all;
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FerryError, `expected a FerryError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('readCorpus', () => {
  it('reads a text file, a .gz file and a directory of .txt files to the same text', async () => {
    assert.equal(await text(join(dir, 'plain.txt')), corpus);
    assert.equal(await text(join(dir, 'packed.txt.gz')), corpus);
    assert.equal(await text(join(dir, 'parts')), corpus);
    const hash = await hashCorpus(join(dir, 'plain.txt'));
    assert.match(hash, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await hashCorpus(join(dir, 'packed.txt.gz')), hash);
    assert.equal(await hashCorpus(join(dir, 'parts')), hash);
  });

  it('reads .txt, .md and .jsonl files, gzipped or not, in subfolders too, by path; says what it read and skipped', async () => {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'b', 'deep'), { recursive: true });
    await mkdir(join(tree, '.git'));
    await writeFile(join(tree, 'a.txt'), 'one ');
    await writeFile(join(tree, 'b', 'deep', 'c.md'), 'three ');
    await writeFile(join(tree, 'b', 'a.md.gz'), gzipSync('two '));
    await writeFile(join(tree, 'b', 'rows.jsonl'), '{"text":"x"}\n');
    await writeFile(join(tree, 'logo.png'), Buffer.from([0x89, 0x50]));
    await writeFile(join(tree, '.git', 'HEAD'), 'ref');
    assert.equal(await text(tree), 'one two three x\n');
    assert.equal(await describeCorpus(tree),
      `corpus ${tree}: read 4 files (a.txt, b/a.md.gz, b/deep/c.md, b/rows.jsonl); skipped 2 (.git/, logo.png), which are not .txt, .md or .jsonl`);
    assert.equal(await describeCorpus(join(dir, 'plain.txt')), undefined);
  });

  it('reads the text field of each JSON line, across chunks and gzipped, and names the file and line of a bad one', async () => {
    const rows = Array.from({ length: 40_000 }, (_, i) => ({ text: `row ${i} ünïcode 😀`, id: i }));
    const jsonl = `${rows.map((row) => JSON.stringify(row)).join('\n')}\n\n`;
    assert.ok(Buffer.byteLength(jsonl) > 1 << 20, 'more than one read chunk');
    await writeFile(join(dir, 'rows.jsonl'), jsonl);
    await writeFile(join(dir, 'rows.jsonl.gz'), gzipSync(jsonl));
    const expected = rows.map((row) => `${row.text}\n`).join('');
    assert.equal(await text(join(dir, 'rows.jsonl')), expected);
    assert.equal(await text(join(dir, 'rows.jsonl.gz')), expected);
    await writeFile(join(dir, 'no-newline.jsonl'), '{"text":"a"}\n{"text":"b"}');
    assert.equal(await text(join(dir, 'no-newline.jsonl')), 'a\nb\n');
    for (const [body, problem] of [['{"text":"a"}\n{"text": 3}\n', 'line 2: the line has no "text" string field'], ['{"text":"a"}\n\n{oops\n', 'line 3: the line is not JSON']] as const) {
      const file = join(dir, 'bad.jsonl');
      await writeFile(file, body);
      await assert.rejects(text(file), (error: unknown) => error instanceof FerryError && error.code === 'corpus_bad_jsonl' && error.message === `${file}, ${problem}`);
    }
  });

  it('follows symbolic links to files in a corpus directory', async () => {
    await mkdir(join(dir, 'linked'));
    await symlink(join(dir, 'plain.txt'), join(dir, 'linked', 'a.txt'));
    await symlink(join(dir, 'nowhere.txt'), join(dir, 'linked', 'b.txt'));
    assert.equal(await text(join(dir, 'linked')), corpus);
  });

  it('drops a leading byte order mark', async () => {
    await writeFile(join(dir, 'bom.txt'), '\ufeffhello');
    assert.equal(await text(join(dir, 'bom.txt')), 'hello');
  });

  it('names the byte offset of invalid UTF-8, also past the first chunk', async () => {
    const offset = latin1Head.length + 3;
    await rejectsWith(text(join(dir, 'latin1.txt')), 'corpus_invalid_utf8', new RegExp(`latin1\\.txt is not valid UTF-8 at byte offset ${offset}: byte 0xe9`));
    await writeFile(join(dir, 'cut.txt'), Buffer.from('ok 🎉').subarray(0, 5));
    await rejectsWith(text(join(dir, 'cut.txt')), 'corpus_invalid_utf8', /byte offset 3: the file ends inside a character/);
    await writeFile(join(dir, 'surrogate.txt'), Buffer.from([0x61, 0xed, 0xa0, 0x80]));
    await rejectsWith(text(join(dir, 'surrogate.txt')), 'corpus_invalid_utf8', /byte offset 1:/);
  });

  it('rejects a missing, empty or broken corpus with a clear error', async () => {
    await rejectsWith(text(join(dir, 'nope.txt')), 'corpus_not_found', /nope\.txt does not exist/);
    await writeFile(join(dir, 'empty.txt'), '');
    await rejectsWith(text(join(dir, 'empty.txt')), 'corpus_empty', /empty\.txt is empty/);
    await mkdir(join(dir, 'no-text'));
    await writeFile(join(dir, 'no-text', 'a.csv'), 'x');
    await rejectsWith(text(join(dir, 'no-text')), 'corpus_empty', /has no \.txt, \.md or \.jsonl files \(it holds a\.csv\)/);
    await writeFile(join(dir, 'fake.gz'), 'not gzip at all');
    await rejectsWith(text(join(dir, 'fake.gz')), 'corpus_unreadable', /fake\.gz is not a valid gzip file/);
  });
});

describe('prepareTokens', () => {
  it('tokenizes once, caches the ids, and reads the cache the second time', async () => {
    const corpusPath = join(dir, 'cached.txt');
    await writeFile(corpusPath, corpus);
    const tokenizer = await trainTokenizer('bpe', readCorpus(corpusPath), { vocabSize: 300 });
    const cacheDir = join(dir, 'cache');
    const first = await prepareTokens({ corpusPath, tokenizer, cacheDir });
    assert.equal(first.cached, false);
    assert.deepEqual([...first.tokens.slice(0, first.tokens.length)], tokenizer.encode(corpus));
    assert.equal(first.corpusHash, await hashCorpus(corpusPath));
    const { mtimeMs } = await stat(first.cachePath);

    const second = await prepareTokens({ corpusPath, tokenizer, cacheDir });
    assert.equal(second.cached, true);
    assert.equal(second.cachePath, first.cachePath);
    assert.equal((await stat(second.cachePath)).mtimeMs, mtimeMs);
    assert.deepEqual(second.tokens.slice(0, second.tokens.length), first.tokens.slice(0, first.tokens.length));
    assert.deepEqual(await readdir(cacheDir), [first.cachePath.slice(cacheDir.length + 1)]);

    // Another tokenizer gets its own file; the .gz and directory forms of the corpus share one.
    const charTokenizer = await trainTokenizer('char', readCorpus(corpusPath));
    const chars = await prepareTokens({ corpusPath, tokenizer: charTokenizer, cacheDir });
    assert.equal(chars.cached, false);
    assert.notEqual(chars.cachePath, first.cachePath);
    assert.equal(chars.tokens.length, [...corpus].length);
    const fromGz = await prepareTokens({ corpusPath: join(dir, 'packed.txt.gz'), tokenizer, cacheDir });
    assert.equal(fromGz.cached, true);

    // A damaged token file is made again rather than trusted.
    await truncate(first.cachePath, 1000);
    const remade = await prepareTokens({ corpusPath, tokenizer, cacheDir });
    assert.equal(remade.cached, false);
    assert.deepEqual(remade.tokens.slice(0, remade.tokens.length), first.tokens.slice(0, first.tokens.length));
  });

  it('gives the same ids for a file, its .gz and its parts in a directory', async () => {
    const tokenizer = await trainTokenizer('bpe', [corpus], { vocabSize: 300 });
    const ids = async (corpusPath: string) => {
      const { tokens } = await prepareTokens({ corpusPath, tokenizer, cacheDir: await mkdtemp(join(dir, 'c-')) });
      return tokens.slice(0, tokens.length);
    };
    const plain = await ids(join(dir, 'plain.txt'));
    assert.deepEqual(await ids(join(dir, 'packed.txt.gz')), plain);
    assert.deepEqual(await ids(join(dir, 'parts')), plain);
  });

  it('says so when the cache directory cannot be written', async () => {
    const tokenizer = await trainTokenizer('char', ['abc']);
    await writeFile(join(dir, 'a-file'), 'x');
    await rejectsWith(prepareTokens({ corpusPath: join(dir, 'plain.txt'), tokenizer, cacheDir: join(dir, 'a-file') }), 'cache_unwritable', /cannot write the token cache in .*a-file/);
  });

  it('leaves no token file behind when the corpus is bad', async () => {
    const tokenizer = await trainTokenizer('char', ['abc']);
    const cacheDir = join(dir, 'bad-cache');
    await rejectsWith(prepareTokens({ corpusPath: join(dir, 'latin1.txt'), tokenizer, cacheDir }), 'corpus_invalid_utf8', /byte offset/);
    assert.deepEqual(await readdir(cacheDir), []);
  });
});

describe('splitTrainVal', () => {
  const source = arrayTokenSource(Array.from({ length: 1000 }, (_, i) => i));

  it('keeps the last 10% for validation by default', () => {
    const { train, val } = splitTrainVal(source);
    assert.equal(train.length, 900);
    assert.equal(val.length, 100);
    assert.deepEqual([...val.slice(0, 3)], [900, 901, 902]);
    assert.deepEqual([...train.slice(897, 900)], [897, 898, 899]);
    assert.throws(() => val.slice(99, 101), RangeError);
  });

  it('splits as nanoGPT on the tinyshakespeare length', () => {
    const { train, val } = splitTrainVal({ length: 1_115_394, slice: () => new Int32Array() });
    assert.equal(train.length, 1_003_854);
    assert.equal(val.length, 111_540);
  });

  it('names the sizes when a split is shorter than one block', () => {
    assert.throws(
      () => splitTrainVal(source, 0.1, 128),
      (error: unknown) =>
        error instanceof FerryError && error.code === 'corpus_too_short' && /validation split \(last 10%\) has 100 tokens, fewer than one block of 128 \+ 1/.test(error.message),
    );
    assert.throws(() => splitTrainVal(arrayTokenSource([1, 2, 3]), 0.1, 8), /training split has 2 tokens, fewer than one block of 8 \+ 1/);
    assert.throws(() => splitTrainVal(source, 1), /validation fraction 1 is not in \[0, 1\)/);
  });
});

describe('createRng', () => {
  it('gives the same numbers for the same seed and different ones for another', () => {
    const a = createRng(1);
    const b = createRng(1);
    const c = createRng(2);
    const draws = (rng: ReturnType<typeof createRng>) => Array.from({ length: 20 }, () => rng.next());
    const fromA = draws(a);
    assert.deepEqual(draws(b), fromA);
    assert.notDeepEqual(draws(c), fromA);
    assert.ok(fromA.every((x) => x >= 0 && x < 1));
  });

  it('resumes exactly from a saved state that went through JSON', () => {
    const rng = createRng(42);
    for (let i = 0; i < 100; i++) rng.next();
    const saved = JSON.parse(JSON.stringify(rng.getState()));
    const expected = Array.from({ length: 10 }, () => rng.nextInt(1000));
    const resumed = createRng(0);
    resumed.setState(saved);
    assert.deepEqual(Array.from({ length: 10 }, () => resumed.nextInt(1000)), expected);
    assert.throws(() => resumed.setState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] }), /not a xoshiro128\*\* state/);
  });

  it('draws integers uniformly in [0, n)', () => {
    const rng = createRng(7);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[rng.nextInt(6)]++;
    for (const count of counts) assert.ok(Math.abs(count - 10_000) < 400, `count ${count}`);
  });
});

describe('batches', () => {
  const source = arrayTokenSource(Array.from({ length: 500 }, (_, i) => i));

  it('samples random windows whose targets are the inputs shifted by one', () => {
    const rng = createRng(3);
    const { inputs, targets, rows } = sampleBatch(source, { blockSize: 16, batchSize: 4 }, rng);
    assert.equal(rows, 4);
    assert.equal(inputs.length, 64);
    assert.equal(targets.length, 64);
    for (let row = 0; row < 4; row++) {
      const start = inputs[row * 16]!;
      for (let t = 0; t < 16; t++) {
        assert.equal(inputs[row * 16 + t], start + t);
        assert.equal(targets[row * 16 + t], start + t + 1);
      }
    }
    const again = sampleBatch(source, { blockSize: 16, batchSize: 4 }, createRng(3));
    assert.deepEqual(again.inputs, inputs);
  });

  it('reaches the last token of the source', () => {
    const rng = createRng(5);
    const small = arrayTokenSource([0, 1, 2, 3]);
    const lastTargets = new Set<number>();
    for (let i = 0; i < 50; i++) lastTargets.add(sampleBatch(small, { blockSize: 3, batchSize: 1 }, rng).targets[2]!);
    assert.deepEqual([...lastTargets], [3]);
  });

  it('walks every window of a split once for evaluation', () => {
    const batches = [...sequentialBatches(source, { blockSize: 16, batchSize: 10 })];
    // (500 - 1) / 16 -> 31 windows: three batches of 10 and one of 1
    assert.deepEqual(batches.map((batch) => batch.rows), [10, 10, 10, 1]);
    const last = batches[3]!;
    assert.deepEqual([...last.inputs.subarray(0, 3)], [480, 481, 482]);
    assert.equal(last.targets[15], 496);
    assert.equal(batches[1]!.inputs[16], 176);
    assert.equal(batches[1]!.targets[16], 177);
  });

  it('refuses a source shorter than one block', () => {
    assert.throws(() => sampleBatch(arrayTokenSource([1, 2]), { blockSize: 2, batchSize: 1 }, createRng(1)), /has 2 tokens, fewer than one block of 2 \+ 1/);
    assert.throws(() => [...sequentialBatches(arrayTokenSource([1]), { blockSize: 4, batchSize: 1 })], /corpus has 1 tokens/);
  });
});
