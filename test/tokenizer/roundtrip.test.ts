import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadTokenizer, trainTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';

const corpus = [
  'First Citizen:\nBefore we proceed any further, hear me speak.\n\n',
  'All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n',
].join('');

const hardTexts = [
  '',
  'hello',
  '中文字符和标点。你好，世界！',
  'emoji 🎉🚀👩‍👩‍👧 and flags 🇫🇷',
  'control \u0000\u0001\u0007\b\t\n\v\f\r\u001b\u007f end',
  'mixed: Zürich – naïve café “quotes” \u00a0 \u2028 \ufeff',
  '   leading and trailing spaces   \n\n\n',
  'the text <|endoftext|> has an end marker',
];

async function trained(kind: 'char' | 'bpe'): Promise<Tokenizer> {
  return trainTokenizer(kind, [corpus], { vocabSize: 300 });
}

for (const kind of ['char', 'bpe'] as const) {
  describe(`${kind} tokenizer round-trips`, () => {
    it('gives back Chinese, emoji, control characters and the empty string exactly', async () => {
      const tokenizer = await trained(kind);
      for (const text of hardTexts) assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
      assert.deepEqual(tokenizer.encode(''), []);
      assert.equal(tokenizer.decode([]), '');
    });

    it('gives back arbitrary Unicode strings (property)', async () => {
      const tokenizer = await trained(kind);
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 60, size: 'max' }), (text) => tokenizer.decode(tokenizer.encode(text)) === text),
        { numRuns: 400 },
      );
    });

    it('decodes a stream of tokenBytes to the same text', async () => {
      const tokenizer = await trained(kind);
      const text = '你好 🎉 Citizen';
      const bytes = tokenizer.encode(text).flatMap((id) => [...tokenizer.tokenBytes(id)]);
      assert.equal(new TextDecoder().decode(Uint8Array.from(bytes)), text);
    });

    it('encodes <|endoftext|> as the eos id, which is 0', async () => {
      const tokenizer = await trained(kind);
      assert.equal(tokenizer.eosId, 0);
      const ids = tokenizer.encode('a<|endoftext|>b');
      assert.equal(ids.filter((id) => id === 0).length, 1);
      assert.equal(tokenizer.decode([0]), '<|endoftext|>');
    });

    it('encodes the same after a save and load of tokenizer.json', async () => {
      const tokenizer = await trained(kind);
      const loaded = loadTokenizer(JSON.parse(JSON.stringify(tokenizer.toJSON())));
      assert.equal(loaded.kind, kind);
      assert.equal(loaded.vocabSize, tokenizer.vocabSize);
      assert.equal(loaded.eosId, tokenizer.eosId);
      for (const text of [corpus, ...hardTexts]) assert.deepEqual(loaded.encode(text), tokenizer.encode(text));
      assert.deepEqual(loaded.toJSON(), tokenizer.toJSON());
    });
  });
}

