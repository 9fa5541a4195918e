import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { textInSafePieces, trainTokenizer } from '../../src/tokenizer/index.ts';

const corpus = "It's the end, isn't it? 12 ships\n\n  sail\tat 3:45 -- 'twas ‘so’ 你好 🎉\r\n".repeat(10);

// Text from parts that the GPT-2 pattern treats differently: spaces of every kind, contractions,
// punctuation runs, digits, letters, multi-byte characters and the end-of-text marker.
const textArbitrary = fc
  .array(fc.constantFrom(' ', '  ', '\n', '\n\n', '\t', '\u00a0', "'s", "'", 'll', 'the', 'It', '12', '3', ',', '?!', '--', '你好', '🎉', '<|endoftext|>', 'x'), { maxLength: 60, size: 'max' })
  .map((parts) => parts.join(''));

function cutAt(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let last = 0;
  for (const point of points) {
    pieces.push(text.slice(last, point));
    last = point;
  }
  pieces.push(text.slice(last));
  return pieces;
}

async function collect(texts: string[], maxCarry?: number): Promise<string[]> {
  const pieces: string[] = [];
  for await (const piece of textInSafePieces(texts, maxCarry)) pieces.push(piece);
  return pieces;
}

describe('textInSafePieces', () => {
  it('re-cuts a stream so that encoding piece by piece equals encoding the whole text', async () => {
    const tokenizers = [await trainTokenizer('bpe', [corpus], { vocabSize: 300 }), await trainTokenizer('word', [corpus])];
    await fc.assert(
      fc.asyncProperty(textArbitrary, fc.array(fc.nat(), { maxLength: 8, size: 'max' }), async (text, cuts) => {
        // Cuts that would split a surrogate pair cannot come from a decoded file.
        const incoming = cutAt(text, cuts).filter((piece) => piece !== '');
        if (incoming.some((piece) => /[\ud800-\udbff]$/.test(piece))) return;
        const pieces = await collect(incoming);
        assert.equal(pieces.join(''), text);
        for (const tokenizer of tokenizers) assert.deepEqual(pieces.flatMap((piece) => tokenizer.encode(piece)), tokenizer.encode(text));
      }),
      { numRuns: 300 },
    );
  });

  it('cuts a text without whitespace once it is longer than maxCarry, never inside a surrogate pair', async () => {
    assert.deepEqual(await collect(['abc', 'de'], 2), ['abc', 'de']);
    // 🎉 is \ud83c\udf89: the incoming pieces split it, the output does not.
    assert.deepEqual(await collect(['ab\ud83c', '\udf89cd'], 2), ['ab', '🎉cd']);
  });

  it('trains the same tokenizer from a stream cut anywhere', async () => {
    const whole = await trainTokenizer('bpe', [corpus], { vocabSize: 300 });
    const pieces = cutAt(corpus, [5, 17, 100, 333, 334, 700]);
    const streamed = await trainTokenizer('bpe', (async function* () { yield* pieces; })(), { vocabSize: 300 });
    assert.deepEqual(streamed.toJSON(), whole.toJSON());
  });
});
