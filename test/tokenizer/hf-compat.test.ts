import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenizerConfigJson, trainTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';

// The tokenizer of transformers.js, published on its own. It is what a browser or an edge
// function uses to run an exported ferry package, so our ids must be its ids.
const HF_PACKAGE = '@huggingface/tokenizers';
const hf = await import(HF_PACKAGE).catch(() => undefined);
const skip = hf ? false : `${HF_PACKAGE} is not installed (npm install --save-dev ${HF_PACKAGE} to run this check)`;

const corpus = [
  'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n',
  "MENENIUS:\nI tell you, friends, most charitable care\nHave the patricians of you. For your wants,\nYou'll famish, they'll say -- 12 times, 3:45.\n",
  '中文的段落没有空格，长词合并。\n',
].join('').repeat(20);

const texts = [
  'hello',
  'First Citizen:\nBefore we proceed any further, hear me speak.',
  "they'll   famish  \n\n\n  you're",
  '中文字符和标点。你好，世界！',
  'emoji 🎉🚀👩‍👩‍👧 🇫🇷',
  'control \u0000\u0001\u0007\b\t\n\v\f\r\u001b\u007f end',
  'the text <|endoftext|> has an end marker',
  'Zürich – naïve café “quotes”',
  '一个没有空格的很长的中文段落在预分词之后是一个词所以要走长词的合并路径'.repeat(3),
];

function check(tokenizer: Tokenizer): void {
  const theirs = new hf.Tokenizer(JSON.parse(JSON.stringify(tokenizer.toJSON())), tokenizerConfigJson(tokenizer));
  for (const text of [...texts, corpus.slice(0, 2000)]) {
    const ids = tokenizer.encode(text);
    assert.deepEqual(theirs.encode(text, { add_special_tokens: false }).ids, ids, `encoding ${JSON.stringify(text)}`);
    assert.equal(theirs.decode(ids, { skip_special_tokens: false }), tokenizer.decode(ids), `decoding ${JSON.stringify(text)}`);
  }
}

describe('transformers.js reads our tokenizer.json', { skip }, () => {
  it('char: same ids, same text (byte fallback included)', async () => check(await trainTokenizer('char', [corpus])));
  it('byte-level BPE: same ids, same text', async () => check(await trainTokenizer('bpe', [corpus], { vocabSize: 400 })));
  it('word: same ids, same text', async () => check(await trainTokenizer('word', [corpus], { vocabSize: 100 })));
});
