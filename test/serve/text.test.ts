import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopMatcher, TextAssembler, Utf8Stream } from '../../src/serve/text.ts';

const byteTokens = { tokenBytes: (id: number) => new Uint8Array([id]) };
const bytesOf = (text: string) => [...new TextEncoder().encode(text)];

test('a character split over byte tokens is emitted once, when its last byte arrives', () => {
  const stream = new Utf8Stream();
  const pieces = bytesOf('a€😀é').map((b) => stream.push(new Uint8Array([b])));
  assert.deepEqual(pieces, ['a', '', '', '€', '', '', '', '😀', '', 'é']);
  assert.equal(stream.end(), '');
});

test('an unfinished character at the end becomes U+FFFD', () => {
  const stream = new Utf8Stream();
  assert.equal(stream.push(new Uint8Array([0xe2, 0x82])), '');
  assert.equal(stream.end(), '\ufffd');
});

test('stop strings match across pushes and hold back only what could still start one', () => {
  const stop = new StopMatcher(['END', '\n\n']);
  assert.deepEqual(stop.push('abc E'), { text: 'abc ', stopped: false });
  assert.deepEqual(stop.push('N'), { text: '', stopped: false });
  assert.deepEqual(stop.push('X'), { text: 'ENX', stopped: false });
  assert.deepEqual(stop.push('x\n'), { text: 'x', stopped: false });
  assert.deepEqual(stop.push('\nmore'), { text: '', stopped: true });
  const tail = new StopMatcher(['END']);
  assert.deepEqual(tail.push('the E'), { text: 'the ', stopped: false });
  assert.equal(tail.end(), 'E');
});

test('TextAssembler streams multi-byte text split across tokens and stops inside a character run', () => {
  const text = new TextAssembler(byteTokens, ['€!']);
  const out = bytesOf('h€l€!ignored').map((b) => text.push(b).text);
  assert.equal(out.join(''), 'h€l');
  assert.ok(text.stopped);
  assert.ok(out.every((piece) => !piece.includes('\ufffd')));
});

test('TextAssembler releases each logprob entry with the chunk that completes its text', () => {
  const text = new TextAssembler(byteTokens, ['XY']);
  const entry = (token: string) => ({ token, logprob: -1, top: null });
  const d1 = text.push(0x61, entry('a'));
  const d2 = text.push(0x58, entry('X'));
  const d3 = text.push(0x62, entry('b'));
  const end = text.end();
  assert.deepEqual([d1.text, d2.text, d3.text, end.text], ['a', '', 'Xb', '']);
  assert.deepEqual(d1.logprobs.map((e) => [e.token, e.offset]), [['a', 0]]);
  assert.deepEqual(d2.logprobs, []);
  assert.deepEqual(d3.logprobs.map((e) => [e.token, e.offset]), [['X', 1], ['b', 2]]);
});

test('after a stop, only tokens that began before the cut keep their logprobs', () => {
  const text = new TextAssembler(byteTokens, ['XY']);
  const entry = (token: string) => ({ token, logprob: -1, top: null });
  const deltas = [0x61, 0x58, 0x59].map((b) => text.push(b, entry(String.fromCharCode(b))));
  assert.equal(deltas.map((d) => d.text).join(''), 'a');
  assert.deepEqual(deltas.flatMap((d) => d.logprobs.map((e) => e.token)), ['a']);
  assert.ok(text.stopped);
});

test('with a real byte-level BPE, text streamed token by token never shows half a character', async () => {
  const { trainTokenizer } = await import('../../src/tokenizer/index.ts');
  const tokenizer = await trainTokenizer('bpe', ['plain ascii words and more words'], { vocabSize: 280 });
  const text = 'naïve café — €5 😀 ok';
  const ids = tokenizer.encode(text);
  const split = ids.filter((id) => new TextDecoder('utf-8', { fatal: false }).decode(tokenizer.tokenBytes(id)).includes('\ufffd'));
  assert.ok(split.length > 0, 'some tokens hold part of a character');
  const assembler = new TextAssembler(tokenizer, []);
  const pieces = ids.map((id) => assembler.push(id).text);
  pieces.push(assembler.end().text);
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((piece) => !piece.includes('\ufffd')), JSON.stringify(pieces));
});
