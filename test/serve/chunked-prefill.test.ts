/**
 * Chunked prefill over exported models: a prompt fed in parts gives the logits of a one-shot
 * prefill (every row), through the slab and concat Transformer decoders with each kind of
 * position and through the LSTM; and the server's scheduler, admitting it part by part while a
 * stream runs, gives both requests the greedy text each gets alone.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { exportModel } from '../../src/export/index.ts';
import { createDecoder, type Decoder, type SequenceState } from '../../src/package/decoder.ts';
import type { Session } from '../../src/package/session.ts';
import { slideModeOf } from '../../src/package/sliding-window.ts';
import { openModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { GREEDY } from '../../src/serve/sampling.ts';
import type { GenerationEvent, GenerationRequest } from '../../src/serve/scheduler.ts';
import { makeCheckpoint, tempDir, TINY_LSTM, TINY_TRANSFORMER } from '../export/fixtures.ts';

const CONTEXT = 24;
const PROMPT = Array.from({ length: 21 }, (_, i) => (i * 7 + 3) % 20);
const runtime = await openRuntime('cpu', () => {}, { worker: false });
const sessions: Session[] = [];
after(() => Promise.all(sessions.map((s) => s.release())));

async function exported(shape: object): Promise<{ dir: string; modelPath: string; manifest: { state: Parameters<typeof createDecoder>[1]; model: Record<string, unknown>; contextLength: number | null } }> {
  const { dir } = await makeCheckpoint(shape as typeof TINY_TRANSFORMER, { weightScale: 4, seed: 3 });
  const outDir = path.join(await tempDir(), 'pkg');
  await exportModel({ source: dir, outDir, verify: false });
  return { dir: outDir, modelPath: path.join(outDir, 'onnx/model.onnx'), manifest: JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8')) };
}

/** The prompt in parts of `size`, a step of another sequence between every two (so held parts must survive steps). */
async function chunked(decoder: Decoder, size: number): Promise<Float32Array> {
  const [other] = await decoder.prefill([[1, 2, 3]]);
  let otherState = other!.state;
  let state: SequenceState | null = null;
  const rows: Float32Array[] = [];
  for (let done = 0; done < PROMPT.length; done += size) {
    const part = PROMPT.slice(done, done + size);
    const fed = await decoder.extend(state, part, done + size >= PROMPT.length);
    state = fed.state;
    rows.push(fed.logits.slice());
    if (done + size < PROMPT.length) otherState = (await decoder.step([{ state: otherState, token: 4 }])).states[0]!;
  }
  return Float32Array.from(rows.flatMap((r) => [...r]));
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i]!)), 0);

const cases = [
  ['LSTM', TINY_LSTM],
  ...(['learned', 'sinusoidal', 'rope', 'alibi'] as const).map((positional) => [`Transformer, ${positional} positions`, { ...TINY_TRANSFORMER, blockSize: CONTEXT, positional }] as const),
] as const;

for (const [label, shape] of cases) {
  test(`${label}: a prompt fed in parts gives the one-shot prefill's logits, and the scheduler's greedy texts are unchanged`, async () => {
    const { dir, modelPath, manifest } = await exported(shape);
    const vocab = (manifest.model.vocabSize as number);
    for (const ownCache of manifest.contextLength === null ? [false] : [true, false]) {
      const session = await runtime.createSession(modelPath, {});
      sessions.push(session);
      const decoder = createDecoder(session, manifest.state, vocab, manifest.contextLength, { ownCache, slide: slideModeOf(manifest.model) });
      const [whole] = await decoder.prefill([PROMPT]);
      const expected = whole!.logits.slice();
      for (const size of [1, 5, 20]) {
        const diff = maxAbsDiff(await chunked(decoder, size), expected);
        assert.ok(diff < 1e-4, `${label}, ownCache ${ownCache}, parts of ${size}: ${diff}`);
      }
    }

    const stream = (over: Partial<GenerationRequest>): GenerationRequest => ({
      prompt: [1, 2, 3], promptText: '', n: 1, maxTokens: 2, sampling: GREEDY, stop: [], logprobs: null, echo: false, ignoreEos: true, ...over,
    });
    // 21 + 8 tokens: both choices go past the context of 24 in the sliding window afterwards.
    const long = stream({ prompt: PROMPT, n: 2, maxTokens: 8 });
    const texts = async (prefillChunk: number, together: boolean) => {
      const model = await openModel(dir, { runtime, maxBatch: 4, maxQueue: 4, prefillChunk });
      try {
        const running = model.scheduler.submit(stream({ maxTokens: 12 }));
        const iterator = running[Symbol.asyncIterator]();
        const first = await iterator.next();
        const rest = together ? gather(model.scheduler.submit(long)) : Promise.resolve('');
        return [(first.value as GenerationEvent & { text: string }).text + await gather({ [Symbol.asyncIterator]: () => iterator }), await rest];
      } finally {
        await model.close();
      }
    };
    const [alone] = await texts(1000, false);
    const oneShot = await texts(1000, true);
    const inParts = await texts(4, true);
    assert.equal(oneShot[0], alone);
    assert.deepEqual(inParts, oneShot, `${label}: the running stream and the chunked request (both choices) keep their greedy text`);
  });
}

async function gather(events: AsyncIterable<GenerationEvent>): Promise<string> {
  let text = '';
  for await (const event of events) if (event.type === 'text') text += `${event.index}:${event.text}|`;
  return text;
}
