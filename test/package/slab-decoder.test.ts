import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecoder, type Decoder, type SequenceState } from '../../src/package/decoder.ts';
import { FerryError } from '../../src/errors.ts';
import { bufferOf, type NamedTensors, type RunOptions, type Session } from '../../src/package/session.ts';
import { createReferenceKvSession, decodeAlone } from '../serve/fakes.ts';

// The slab decoder (own KV cache, new K/V fetched) against the concat decoder (the graph's
// present fed back), both over the same exact reference attention: every logit must be equal.
const VOCAB = 11;
const CONTEXT = 40;
const kvState = { kind: 'kv' as const, layers: 1, heads: 2, headDim: 3 };

interface Recorded {
  pastRows: number[];
  /** The past length fed to each run. */
  pastSpans: number[];
  pastBuffers: ArrayBufferLike[];
  /** Whether the key and value pasts of a run are views of one buffer. */
  oneBuffer: boolean[];
  fetched: (readonly string[] | undefined)[];
}

function slabDecoder(session: Session = createReferenceKvSession(VOCAB, 2, 3, { newKeyValues: true })): { decoder: Decoder; recorded: Recorded } {
  const recorded: Recorded = { pastRows: [], pastSpans: [], pastBuffers: [], oneBuffer: [], fetched: [] };
  const recording: Session = {
    ...session,
    run(feeds: NamedTensors, options?: RunOptions) {
      const past = feeds['past_key_values.0.key']!;
      recorded.pastRows.push(past.dims[0]!);
      recorded.pastSpans.push(past.dims[2]!);
      recorded.pastBuffers.push(bufferOf(past)!);
      recorded.oneBuffer.push(bufferOf(past) === bufferOf(feeds['past_key_values.0.value']!));
      recorded.fetched.push(options?.fetch);
      return session.run(feeds, options);
    },
  };
  return { decoder: createDecoder(recording, kvState, VOCAB, CONTEXT, { ownCache: true }), recorded };
}

const concatDecoder = () => createDecoder(createReferenceKvSession(VOCAB, 2, 3, { newKeyValues: true }), kvState, VOCAB, CONTEXT);

const alone = async (prompt: number[], tokens: number[]): Promise<Float32Array[]> => (await decodeAlone(concatDecoder(), prompt, tokens)).rows;

test('the slab decoder is chosen only with ownCache and new_key_values outputs, and fetches just those', async () => {
  const { decoder, recorded } = slabDecoder();
  const [a] = await decoder.prefill([[1, 2, 3]]);
  await decoder.step([{ state: a!.state, token: 4 }]);
  assert.deepEqual(recorded.fetched.at(-1), ['logits', 'new_key_values.0.key', 'new_key_values.0.value']);
  assert.equal(recorded.pastRows.at(-1), 1);

  const plain: Recorded = { pastRows: [], pastSpans: [], pastBuffers: [], oneBuffer: [], fetched: [] };
  const session = createReferenceKvSession(VOCAB);
  const withoutFresh = createDecoder({ ...session, run: (f, o) => (plain.fetched.push(o?.fetch), session.run(f, o)) }, kvState, VOCAB, CONTEXT, { ownCache: true });
  const [b] = await withoutFresh.prefill([[1, 2, 3]]);
  await withoutFresh.step([{ state: b!.state, token: 4 }]);
  assert.deepEqual(plain.fetched, [undefined, undefined], 'a graph without new_key_values keeps the concat decoder');
});

test('sequences joining, leaving and reordering give exactly the logits each gets alone', async () => {
  const { decoder, recorded } = slabDecoder();
  const prompts = [[1], [2, 7, 1, 8, 2, 8], [9, 9, 9], [4, 5]];
  const tokens = [[4, 2, 6, 1, 3], [0, 10, 3, 3, 3], [5, 5, 1, 2, 7], [6, 6, 6, 6, 6]];
  const expected = await Promise.all(prompts.map((p, i) => alone(p, tokens[i]!)));
  const states = new Map<number, SequenceState>();
  const used = new Map<number, number>();
  // Step s runs these sequences in this order: joins (1, 2, then 3), reorders, and leaves (0, then 2).
  const schedule = [[0], [0, 1], [1, 0, 2], [2, 1, 0, 3], [3, 1, 2], [1, 3]];
  for (const members of schedule) {
    const joining = members.filter((m) => !states.has(m));
    if (joining.length) {
      const prefilled = await decoder.prefill(joining.map((m) => prompts[m]!));
      joining.forEach((m, i) => states.set(m, prefilled[i]!.state));
    }
    const out = await decoder.step(members.map((m) => ({ state: states.get(m)!, token: tokens[m]![used.get(m) ?? 0]! })));
    members.forEach((m, b) => {
      const step = used.get(m) ?? 0;
      assert.deepEqual(out.logits.slice(b * VOCAB, (b + 1) * VOCAB), expected[m]![step], `sequence ${m}, its step ${step}`);
      assert.equal(out.states[b]!.length, prompts[m]!.length + step + 1);
      states.set(m, out.states[b]!);
      used.set(m, step + 1);
    });
    assert.equal(recorded.pastRows.at(-1), members.length, 'the past fed is exactly the batch\'s rows');
  }
});

