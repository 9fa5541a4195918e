import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors.ts';
import { loadTokenizer, tokenizerConfigJson, trainTokenizer } from '../../src/tokenizer/index.ts';
import { readTokenizerFile, writeTokenizerFile } from '../../src/tokenizer/node.ts';

const corpus = 'To be, or not to be, that is the question:\nWhether tis nobler in the mind to suffer\n'.repeat(5);

type Json = Record<string, any>;
const json = (value: object): Json => JSON.parse(JSON.stringify(value));

function throwsFerry(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FerryError, `expected a FerryError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('tokenizer.json shape', () => {
  it('writes char vocabularies as a BPE model without merges, with a byte-fallback + Fuse decoder', async () => {
    const file = json((await trainTokenizer('char', [corpus])).toJSON());
    for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'added_tokens', 'model']) assert.ok(key in file, key);
    assert.equal(file.model.type, 'BPE');
    assert.deepEqual(file.model.merges, []);
    assert.equal(file.model.byte_fallback, true);
    assert.deepEqual(file.decoder, { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] });
    assert.equal(file.pre_tokenizer, null);
    assert.equal(file.model.vocab['<|endoftext|>'], 0);
    assert.equal(file.model.vocab['\n'], 1);
    assert.equal(file.model.vocab['<0x00>'] + 255, file.model.vocab['<0xFF>']);
    assert.deepEqual(file.added_tokens, [
      { id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ]);
  });

  it('writes byte-level BPE in the GPT-2 form', async () => {
    const file = json((await trainTokenizer('bpe', [corpus], { vocabSize: 270 })).toJSON());
    assert.equal(file.model.type, 'BPE');
    assert.equal(file.pre_tokenizer.type, 'ByteLevel');
    assert.equal(file.pre_tokenizer.add_prefix_space, false);
    assert.equal(file.decoder.type, 'ByteLevel');
    assert.equal(file.normalizer, null);
    assert.equal(Object.keys(file.model.vocab).length, 270);
    assert.equal(file.model.merges.length, 270 - 257);
    // " t" + "o" and friends: space is written "Ġ", as in GPT-2's files
    assert.ok(file.model.merges.every((merge: string) => merge.split(' ').length === 2));
    assert.ok(Object.keys(file.model.vocab).some((token) => token.startsWith('Ġ')));
    assert.equal(file.model.vocab['Ġ'], 1 + 32);
  });

  it('writes word vocabularies as WordLevel with <unk>', async () => {
    const file = json((await trainTokenizer('word', [corpus])).toJSON());
    assert.equal(file.model.type, 'WordLevel');
    assert.equal(file.model.unk_token, '<unk>');
    assert.equal(file.model.vocab['<unk>'], 1);
    assert.equal(file.pre_tokenizer.type, 'Split');
    assert.deepEqual(file.decoder, { type: 'Fuse' });
  });

  it('makes a tokenizer_config.json with eos/pad and no space clean-up', async () => {
    const config = json(tokenizerConfigJson(await trainTokenizer('char', [corpus]), { modelMaxLength: 256 }));
    assert.equal(config.clean_up_tokenization_spaces, false);
    assert.equal(config.eos_token, '<|endoftext|>');
    assert.equal(config.pad_token, '<|endoftext|>');
    assert.equal(config.model_max_length, 256);
    assert.equal(config.added_tokens_decoder['0'].content, '<|endoftext|>');
    const word = json(tokenizerConfigJson(await trainTokenizer('word', [corpus])));
    assert.equal(word.unk_token, '<unk>');
  });
});

describe('loadTokenizer', () => {
  it('loads a GPT-2 style file written by other tools (array merges, eos at the end)', () => {
    const bytes = JSON.parse(JSON.stringify(Object.keys(gpt2ByteVocab())));
    const vocab: Record<string, number> = {};
    bytes.forEach((token: string, id: number) => (vocab[token] = id));
    vocab['Ġt'] = 256;
    vocab['Ġth'] = 257;
    vocab['<|endoftext|>'] = 258;
    const tokenizer = loadTokenizer({
      added_tokens: [{ id: 258, content: '<|endoftext|>', special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      decoder: { type: 'ByteLevel' },
      model: { type: 'BPE', vocab, merges: [['Ġ', 't'], ['Ġt', 'h']] },
    });
    assert.equal(tokenizer.kind, 'bpe');
    assert.equal(tokenizer.eosId, 258);
    assert.equal(tokenizer.vocabSize, 259);
    assert.deepEqual(tokenizer.encode(' the<|endoftext|>'), [257, vocab['e'], 258]);
    assert.equal(tokenizer.decode([257, vocab['e']!]), ' the');
  });

  it('names what is wrong in a bad file', async () => {
    const good = json((await trainTokenizer('bpe', [corpus], { vocabSize: 260 })).toJSON());
    const broken = (edit: (file: Json) => void) => {
      const file = structuredClone(good);
      edit(file);
      return () => loadTokenizer(file);
    };
    throwsFerry(() => loadTokenizer(null), 'tokenizer_invalid', /tokenizer\.json is invalid: the top level/);
    throwsFerry(() => loadTokenizer({ model: {} }), 'tokenizer_invalid', /model\.type/);
    throwsFerry(broken((file) => (file.model.type = 'Unigram')), 'tokenizer_invalid', /model\.type/);
    throwsFerry(broken((file) => (file.added_tokens = 'x')), 'tokenizer_invalid', /added_tokens/);
    throwsFerry(broken((file) => (file.model.vocab.Ġ = 'seven')), 'tokenizer_invalid', /model\.vocab\["Ġ"\] is "seven", not a token id/);
    throwsFerry(broken((file) => (file.model.vocab.Ġ = 1)), 'tokenizer_invalid', /gives id 1 to both/);
    throwsFerry(broken((file) => delete file.model.vocab.Ġ), 'tokenizer_invalid', /33 is missing|lacks the token for byte 32/);
    throwsFerry(broken((file) => (file.model.merges[0] = 'a b c')), 'tokenizer_invalid', /model\.merges\[0\] "a b c" is not two tokens/);
    throwsFerry(broken((file) => file.model.merges.push('Ġ zz')), 'tokenizer_invalid', /merge 3 \("Ġ zz"\) uses a token missing/);
    throwsFerry(broken((file) => (file.normalizer = { type: 'NFKC' })), 'tokenizer_unsupported', /normalizer "NFKC"/);
    throwsFerry(broken((file) => (file.pre_tokenizer = { type: 'Metaspace' })), 'tokenizer_unsupported', /pre_tokenizer "Metaspace"/);
    throwsFerry(broken((file) => (file.model.vocab = [])), 'tokenizer_invalid', /model\.vocab must be an object/);
  });
});

describe('tokenizer files', () => {
  it('writes atomically and reads back a tokenizer that encodes the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-tok-'));
    try {
      const tokenizer = await trainTokenizer('bpe', [corpus], { vocabSize: 280 });
      const path = join(dir, 'tokenizer.json');
      await writeTokenizerFile(path, tokenizer);
      assert.deepEqual(await readdir(dir), ['tokenizer.json']);
      const loaded = await readTokenizerFile(path);
      assert.deepEqual(loaded.encode(corpus), tokenizer.encode(corpus));
      assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), json(tokenizer.toJSON()));

      await assert.rejects(readTokenizerFile(join(dir, 'missing.json')), /missing\.json: it does not exist/);
      await writeFile(join(dir, 'bad.json'), '{"model": ');
      await assert.rejects(readTokenizerFile(join(dir, 'bad.json')), (error: unknown) => error instanceof FerryError && /bad\.json is not JSON/.test(error.message));
      await writeFile(join(dir, 'wrong.json'), '{"model": {"type": "BPE", "vocab": {"a": 3}}}');
      await assert.rejects(readTokenizerFile(join(dir, 'wrong.json')), /wrong\.json: tokenizer\.json is invalid: token ids must run from 0 to 3 without gaps; 0 is missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bad training input', () => {
  it('rejects an unknown kind and an impossible vocabulary size', async () => {
    await assert.rejects(trainTokenizer('sentencepiece', [corpus]), /unknown tokenizer "sentencepiece"/);
    await assert.rejects(trainTokenizer('bpe', [corpus], { vocabSize: 100 }), /vocabulary size 100 is out of range for a bpe tokenizer/);
    await assert.rejects(trainTokenizer('word', [corpus], { vocabSize: 2.5 }), /vocabulary size 2\.5 is out of range/);
  });

  it('refuses to decode ids outside the vocabulary', async () => {
    const tokenizer = await trainTokenizer('char', ['abc']);
    throwsFerry(() => tokenizer.decode([1, tokenizer.vocabSize]), 'token_out_of_range', new RegExp(`token id ${tokenizer.vocabSize} is outside the vocabulary`));
    throwsFerry(() => tokenizer.tokenBytes(-1), 'token_out_of_range', /token id -1/);
  });
});

function gpt2ByteVocab(): Record<string, number> {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const vocab: Record<string, number> = {};
  let shifted = 0;
  for (let b = 0; b < 256; b++) vocab[String.fromCodePoint(printable(b) ? b : 256 + shifted++)] = b;
  return vocab;
}
