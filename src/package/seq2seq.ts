/**
 * Greedy encoder-decoder generation (T5) over the two graphs of an Optimum-layout package
 * (src/package/io.ts `t5EncoderNames`, `t5DecoderNames`), against the narrow `Session` interface:
 * the encoder runs once per batch of sources, then the decoder advances every row one token per
 * run with both caches. Sources of different lengths share a batch, padded on either side: the
 * encoder's mask hides the padding from the encoder and from cross-attention, so a row's output
 * is what it would be alone. Every row starts from the pad token at the same step, so the
 * decoder's own positions line up and its self-attention needs no mask.
 */
import { FerryError } from '../errors.ts';
import { ATTENTION_MASK, ENCODER_ATTENTION_MASK, ENCODER_HIDDEN_STATES, INPUT_IDS, LAST_HIDDEN_STATE, LOGITS, pastSeq2Seq, presentSeq2Seq, t5DecoderNames, USE_CACHE_BRANCH } from './io.ts';
import { float32Output, logitsOf } from './decoder.ts';
import { float32, int64, type NamedTensors, type Session } from './session.ts';

export interface Seq2SeqSpec {
  vocabSize: number;
  decoderLayers: number;
  heads: number;
  headDim: number;
  /** The decoder's first input (T5: pad = 0). */
  startId: number;
  eosId: number;
  padId: number;
}

export interface Seq2SeqBatch {
  readonly rows: number;
  /** Decoder tokens consumed so far (the same for every row). */
  readonly length: number;
  /** The encoder's mask and states, and the past of every cache input, by input name. */
  readonly feeds: NamedTensors;
}

export interface Seq2SeqDecoder {
  readonly spec: Seq2SeqSpec;
  /** Runs the encoder over the sources (padded on `pad`'s side to the longest). */
  encode(sources: readonly (readonly number[])[], pad?: 'left' | 'right'): Promise<Seq2SeqBatch>;
  /**
   * Feeds one token per row; `logits` holds one row of vocabSize per batch row. The batch is
   * used up (a runtime in another thread may move its buffers): go on from the returned one.
   */
  step(batch: Seq2SeqBatch, tokens: readonly number[]): Promise<{ logits: Float32Array; batch: Seq2SeqBatch }>;
}

export function createSeq2SeqDecoder(encoder: Session, decoder: Session, spec: Seq2SeqSpec): Seq2SeqDecoder {
  const names = t5DecoderNames(spec.decoderLayers);
  const missing = names.inputs.filter((name) => !decoder.inputNames.includes(name));
  if (missing.length) {
    throw new FerryError('bad_model', `the decoder graph lacks the inputs ${missing.join(', ')} of an Optimum merged T5 decoder`, { hint: 're-export the package with `ferry export`' });
  }
  const { heads, headDim } = spec;
  const perLayer = (name: typeof pastSeq2Seq, cache: 'decoder' | 'encoder') => Array.from({ length: spec.decoderLayers }, (_, l) => [name(l, cache, 'key'), name(l, cache, 'value')]).flat();
  const encoderPast = new Set(perLayer(pastSeq2Seq, 'encoder'));
  const fetchAfterFirst = [LOGITS, ...perLayer(presentSeq2Seq, 'decoder')];
  // What a step passes on to the next as fed: the encoder's mask and states, and (after the
  // first step) the cross-attention caches.
  const kept = [ENCODER_ATTENTION_MASK, ENCODER_HIDDEN_STATES, ...encoderPast];
  return {
    spec,
    async encode(sources, pad = 'right') {
      const rows = sources.length;
      const longest = Math.max(1, ...sources.map((s) => s.length));
      const ids = new Array<number>(rows * longest).fill(spec.padId);
      const mask = new Array<number>(rows * longest).fill(0);
      sources.forEach((source, r) => {
        const offset = r * longest + (pad === 'left' ? longest - source.length : 0);
        source.forEach((id, t) => {
          ids[offset + t] = id;
          mask[offset + t] = 1;
        });
      });
      const encoderMask = int64([rows, longest], mask);
      const outputs = await encoder.run({ [INPUT_IDS]: int64([rows, longest], ids), [ATTENTION_MASK]: encoderMask }, { fetch: [LAST_HIDDEN_STATE] });
      const states = float32Output(outputs, LAST_HIDDEN_STATE);
      const feeds: NamedTensors = {
        [ENCODER_ATTENTION_MASK]: encoderMask,
        [ENCODER_HIDDEN_STATES]: float32([rows, longest, states.length / (rows * longest)], states),
      };
      // The first step's caches are empty: the graph computes the cross-attention K/V itself.
      for (const name of names.past) feeds[name] = float32([rows, heads, 0, headDim], new Float32Array(0));
      return { rows, length: 0, feeds };
    },
    async step(batch, tokens) {
      const first = batch.length === 0;
      const feeds: NamedTensors = {
        ...batch.feeds,
        [INPUT_IDS]: int64([batch.rows, 1], tokens),
        [USE_CACHE_BRANCH]: { dtype: 'bool', dims: [1], data: Uint8Array.of(first ? 0 : 1) },
      };
      // The cross-attention caches do not change after the first step (the graph returns them
      // empty from then on): later steps fetch the logits and the self-attention caches only, and
      // lend the encoder's tensors, which a runtime in another thread moves there and back
      // instead of copying; the old self-attention past is given up.
      const outputs = await decoder.run(feeds, { fetch: first ? undefined : fetchAfterFirst, giveUpFeeds: true, lendFeeds: kept });
      const next: NamedTensors = {};
      for (const name of kept) next[name] = outputs[name] ?? feeds[name]!;
      names.present.forEach((name, i) => {
        const past = names.past[i]!;
        if (!first && encoderPast.has(past)) return;
        const tensor = outputs[name];
        if (!tensor) throw new FerryError('bad_model', `the decoder graph returned no ${name}`, { status: 500 });
        next[past] = tensor;
      });
      return { logits: logitsOf(outputs, batch.rows, spec.vocabSize), batch: { rows: batch.rows, length: batch.length + 1, feeds: next } };
    },
  };
}

/**
 * Greedy outputs of every source: from the start token, the most likely token each step, until
 * eos (not included) or `maxTokens`.
 */
export async function greedySeq2Seq(decoder: Seq2SeqDecoder, sources: readonly (readonly number[])[], maxTokens: number, pad: 'left' | 'right' = 'right'): Promise<number[][]> {
  const { spec } = decoder;
  let batch = await decoder.encode(sources, pad);
  const outputs = sources.map((): number[] => []);
  const done = sources.map(() => false);
  let tokens = sources.map(() => spec.startId);
  for (let t = 0; t < maxTokens && done.includes(false); t++) {
    const step = await decoder.step(batch, tokens);
    batch = step.batch;
    tokens = tokens.map((_, r) => argmax(step.logits.subarray(r * spec.vocabSize, (r + 1) * spec.vocabSize)));
    tokens.forEach((token, r) => {
      if (done[r]) return;
      if (token === spec.eosId) done[r] = true;
      else outputs[r]!.push(token);
    });
  }
  return outputs;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
