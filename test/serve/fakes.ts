// Deterministic stand-ins below the runtime boundary, so that batching, padding and scheduling
// can be checked exactly without an exported model.
import type { Decoder, SequenceState } from '../../src/package/decoder.ts';
import { withLentFeeds } from '../../src/package/ort-session.ts';
import type { NamedTensors, RunOptions, Session } from '../../src/package/session.ts';
import type { Tokens } from '../../src/serve/scheduler.ts';

/** Logits that depend on the whole history, so a sequence that sees a wrong token diverges. */
function historyLogits(history: readonly number[], vocab: number): Float32Array {
  const logits = new Float32Array(vocab);
  let h = 2166136261;
  for (const id of history) h = Math.imul(h ^ id, 16777619) >>> 0;
  for (let v = 0; v < vocab; v++) {
    h = Math.imul(h ^ (v + 1), 16777619) >>> 0;
    logits[v] = (h % 1000) / 100;
  }
  return logits;
}

export interface FakeDecoder extends Decoder {
  /** Sequences per step, and prompts per prefill, in order. */
  readonly batchSizes: number[];
  readonly prefillSizes: number[];
  /** Every call in order: `prefill 2` (prompts), `extend 16` (tokens), `step 3` (sequences), `release`. */
  readonly calls: string[];
  /** States extended but neither extended again, stepped nor released. */
  readonly held: number;
}

/** A decoder whose state is the token history; `stepMs` slows each step down. */
export function createFakeDecoder(options: { vocab: number; contextLength?: number | null; stepMs?: number; failAtStep?: number }): FakeDecoder {
  const batchSizes: number[] = [];
  type HistoryState = SequenceState & { history: readonly number[] };
  const state = (history: number[]): HistoryState => ({ length: history.length, history });
  const historyOf = (s: SequenceState) => (s as HistoryState).history;
  const delay = () => new Promise((resolve) => setTimeout(resolve, options.stepMs ?? 0));
  const calls: string[] = [];
  const held = new Set<SequenceState>();
  const prefixLogits = (history: readonly number[], from: number) => {
    const logits = new Float32Array((history.length - from) * options.vocab);
    for (let i = from; i < history.length; i++) logits.set(historyLogits(history.slice(0, i + 1), options.vocab), (i - from) * options.vocab);
    return logits;
  };
  return {
    vocabSize: options.vocab,
    contextLength: options.contextLength ?? null,
    batchSizes,
    prefillSizes: [] as number[],
    calls,
    get held() {
      return held.size;
    },
    async extend(before, tokens, last) {
      calls.push(`extend ${tokens.length}`);
      if (before) held.delete(before);
      await delay();
      const history = [...(before ? historyOf(before) : []), ...tokens];
      const next = state(history);
      if (!last) held.add(next);
      return { logits: prefixLogits(history, history.length - tokens.length), state: next };
    },
    release(s) {
      calls.push('release');
      held.delete(s);
    },
    async prefill(prompts) {
      calls.push(`prefill ${prompts.length}`);
      await delay();
      this.prefillSizes.push(prompts.length);
      return prompts.map((ids) => {
        const logits = new Float32Array(ids.length * options.vocab);
        ids.forEach((_, i) => logits.set(historyLogits(ids.slice(0, i + 1), options.vocab), i * options.vocab));
        return { logits, state: state([...ids]) };
      });
    },
    async step(batch) {
      calls.push(`step ${batch.length}`);
      for (const { state: s } of batch) held.delete(s);
      await delay();
      batchSizes.push(batch.length);
      if (options.failAtStep !== undefined && batchSizes.length === options.failAtStep) throw new Error('the accelerator fell over');
      const logits = new Float32Array(batch.length * options.vocab);
      const states = batch.map(({ state: s, token }, b) => {
        const history = [...historyOf(s), token];
        logits.set(historyLogits(history, options.vocab), b * options.vocab);
        return state(history);
      });
      return { logits, states };
    },
  };
}

/** Tokens are lowercase letters a.. plus multi-byte characters, one UTF-8 byte per token above 26. */
export function letterTokens(eosId?: number): Tokens & { vocabSize: number; encode(text: string): number[] } {
  const bytes = (id: number) => (id < 26 ? new Uint8Array([97 + id]) : new Uint8Array([id - 26 + 0x80]));
  return {
    vocabSize: 26 + 64,
    eosId,
    tokenBytes: bytes,
    decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => [...bytes(id)]))),
    encode: (text) => [...new TextEncoder().encode(text)].map((b) => (b >= 97 && b < 123 ? b - 97 : b - 0x80 + 26)),
  };
}

const LOWEST = -3.4028234663852886e38;