test('the past fed is the longest row rounded up to 16 positions; rows keep their cache as it grows and shrinks', async () => {
  const { decoder, recorded } = slabDecoder();
  const prompts = [[1, 2], [5, 6, 7, 8, 9], Array.from({ length: 20 }, (_, i) => (i * 3) % VOCAB)];
  const tokens = [[4, 2, 6, 1, 3, 5, 0, 9, 8, 7], [1, 1, 2, 3, 5, 8, 2, 10, 7, 5], [3, 3, 1, 0]];
  const expected = await Promise.all(prompts.map((p, i) => alone(p, tokens[i]!)));
  const states: SequenceState[] = (await decoder.prefill(prompts.slice(0, 2))).map((p) => p.state);
  const spans: number[] = [];
  for (let s = 0; s < 10; s++) {
    // The long prompt joins at step 3 (its prefill widens the slab under the two short rows) and leaves after 4 steps.
    if (s === 3) states.push((await decoder.prefill([prompts[2]!]))[0]!.state);
    if (s === 7) states.pop();
    const out = await decoder.step(states.map((state, m) => ({ state, token: tokens[m]![m === 2 ? s - 3 : s]! })));
    spans.push(recorded.pastSpans.at(-1)!);
    states.forEach((_, m) => {
      assert.deepEqual(out.logits.slice(m * VOCAB, (m + 1) * VOCAB), expected[m]![m === 2 ? s - 3 : s], `sequence ${m}, step ${s}`);
      states[m] = out.states[m]!;
    });
  }
  assert.deepEqual(spans, [16, 16, 16, 32, 32, 32, 32, 16, 16, 16]);

  // Two rows crossing 16 positions together, then one prompt up to the context.
  const pair = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9], [2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4, 5, 9, 0]];
  const pairTokens = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]];
  const pairExpected = await Promise.all(pair.map((p, i) => alone(p, pairTokens[i]!)));
  let pairStates = (await decoder.prefill(pair)).map((p) => p.state);
  for (let s = 0; s < 5; s++) {
    const out = await decoder.step(pairStates.map((state, m) => ({ state, token: pairTokens[m]![s]! })));
    for (let m = 0; m < 2; m++) assert.deepEqual(out.logits.slice(m * VOCAB, (m + 1) * VOCAB), pairExpected[m]![s], `pair ${m}, step ${s}`);
    pairStates = out.states;
  }
  assert.deepEqual(recorded.pastSpans.slice(-5), [16, 16, 32, 32, 32]);
  const full = (await decoder.prefill([Array.from({ length: CONTEXT - 1 }, (_, i) => i % VOCAB)]))[0]!.state;
  await decoder.step([{ state: full, token: 1 }]);
  assert.equal(recorded.pastSpans.at(-1), CONTEXT);
});

test('a steady batch feeds the same buffer every step: the cache is never copied out and back', async () => {
  const { decoder, recorded } = slabDecoder();
  let states = (await decoder.prefill([[1, 2], [3]])).map((p) => p.state);
  for (let i = 0; i < 4; i++) states = (await decoder.step(states.map((state, b) => ({ state, token: i + b })))).states;
  const steps = recorded.pastBuffers.slice(1);
  assert.equal(new Set(steps).size, 1, 'one slab buffer for all steps');
  assert.deepEqual(recorded.oneBuffer.slice(1), steps.map(() => true), 'every cache input is a view of that buffer');
});

test('the n choices of one prompt share its prefill: the first takes the row, the others get copies', async () => {
  const { decoder } = slabDecoder();
  const [shared] = await decoder.prefill([[3, 1, 4]]);
  const expected = await Promise.all([[5, 9], [2, 6], [5, 3]].map((t) => alone([3, 1, 4], t)));
  let states = [shared!.state, shared!.state, shared!.state];
  const tokens = [[5, 9], [2, 6], [5, 3]];
  for (let s = 0; s < 2; s++) {
    const out = await decoder.step(states.map((state, b) => ({ state, token: tokens[b]![s]! })));
    for (let b = 0; b < 3; b++) assert.deepEqual(out.logits.slice(b * VOCAB, (b + 1) * VOCAB), expected[b]![s], `choice ${b}, step ${s}`);
    states = out.states;
  }
});

