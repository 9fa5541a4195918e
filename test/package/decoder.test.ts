import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecoder, type SequenceState } from '../../src/package/decoder.ts';
import { createReferenceKvSession, decodeAlone } from '../serve/fakes.ts';

const VOCAB = 11;
const kvState = { kind: 'kv' as const, layers: 1, heads: 2, headDim: 3 };

const runAlone = (prompt: number[], next: number[]) => decodeAlone(createDecoder(createReferenceKvSession(VOCAB), kvState, VOCAB, 64), prompt, next);

test('a KV step of one token gives the logits the whole sequence gives at that position', async () => {
  const decoder = createDecoder(createReferenceKvSession(VOCAB), kvState, VOCAB, 64);
  const full = (await decoder.prefill([[3, 1, 4, 1, 5]]))[0]!;
  const { rows } = await runAlone([3, 1, 4], [1, 5]);
  assert.deepEqual(rows[0], full.logits.slice(3 * VOCAB, 4 * VOCAB));
  assert.deepEqual(rows[1], full.logits.slice(4 * VOCAB, 5 * VOCAB));
  assert.equal(full.state.length, 5);
});

test('left-padded batches of different lengths give exactly the logits each sequence gets alone', async () => {
  const prompts = [[1], [2, 7, 1, 8, 2, 8], [9, 9, 9]];
  const steps = [[4, 2, 6], [0, 10, 3], [5, 5, 1]];
  const decoder = createDecoder(createReferenceKvSession(VOCAB), kvState, VOCAB, 64);
  let states: SequenceState[] = [];
  for (const p of prompts) states.push((await decoder.prefill([p]))[0]!.state);
  for (let s = 0; s < 3; s++) {
    const out = await decoder.step(states.map((state, b) => ({ state, token: steps[b]![s]! })));
    states = out.states;
    for (let b = 0; b < prompts.length; b++) {
      const alone = await runAlone(prompts[b]!, steps[b]!.slice(0, s + 1));
      assert.deepEqual(out.logits.slice(b * VOCAB, (b + 1) * VOCAB), alone.rows[s], `sequence ${b}, step ${s}`);
      assert.equal(states[b]!.length, prompts[b]!.length + s + 1);
    }
  }
});

test('prompts of different lengths prefilled together give what each gives alone, and decode on', async () => {
  const prompts = [[4], [2, 7, 1, 8, 2], [9, 0, 9]];
  const decoder = createDecoder(createReferenceKvSession(VOCAB), kvState, VOCAB, 64);
  const together = await decoder.prefill(prompts);
  for (const [r, prompt] of prompts.entries()) {
    const alone = (await decoder.prefill([prompt]))[0]!;
    assert.deepEqual(together[r]!.logits, alone.logits, `prompt ${r}`);
    assert.equal(together[r]!.state.length, prompt.length);
  }
  const stepped = await decoder.step(together.map((t, r) => ({ state: t.state, token: r + 1 })));
  for (const [r, prompt] of prompts.entries()) {
    const { rows } = await runAlone(prompt, [r + 1]);
    assert.deepEqual(stepped.logits.slice(r * VOCAB, (r + 1) * VOCAB), rows[0], `step after prompt ${r}`);
  }
});

test('a steady batch feeds the present outputs back without copying; a changed batch is regathered', async () => {
  const session = createReferenceKvSession(VOCAB);
  const fed: Float32Array[] = [];
  const produced: Float32Array[] = [];
  const recording = {
    ...session,
    async run(feeds: Parameters<typeof session.run>[0]) {
      fed.push(feeds['past_key_values.0.key']!.data as Float32Array);
      const outputs = await session.run(feeds);
      produced.push(outputs['present.0.key']!.data as Float32Array);
      return outputs;
    },
  };
  const decoder = createDecoder(recording, kvState, VOCAB, 64);
  const [a, b] = (await decoder.prefill([[1, 2], [3]])).map((r) => r.state) as [SequenceState, SequenceState];
  const first = await decoder.step([{ state: a, token: 4 }, { state: b, token: 5 }]);
  const second = await decoder.step(first.states.map((state, i) => ({ state, token: 6 + i })));
  assert.equal(fed.at(-1), produced.at(-2), 'the same rows in the same order reuse the last present tensor');
  const leaving = await decoder.step([{ state: second.states[1]!, token: 1 }]);
  assert.notEqual(fed.at(-1), produced.at(-2), 'a row that left forces a gather');
  const alone = await runAlone([3], [5, 7, 1]);
  assert.deepEqual(leaving.logits, alone.rows[2]);
});

test('createDecoder refuses a session that lacks the state inputs its manifest promises', () => {
  const session = { ...createReferenceKvSession(VOCAB), inputNames: ['input_ids'] };
  assert.throws(() => createDecoder(session, kvState, VOCAB, 64), /lacks the inputs attention_mask, position_ids, past_key_values\.0\.key, past_key_values\.0\.value/);
});