/**
 * A one-layer, two-head attention model written out in plain JS behind the Session interface,
 * with the I/O of an exported Transformer (docs/FORMATS.md). Keys, values and queries are
 * functions of (token, position id); scores of masked or future keys get the lowest float.
 */
export function createReferenceKvSession(vocab: number, heads = 2, headDim = 3, options: { newKeyValues?: boolean } = {}): Session {
  const vec = (seed: number, token: number, position: number, h: number) =>
    Array.from({ length: headDim }, (_, d) => Math.sin(seed * 1.7 + token * 0.37 + position * 0.11 + h * 0.5 + d * 0.9));
  return {
    provider: 'reference',
    inputNames: ['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value'],
    outputNames: ['logits', 'present.0.key', 'present.0.value', ...(options.newKeyValues ? ['new_key_values.0.key', 'new_key_values.0.value'] : [])],
    async run(feeds: NamedTensors, runOptions?: RunOptions) {
      const [B, T] = feeds.input_ids!.dims as [number, number];
      const ids = feeds.input_ids!.data as BigInt64Array;
      const mask = feeds.attention_mask!.data as BigInt64Array;
      const positions = feeds.position_ids!.data as BigInt64Array;
      const pastKey = feeds['past_key_values.0.key']!;
      const P = pastKey.dims[2]!;
      const total = P + T;
      const key = new Float32Array(B * heads * total * headDim);
      const value = new Float32Array(B * heads * total * headDim);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < heads; h++) {
          for (let j = 0; j < total; j++) {
            const at = ((b * heads + h) * total + j) * headDim;
            if (j < P) {
              const from = ((b * heads + h) * P + j) * headDim;
              key.set((pastKey.data as Float32Array).subarray(from, from + headDim), at);
              value.set((feeds['past_key_values.0.value']!.data as Float32Array).subarray(from, from + headDim), at);
            } else {
              const token = Number(ids[b * T + j - P]);
              const position = Number(positions[b * T + j - P]);
              key.set(vec(1, token, position, h), at);
              value.set(vec(2, token, position, h), at);
            }
          }
        }
      }
      const logits = new Float32Array(B * T * vocab);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const mixed: number[] = [];
          for (let h = 0; h < heads; h++) {
            const q = vec(3, Number(ids[b * T + t]), Number(positions[b * T + t]), h);
            const scores = Array.from({ length: total }, (_, j) => {
              if (j > P + t || mask[b * total + j] === 0n) return LOWEST;
              const at = ((b * heads + h) * total + j) * headDim;
              return q.reduce((sum, qd, d) => sum + qd * key[at + d]!, 0);
            });
            const max = Math.max(...scores);
            const weights = scores.map((s) => Math.exp(s - max));
            const sum = weights.reduce((a, w) => a + w, 0);
            for (let d = 0; d < headDim; d++) {
              mixed.push(weights.reduce((acc, w, j) => acc + (w / sum) * value[((b * heads + h) * total + j) * headDim + d]!, 0));
            }
          }
          for (let v = 0; v < vocab; v++) logits[(b * T + t) * vocab + v] = mixed.reduce((acc, m, i) => acc + m * Math.cos(v * 0.7 + i), 0);
        }
      }
      const outputs: NamedTensors = {
        logits: { dtype: 'float32', dims: [B, T, vocab], data: logits },
        'present.0.key': { dtype: 'float32', dims: [B, heads, total, headDim], data: key },
        'present.0.value': { dtype: 'float32', dims: [B, heads, total, headDim], data: value },
      };
      if (options.newKeyValues) {
        for (const part of ['key', 'value'] as const) {
          const present = part === 'key' ? key : value;
          const fresh = new Float32Array(B * heads * T * headDim);
          for (let r = 0; r < B * heads; r++) fresh.set(present.subarray((r * total + P) * headDim, (r + 1) * total * headDim), r * T * headDim);
          outputs[`new_key_values.0.${part}`] = { dtype: 'float32', dims: [B, heads, T, headDim], data: fresh };
        }
      }
      const fetched = runOptions?.fetch ? Object.fromEntries(runOptions.fetch.map((name) => [name, outputs[name]!])) : outputs;
      return withLentFeeds(fetched, feeds, runOptions);
    },
    release: async () => {},
  };
}

/** Prefills `prompt` alone, then steps through `tokens` one at a time: each step's logits, and the last state. */
export async function decodeAlone(decoder: Decoder, prompt: number[], tokens: number[]): Promise<{ rows: Float32Array[]; state: SequenceState }> {
  let { state } = (await decoder.prefill([prompt]))[0]!;
  const rows: Float32Array[] = [];
  for (const token of tokens) {
    const out = await decoder.step([{ state, token }]);
    state = out.states[0]!;
    rows.push(out.logits.slice());
  }
  return { rows, state };
}
