import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { FerryError } from '../../src/errors.ts';
import { decodeDictdNumber, parseFreedictEntry } from '../../src/train/data/freedict.ts';
import { newPairSkips, readPairs, type PairInput, type PairSkips } from '../../src/train/data/pairs.ts';
import { pairBatch } from '../../src/train/data/pair-batches.ts';
import { isHeldOut } from '../../src/train/data/pair-split.ts';
import { T5_SPECIAL_IDS } from '../../src/train/models/t5-config.ts';

const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function encodeDictd(value: number): string {
  let text = '';
  do {
    text = DIGITS[value % 64] + text;
    value = Math.floor(value / 64);
  } while (value > 0);
  return text;
}

let dir: string;
before(async () => { dir = await mkdtemp(join(tmpdir(), 'ferry-pairs-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function read(input: PairInput, skips: PairSkips = newPairSkips()) {
  const out = [];
  for await (const pair of readPairs(input, skips)) out.push([pair.source, pair.target, pair.line]);
  return out;
}
async function rejects(input: PairInput, code: string, text: RegExp) {
  await assert.rejects(read(input), (error: unknown) => error instanceof FerryError && error.code === code && text.test(error.message));
}

describe('pairs: TSV, JSONL, aligned', () => {
  it('reads each format, skips and counts empty sides', async () => {
    await writeFile(join(dir, 'a.tsv'), 'Haus\thouse\r\n\nBaum\t \nKatze\tcat');
    const skips = newPairSkips();
    assert.deepEqual(await read(join(dir, 'a.tsv'), skips), [['Haus', 'house', 1], ['Katze', 'cat', 4]]);
    assert.equal(skips.emptySide, 1);
    await writeFile(join(dir, 'a.jsonl.gz'), gzipSync('{"source":"Haus","target":"house"}\n'));
    assert.deepEqual(await read(join(dir, 'a.jsonl.gz')), [['Haus', 'house', 1]]);
    await writeFile(join(dir, 's.txt'), 'Haus\nKatze\n');
    await writeFile(join(dir, 't.txt'), 'house\ncat\n');
    assert.deepEqual(await read({ source: join(dir, 's.txt'), target: join(dir, 't.txt') }), [['Haus', 'house', 1], ['Katze', 'cat', 2]]);
  });
  it('bad input is a FerryError naming the file and line', async () => {
    await writeFile(join(dir, 'notab.tsv'), 'a\tb\nno tab\n');
    await rejects(join(dir, 'notab.tsv'), 'pairs_bad_line', /notab\.tsv, line 2: .*no tab/);
    await writeFile(join(dir, 'bad.jsonl'), '{"source":"a","target":"b"}\n{oops\n');
    await rejects(join(dir, 'bad.jsonl'), 'pairs_bad_line', /bad\.jsonl, line 2: .*not JSON/);
    await writeFile(join(dir, 'latin1.tsv'), Buffer.from([0x61, 0x09, 0x62, 0x0a, 0x63, 0x61, 0x66, 0xe9, 0x09, 0x62, 0x0a]));
    await rejects(join(dir, 'latin1.tsv'), 'pairs_invalid_utf8', /latin1\.tsv, line 2/);
    await writeFile(join(dir, 't1.txt'), 'house\n');
    await rejects({ source: join(dir, 's.txt'), target: join(dir, 't1.txt') }, 'pairs_misaligned', /t1\.txt has 1 lines/);
  });
});

describe('pair batches and split', () => {
  it('pads both sides, masks padding and shifts the decoder input right from pad', () => {
    const batch = pairBatch([
      { source: 'a', target: 'b', sourceIds: Int32Array.of(5, 6, 1), targetIds: Int32Array.of(7, 1) },
      { source: 'c', target: 'd', sourceIds: Int32Array.of(5, 1), targetIds: Int32Array.of(8, 9, 1) },
    ]);
    assert.deepEqual([...batch.sourceIds], [5, 6, 1, 5, 1, T5_SPECIAL_IDS.pad]);
    assert.deepEqual([...batch.sourceMask], [1, 1, 1, 1, 1, 0]);
    assert.deepEqual([...batch.decoderInputIds], [0, 7, 0, 0, 8, 9]);
    assert.deepEqual([...batch.labels], [7, 1, 0, 8, 9, 1]);
    assert.deepEqual([...batch.labelMask], [1, 1, 0, 1, 1, 1]);
  });
  it('the seeded split depends only on the source and seed', () => {
    fc.assert(fc.property(fc.string(), fc.integer({ min: 0, max: 1000 }), (source, seed) => isHeldOut(source, 0.3, seed) === isHeldOut(source, 0.3, seed)), { seed: 17 });
  });
});

describe('FreeDict', () => {
  it("decodes dictd's base 64 numbers", () => {
    fc.assert(fc.property(fc.nat(), (n) => decodeDictdNumber(encodeDictd(n)) === n), { seed: 17 });
    assert.equal(decodeDictdNumber('A=B'), undefined);
  });
  it('parses an entry: headword without pronunciation and tags, first sense first', () => {
    const entry = parseFreedictEntry('Sklavenhandel /sklˈɑvən/ <masc, n, sg>\n [hist.] slave trade <n>, slave traffic <n>\n         Note: x\n      "Ein Beispiel" - an example\n see: {Sklave}\n');
    assert.deepEqual(entry, { headword: 'Sklavenhandel', translations: ['slave trade', 'slave traffic'] });
  });
  async function writeDict(name: string, bodies: [string, string][], gzip: boolean, tamper = (index: string) => index) {
    let dict = '';
    let index = `00-database-info\t${encodeDictd(0)}\t${encodeDictd(4)}\n`;
    dict += 'info';
    for (const [key, body] of bodies) {
      const bytes = Buffer.byteLength(dict);
      dict += body;
      index += `${key}\t${encodeDictd(bytes)}\t${encodeDictd(Buffer.byteLength(body))}\n`;
    }
    await writeFile(join(dir, `${name}.index`), tamper(index));
    await writeFile(join(dir, gzip ? `${name}.dict.dz` : `${name}.dict`), gzip ? gzipSync(dict) : dict);
    return join(dir, `${name}.index`);
  }
  const bodies: [string, string][] = [['haus', 'Haus /haʊs/ <n>\nhouse <n>, home <n>\n'], ['zu', 'zu\n see: {bis}\n'], ['größe', 'Größe <f>\nsize <n>\n']];
  it('reads pairs from .index + .dict.dz, skipping metadata and entries without a translation', async () => {
    const index = await writeDict('deu-eng', bodies, true);
    const skips = newPairSkips();
    assert.deepEqual(await read(index, skips), [['Haus', 'house', 2], ['Größe', 'size', 4]]);
    assert.equal(skips.noTranslation, 1);
  });
  it('bad input names the file and headword', async () => {
    await rejects(await writeDict('b64', bodies, false, (i) => i.replace('haus\t', 'haus\t*')), 'freedict_bad_index', /b64\.index, line 2 \(headword "haus"\)/);
    const index = await writeDict('short', bodies, false);
    await writeFile(join(dir, 'short.dict'), 'info');
    await rejects(index, 'freedict_entry_out_of_range', /short\.index, line 2 \(headword "haus"\)/);
    await rm(join(dir, 'short.dict'));
    await rejects(index, 'freedict_dict_not_found', /short\.index/);
  });
});
