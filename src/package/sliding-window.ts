/**
 * Generation past a Transformer's context with a sliding window of the last `contextLength`
 * tokens (docs/FORMATS.md, "Past the context"). Two ways, chosen by the model's positions:
 *
 * - `roll` (RoPE, ALiBi): before a full sequence steps, its cache drops the oldest position and
 *   keeps the rest; nothing is recomputed. The graph ranks keys by cumsum(attention_mask), so the
 *   window's positions start at 0 again and every step sees positions 0..W-1, as in training.
 * - `reencode` (learned, sinusoidal: an absolute position table ends at W): a full sequence runs
 *   its last W tokens again as a fresh prompt every step, one prefill of W tokens per token
 *   generated, and its logits are exactly a fresh run of the model over that window.
 */
import type { Decoder, SequenceState } from './decoder.ts';

export type SlideMode = 'roll' | 'reencode';

/** How a package's model slides: relative positions roll, absolute ones re-encode. */
export function slideModeOf(model: Record<string, unknown>): SlideMode {
  return model.positional === 'rope' || model.positional === 'alibi' ? 'roll' : 'reencode';
}

/** A decoder that never stops at the context: `decoder` must have one (and `dropOldest` to roll). */
export function slidingWindow(decoder: Decoder, mode: SlideMode): Decoder {
  return mode === 'roll' ? rolling(decoder) : reencoding(decoder);
}

function rolling(decoder: Decoder): Decoder {
  const window = decoder.contextLength!;
  const dropOldest = decoder.dropOldest;
  if (!dropOldest) throw new Error('this decoder cannot drop cached positions');
  return {
    vocabSize: decoder.vocabSize,
    contextLength: window,
    slides: true,
    prefill: (prompts) => decoder.prefill(prompts),
    // A prompt fits the window (the scheduler refuses longer ones), so its parts never roll.
    extend: (state, tokens, last) => decoder.extend(state, tokens, last),
    release: (state) => decoder.release(state),
    step: (batch) => decoder.step(batch.map(({ state, token }) => ({ state: state.length >= window ? dropOldest(state) : state, token }))),
  };
}

interface WindowState extends SequenceState {
  readonly inner: SequenceState;
  /** The last tokens consumed, at most the window. */
  readonly tokens: readonly number[];
}

function reencoding(decoder: Decoder): Decoder {
  const window = decoder.contextLength!;
  const vocab = decoder.vocabSize;
  const wrap = (inner: SequenceState, tokens: readonly number[]): WindowState => ({ length: inner.length, inner, tokens: tokens.slice(-window) });
  return {
    vocabSize: vocab,
    contextLength: window,
    slides: true,
    async prefill(prompts) {
      const results = await decoder.prefill(prompts);
      return results.map(({ logits, state }, i) => ({ logits, state: wrap(state, prompts[i]!) }));
    },
    async extend(state, tokens, last) {
      const before = state as WindowState | null;
      const { logits, state: inner } = await decoder.extend(before?.inner ?? null, tokens, last);
      return { logits, state: wrap(inner, [...(before?.tokens ?? []), ...tokens]) };
    },
    release: (state) => decoder.release((state as WindowState).inner),
    async step(batch) {
      const entries = batch.map(({ state, token }) => ({ state: state as WindowState, token }));
      const full = entries.flatMap((entry, index) => (entry.state.length >= window ? [index] : []));
      const stepping = entries.flatMap((entry, index) => (entry.state.length >= window ? [] : [index]));
      const logits = new Float32Array(batch.length * vocab);
      const states = new Array<SequenceState>(batch.length);
      // Steps first: a prefill may drop what an earlier prefill left unstepped, never a stepped state.
      if (stepping.length) {
        const out = await decoder.step(stepping.map((index) => ({ state: entries[index]!.state.inner, token: entries[index]!.token })));
        stepping.forEach((index, row) => {
          logits.set(out.logits.subarray(row * vocab, (row + 1) * vocab), index * vocab);
          states[index] = wrap(out.states[row]!, [...entries[index]!.state.tokens, entries[index]!.token]);
        });
      }
      if (full.length) {
        const windows = full.map((index) => [...entries[index]!.state.tokens.slice(1 - window), entries[index]!.token]);
        const runs = await decoder.prefill(windows);
        full.forEach((index, row) => {
          const { logits: rows, state } = runs[row]!;
          logits.set(rows.subarray((window - 1) * vocab, window * vocab), index * vocab);
          states[index] = wrap(state, windows[row]!);
        });
      }
      return { logits, states };
    },
  };
}