describe('char tokenizer', () => {
  it('has one token per distinct character, in code point order after <|endoftext|>', async () => {
    const tokenizer = await trainTokenizer('char', ['hello', ' world']);
    // 8 distinct characters + <|endoftext|> + 256 byte-fallback tokens
    assert.equal(tokenizer.vocabSize, 1 + 8 + 256);
    assert.deepEqual(tokenizer.encode(' dehlorw'), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('writes an unseen character as its UTF-8 bytes', async () => {
    const tokenizer = await trainTokenizer('char', ['abc']);
    const ids = tokenizer.encode('a€');
    assert.equal(ids.length, 1 + 3);
    assert.deepEqual([...tokenizer.tokenBytes(ids[1]!), ...tokenizer.tokenBytes(ids[2]!), ...tokenizer.tokenBytes(ids[3]!)], [0xe2, 0x82, 0xac]);
  });

  it('without byte fallback maps unseen characters to <unk>', async () => {
    const tokenizer = await trainTokenizer('char', ['abc'], { byteFallback: false });
    assert.equal(tokenizer.vocabSize, 5);
    assert.equal(tokenizer.decode(tokenizer.encode('ab€c')), 'ab<unk>c');
    const loaded = loadTokenizer(tokenizer.toJSON());
    assert.deepEqual(loaded.encode('ab€c'), tokenizer.encode('ab€c'));
  });

  it('counts a character split across two pieces of the corpus once', async () => {
    const tokenizer = await trainTokenizer('char', ['ab', 'ba', '🎉']);
    assert.equal(tokenizer.vocabSize, 1 + 3 + 256);
  });
});

describe('bpe tokenizer', () => {
  it('learns merges: fewer tokens than bytes, up to the requested size', async () => {
    const words = ['lower', 'lowest', 'newer', 'wider', 'slowly', 'the', 'then', 'there'];
    const lines = Array.from({ length: 400 }, (_, i) => `${words[i % words.length]} ${words[(i * 7) % words.length]} ${i % 13}`);
    const text = lines.join('\n');
    const tokenizer = await trainTokenizer('bpe', [text], { vocabSize: 290 });
    assert.equal(tokenizer.vocabSize, 290);
    const ids = tokenizer.encode(text);
    const bytes = new TextEncoder().encode(text).length;
    assert.ok(ids.length < bytes / 2.5, `${ids.length} tokens for ${bytes} bytes`);
    assert.equal(tokenizer.decode(ids), text);
  });

  it('stops merging when no pair occurs twice', async () => {
    const tokenizer = await trainTokenizer('bpe', ['abcd'], { vocabSize: 1000 });
    assert.equal(tokenizer.vocabSize, 257);
  });

  it('is deterministic', async () => {
    const text = 'she sells sea shells by the sea shore '.repeat(20);
    const a = await trainTokenizer('bpe', [text], { vocabSize: 280 });
    const b = await trainTokenizer('bpe', [text.slice(0, 100), text.slice(100)], { vocabSize: 280 });
    assert.deepEqual(a.toJSON(), b.toJSON());
  });
});

describe('word tokenizer', () => {
  it('keeps the most frequent words up to the cap and maps the rest to <unk>', async () => {
    const text = 'the cat saw the dog and the cat ran';
    const tokenizer = await trainTokenizer('word', [text], { vocabSize: 4 });
    assert.equal(tokenizer.vocabSize, 4);
    // "the" at the start has no leading space; " the" (2x) and " cat" (2x) are the top words
    assert.equal(tokenizer.decode(tokenizer.encode('the cat the dog')), '<unk> cat the<unk>');
  });

  it('defaults to a 10,000 word cap', async () => {
    // " w0".." w9997" twice, the rest once: the cap keeps the 9,998 frequent words beside <|endoftext|> and <unk>
    const word = (i: number) => ' ' + [...i.toString(26).padStart(3, '0')].map((d) => String.fromCharCode(97 + parseInt(d, 26))).join('');
    const text = Array.from({ length: 12_000 }, (_, i) => (i < 9998 ? word(i) + word(i) : word(i))).join('');
    const tokenizer = await trainTokenizer('word', [text]);
    assert.equal(tokenizer.vocabSize, 10_000);
    assert.equal(tokenizer.decode(tokenizer.encode(word(1) + word(11_999))), `${word(1)}<unk>`);
  });

  it('gives back text whose words are all known, and loads from tokenizer.json', async () => {
    const tokenizer = await trainTokenizer('word', [corpus]);
    assert.equal(tokenizer.decode(tokenizer.encode(corpus)), corpus);
    const loaded = loadTokenizer(JSON.parse(JSON.stringify(tokenizer.toJSON())));
    assert.equal(loaded.kind, 'word');
    assert.deepEqual(loaded.encode(corpus), tokenizer.encode(corpus));
  });
});

describe('bpe encoding against a reference implementation', () => {
  // GPT-2's bpe(): repeatedly merge every occurrence of the lowest-ranked pair, on token strings.
  function referenceWord(symbols: string[], ranks: Map<string, number>): string[] {
    for (;;) {
      let best: string | undefined;
      for (let i = 0; i < symbols.length - 1; i++) {
        const pair = `${symbols[i]} ${symbols[i + 1]}`;
        if (ranks.has(pair) && (best === undefined || ranks.get(pair)! < ranks.get(best)!)) best = pair;
      }
      if (best === undefined) return symbols;
      const [left, right] = best.split(' ') as [string, string];
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else merged.push(symbols[i]!);
      }
      symbols = merged;
    }
  }

  it('gives the same ids for short and long words (the long ones take the heap path)', async () => {
    const text = '你好世界你好中国世界和平你好你好 aaaa abab aaab babababa zzzz '.repeat(30);
    const tokenizer = await trainTokenizer('bpe', [text], { vocabSize: 330 });
    const file = tokenizer.toJSON() as { model: { vocab: Record<string, number>; merges: string[] } };
    const ranks = new Map(file.model.merges.map((merge, rank) => [merge, rank]));
    const byteChar = new Map<number, string>();
    for (const [token, id] of Object.entries(file.model.vocab)) if (id >= 1 && id <= 256) byteChar.set(id - 1, token);
    const wordArbitrary = fc.array(fc.constantFrom('a', 'b', 'z', '你', '好', '世', '界', '中', '国'), { minLength: 1, maxLength: 120, size: 'max' }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(wordArbitrary, (word) => {
        const symbols = [...new TextEncoder().encode(word)].map((byte) => byteChar.get(byte)!);
        const expected = referenceWord(symbols, ranks).map((token) => file.model.vocab[token]);
        assert.deepEqual(tokenizer.encode(word), expected);
      }),
      { numRuns: 300 },
    );
  });
});