test('a state the last step did not advance is dropped, and using it is an error, not wrong logits', async () => {
  const { decoder } = slabDecoder();
  const [a, b] = await decoder.prefill([[1, 2], [3, 4]]);
  await decoder.step([{ state: a!.state, token: 5 }]);
  await assert.rejects(decoder.step([{ state: b!.state, token: 6 }]), /used after its cache was dropped/);
});

test('a prefill drops the previous prefill\'s unstepped rows, so admitting without steps does not grow the slab', async () => {
  const { decoder, recorded } = slabDecoder();
  for (let i = 0; i < 20; i++) await decoder.prefill([[1, 2, 3], [4]]);
  const [last] = await decoder.prefill([[7, 7]]);
  const out = await decoder.step([{ state: last!.state, token: 1 }]);
  assert.deepEqual(out.logits, (await alone([7, 7], [1]))[0]);
  // The slab's one buffer holds, for each of the two cache inputs, rows x heads x context x
  // headDim floats: a handful of rows, not 41.
  const rows = (recorded.pastBuffers.at(-1) as ArrayBuffer).byteLength / 4 / (2 * 2 * CONTEXT * 3);
  assert.ok(rows <= 4, `slab of ${rows} rows`);
});

test('a sequence at the context length is refused with a FerryError', async () => {
  const { decoder } = slabDecoder();
  let { state } = (await decoder.prefill([Array.from({ length: CONTEXT - 1 }, (_, i) => i % VOCAB)]))[0]!;
  state = (await decoder.step([{ state, token: 1 }])).states[0]!;
  assert.equal(state.length, CONTEXT);
  await assert.rejects(decoder.step([{ state, token: 2 }]), (e: unknown) => e instanceof FerryError && e.code === 'context_length_exceeded');
});

test('a failed run loses no later work: the next prefill and steps decode correctly', async () => {
  const session = createReferenceKvSession(VOCAB, 2, 3, { newKeyValues: true });
  let fail = false;
  const flaky: Session = {
    ...session,
    run(feeds, options) {
      if (fail) {
        // As a worker that died mid-run would leave them: the lent buffers never come back.
        for (const name of options?.lendFeeds ?? []) structuredClone(bufferOf(feeds[name]!), { transfer: [bufferOf(feeds[name]!)!] });
        return Promise.reject(new Error('boom'));
      }
      return session.run(feeds, options);
    },
  };
  const decoder = createDecoder(flaky, kvState, VOCAB, CONTEXT, { ownCache: true });
  const [a] = await decoder.prefill([[1, 2, 3]]);
  fail = true;
  await assert.rejects(decoder.step([{ state: a!.state, token: 4 }]), /boom/);
  fail = false;
  await assert.rejects(decoder.step([{ state: a!.state, token: 4 }]), /dropped/);
  const [b] = await decoder.prefill([[1, 2, 3]]);
  const out = await decoder.step([{ state: b!.state, token: 4 }]);
  assert.deepEqual(out.logits, (await alone([1, 2, 3], [4]))[0]);
});

test('a held prompt part keeps its row through steps that need the rows below, and continues exactly', async () => {
  const { decoder } = slabDecoder();
  const long = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
  // The held part takes row 0; the two prompts after it step in rows 0 and 1, so it must move above them.
  const part = await decoder.extend(null, long.slice(0, 4), false);
  const [a, b] = await decoder.prefill([[7, 8], [2, 2, 2]]);
  let states = (await decoder.step([{ state: a!.state, token: 1 }, { state: b!.state, token: 2 }])).states;
  states = (await decoder.step([{ state: states[0]!, token: 3 }, { state: states[1]!, token: 4 }])).states;
  const rest = await decoder.extend(part.state, long.slice(4), true);
  const out = await decoder.step([...states.map((state, i) => ({ state, token: 5 + i })), { state: rest.state, token: 0 }]);
  const wholeDecoder = slabDecoder().decoder;
  const [whole] = await wholeDecoder.prefill([long]);
  assert.deepEqual(Float32Array.from([...part.logits, ...rest.logits]), whole!.logits, 'the parts give the one-shot logits');
  const expected = [await decodeAlone(slabDecoder().decoder, [7, 8], [1, 3, 5]), await decodeAlone(slabDecoder().decoder, [2, 2, 2], [2, 4, 6]), await decodeAlone(slabDecoder().decoder, long, [0])];
  expected.forEach((alone, i) => assert.deepEqual(out.logits.slice(i * VOCAB, (i + 1) * VOCAB), alone.rows.at(-1), `sequence ${i}`));
  decoder.release(rest.state);
});

test('a released held part is dropped: extending it is an error', async () => {
  const { decoder } = slabDecoder();
  const part = await decoder.extend(null, [1, 2, 3], false);
  decoder.release(part.state);
  await assert.rejects(decoder.extend(part.state, [4], true), /held prompt/);
});
