import { FerryError } from '../errors.ts';
import { ATTENTION_MASK, graphKeepsOwnCache, INPUT_IDS, LOGITS, lstmNames, POSITION_IDS, transformerNames } from './io.ts';
import type { StateSpec } from './manifest.ts';
import { namesOfState } from './state.ts';
import { float32, int64, type NamedTensors, type Session } from './session.ts';
import { slidingWindow, type SlideMode } from './sliding-window.ts';
import { createSlabKvDecoder } from './slab-decoder.ts';

/**
 * A language model as the scheduler sees it: a prompt goes in whole (or in parts, `extend`),
 * then every active sequence advances one token per step in one batched run. A prefilled prompt
 * can be shared by the `n` choices of one request. A state lives as long as steps advance it: a
 * step may drop what the states it does not advance hold, and a prefill what the unstepped states
 * of earlier prefills and last parts hold (the scheduler steps every live sequence every time,
 * and prefills new prompts before it extends long ones, so nothing it keeps is dropped). A state
 * of a prompt's part before the last is held: nothing drops it until it is extended or released.
 */
export interface Decoder {
  readonly vocabSize: number;
  /** Longest sequence (prompt + output) the model can see; null when unbounded (LSTM). */
  readonly contextLength: number | null;
  /** Runs prompts, batched where the model allows; each `logits` holds one row per prompt token. */
  prefill(prompts: readonly (readonly number[])[]): Promise<{ logits: Float32Array; state: SequenceState }[]>;
  /**
   * Chunked prefill: feeds the next part of one prompt after `state` (null for its first part),
   * positions continuing; `logits` holds one row per token of the part. Unless `last`, the state
   * returned is held (see above); the last part's state lives like a prefill's.
   */
  extend(state: SequenceState | null, tokens: readonly number[], last: boolean): Promise<{ logits: Float32Array; state: SequenceState }>;
  /** Gives up a held state (a prompt cancelled between its parts). */
  release(state: SequenceState): void;
  /** Feeds one token to each sequence; `logits` holds one row per sequence. */
  step(batch: readonly { state: SequenceState; token: number }[]): Promise<{ logits: Float32Array; states: SequenceState[] }>;
  /** Whether sequences go on past the context in a sliding window (src/package/sliding-window.ts). */
  readonly slides?: boolean;
  /** Transformer caches: the same sequence without its oldest position (its cache is taken over). */
  dropOldest?(state: SequenceState): SequenceState;
}

/** Opaque to everyone but the decoder that made it. */
export interface SequenceState {
  /** Tokens consumed so far. */
  readonly length: number;
}

/**
 * The state tensors of one run, shared by the sequences that ran in it: a sequence is a row of
 * a block. When the next step runs the same sequences in the same order, the block's outputs are
 * fed back as they are and the block is spent (its buffers may move to the runtime's thread);
 * only when sequences join or leave are rows gathered into a new batch.
 */
interface Block {
  /** One tensor per state input, in `stateInputs` order: [rows, ...] with rows first. */
  readonly tensors: readonly Float32Array[];
  readonly rows: number;
  /** KV only: the padded past length of every row. */
  readonly past: number;
  spent?: boolean;
}

interface BlockState extends SequenceState {
  readonly block: Block;
  readonly row: number;
}

export interface DecoderOptions {
  /**
   * Keep a Transformer's KV cache on this side and fetch only the new K/V each step, when the
   * graph offers them (`graphKeepsOwnCache`): the cache is then never copied out of the runtime.
   * Off where the runtime keeps the cache better itself (WebGPU buffers in the browser).
   */
  ownCache?: boolean;
  /** Go on past the context (Transformers): roll the cache or re-encode the window. */
  slide?: SlideMode;
}

/**
 * Whether a Transformer graph with these outputs gets the slab decoder under `ownCache`: it
 * keeps the KV cache itself and fetches the logits and this step's K/V only.
 */
export function keepsCacheItself(contextLength: number | null, outputNames: readonly string[]): boolean {
  return contextLength !== null && graphKeepsOwnCache(outputNames);
}

export function createDecoder(session: Session, state: StateSpec, vocabSize: number, contextLength: number | null, options: DecoderOptions = {}): Decoder {
  const missing = namesOfState(state).inputs.filter((name) => !session.inputNames.includes(name));
  if (missing.length) {
    throw new FerryError('bad_model', `the ONNX model lacks the inputs ${missing.join(', ')} that its ferry.json promises`, {
      hint: 're-export the package with `ferry export`',
    });
  }
  if (state.kind === 'lstm') return createLstmDecoder(session, state.layers, state.hiddenSize, vocabSize);
  // keepsCacheItself holds only with a context length.
  const decoder = options.ownCache && keepsCacheItself(contextLength, session.outputNames)
    ? createSlabKvDecoder(session, state.layers, state.heads, state.headDim, vocabSize, contextLength!)
    : createKvDecoder(session, state.layers, state.heads, state.headDim, vocabSize, contextLength);
  return options.slide && contextLength !== null ? slidingWindow(decoder, options.slide) : decoder;
}

export function logitsOf(outputs: NamedTensors, rows: number, vocabSize: number): Float32Array {
  const logits = outputs[LOGITS];
  if (!logits || logits.dtype !== 'float32' || logits.data.length !== rows * vocabSize) {
    throw new FerryError('bad_model', `the model returned logits of shape [${logits?.dims.join(', ')}], expected ${rows} rows of ${vocabSize}`, {
      status: 500,
    });
  }
  return logits.data as Float32Array;
}

export function float32Output(outputs: NamedTensors, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor || tensor.dtype !== 'float32') throw new FerryError('bad_model', `the model returned no float32 output ${name}`, { status: 500 });
  return tensor.data as Float32Array;
}

/**
 * The past of a first run: empty, except for graphs that read the past apart from the new tokens
 * (those that keep a server cache), on which ORT's WebGPU EP crashes when it is empty; they get one
 * position, zero and masked, which then rides along as padding.
 */
export function firstPast(session: Session, names: readonly string[], heads: number, headDim: number): (rows: number) => { past: number; tensors: Float32Array[] } {
  const past = graphKeepsOwnCache(session.outputNames) ? 1 : 0;
  return (rows) => ({ past, tensors: names.map(() => new Float32Array(rows * heads * past * headDim)) });
}

/**
 * Feeds the previous run's outputs straight back when the batch is the same rows in order: every
 * state of the block advances, so nothing can read the block again.
 */
function takeSameBlock(states: readonly BlockState[]): Block | undefined {
  if (states.some((s) => s.block.spent)) throw new Error('a decoder state was advanced twice (its buffers are gone)');
  const block = states[0]!.block;
  if (block.rows !== states.length || !states.every((s, r) => s.block === block && s.row === r)) return undefined;
  block.spent = true;
  return block;
}

/** LSTM: the state is h and c per layer, [rows, hidden] each. */
function createLstmDecoder(session: Session, numLayers: number, hidden: number, vocabSize: number): Decoder {
  const { past: inputNames, present: outputNames } = lstmNames(numLayers);

  function gather(states: readonly BlockState[]): readonly Float32Array[] {
    const same = takeSameBlock(states);
    if (same) return same.tensors;
    return inputNames.map((_, i) => {
      const stacked = new Float32Array(states.length * hidden);
      states.forEach((s, r) => stacked.set(s.block.tensors[i]!.subarray(s.row * hidden, (s.row + 1) * hidden), r * hidden));
      return stacked;
    });
  }

  async function run(ids: readonly number[], rows: number, seqLen: number, states: readonly BlockState[]) {
    const feeds: NamedTensors = { [INPUT_IDS]: int64([rows, seqLen], ids) };
    gather(states).forEach((tensor, i) => (feeds[inputNames[i]!] = float32([rows, hidden], tensor)));
    const outputs = await session.run(feeds, { giveUpFeeds: true });
    const block: Block = { tensors: outputNames.map((name) => float32Output(outputs, name)), rows, past: 0 };
    const next = states.map((s, row): BlockState => ({ length: s.length + seqLen, block, row }));
    return { logits: logitsOf(outputs, rows * seqLen, vocabSize), states: next };
  }

  const zeros = inputNames.map(() => new Float32Array(hidden));
  return {
    vocabSize,
    contextLength: null,
    // An LSTM has no mask, so padding would leak into the state: prompts of equal length share
    // a run, the others run alone.
    async prefill(prompts) {
      const results: { logits: Float32Array; state: SequenceState }[] = new Array(prompts.length);
      const byLength = new Map<number, number[]>();
      prompts.forEach((ids, i) => byLength.set(ids.length, [...(byLength.get(ids.length) ?? []), i]));
      for (const [length, members] of byLength) {
        const rows = members.length;
        const empty: Block = { tensors: zeros.map(() => new Float32Array(rows * hidden)), rows, past: 0 };
        const { logits, states } = await run(members.flatMap((i) => prompts[i]!), rows, length, members.map((_, row) => ({ length: 0, block: empty, row })));
        members.forEach((i, r) => (results[i] = { logits: logits.subarray(r * length * vocabSize, (r + 1) * length * vocabSize), state: states[r]! }));
      }
      return results;
    },
    async extend(state, tokens) {
      // Fresh zeros: a run may take its feeds' buffers.
      const from: BlockState = (state as BlockState | null) ?? { length: 0, block: { tensors: zeros.map(() => new Float32Array(hidden)), rows: 1, past: 0 }, row: 0 };
      const { logits, states } = await run(tokens, 1, tokens.length, [from]);
      return { logits, state: states[0]! };
    },
    // A state is its block's tensors: whatever nobody refers to is garbage.
    release: () => {},
    step: (batch) => run(batch.map((b) => b.token), batch.length, 1, batch.map((b) => b.state as BlockState)),
  };
}

/**
 * Transformer: the KV cache of a batch is [rows, heads, past, headDim] per layer, every row
 * left-padded to the same past length; `attention_mask` zeroes the padding and `position_ids`
 * carries each sequence's own position, so a sequence sees exactly what it would see alone. The
 * `present` outputs are already the next step's padded past, so a steady batch copies nothing.
 */
function createKvDecoder(session: Session, numLayers: number, heads: number, headDim: number, vocabSize: number, contextLength: number | null): Decoder {
  const { past: inputNames, present: outputNames } = transformerNames(numLayers);
  const emptyPast = firstPast(session, inputNames, heads, headDim);

  // A rolling window leaves masked positions at the left of a steady batch's past: it is laid
  // out anew once that past reaches twice the context, so a step's cost stays bounded.
  const pastLimit = contextLength === null ? Infinity : 2 * contextLength;

  function gather(states: readonly BlockState[]): { past: number; tensors: readonly Float32Array[] } {
    const same = states[0]!.block.past < pastLimit ? takeSameBlock(states) : undefined;
    if (same) return same;
    const past = Math.max(...states.map((s) => s.length));
    const tensors = inputNames.map((_, i) => {
      const padded = new Float32Array(states.length * heads * past * headDim);
      states.forEach((s, r) => {
        const source = s.block.tensors[i]!;
        const sourcePast = s.block.past;
        for (let h = 0; h < heads; h++) {
          const from = ((s.row * heads + h) * sourcePast + (sourcePast - s.length)) * headDim;
          padded.set(source.subarray(from, from + s.length * headDim), ((r * heads + h) * past + (past - s.length)) * headDim);
        }
      });
      return padded;
    });
    return { past, tensors };
  }

  /**
   * One run: `ids` is [rows, seqLen]; a row's first `seqLen - fresh[r]` tokens are left padding
   * (prefill of prompts of different lengths), masked out and never counted in its length.
   */
  async function run(ids: readonly number[], states: readonly BlockState[], seqLen: number, fresh: readonly number[]) {
    const rows = states.length;
    const { past, tensors } = states[0]!.length === 0 ? emptyPast(rows) : gather(states);
    const total = past + seqLen;
    const mask = new BigInt64Array(rows * total);
    const positions = new BigInt64Array(rows * seqLen);
    states.forEach((s, r) => {
      const pad = seqLen - fresh[r]!;
      mask.fill(1n, r * total + (past - s.length), r * total + past);
      mask.fill(1n, r * total + past + pad, (r + 1) * total);
      for (let t = pad; t < seqLen; t++) positions[r * seqLen + t] = BigInt(s.length + t - pad);
    });
    const feeds: NamedTensors = {
      [INPUT_IDS]: int64([rows, seqLen], ids),
      [ATTENTION_MASK]: { dtype: 'int64', dims: [rows, total], data: mask },
      [POSITION_IDS]: { dtype: 'int64', dims: [rows, seqLen], data: positions },
    };
    tensors.forEach((tensor, i) => (feeds[inputNames[i]!] = float32([rows, heads, past, headDim], tensor)));
    const outputs = await session.run(feeds, { giveUpFeeds: true });
    const block: Block = { tensors: outputNames.map((name) => float32Output(outputs, name)), rows, past: total };
    const next = states.map((s, row): BlockState => ({ length: s.length + fresh[row]!, block, row }));
    return { logits: logitsOf(outputs, rows * seqLen, vocabSize), states: next };
  }

  const empty: Block = { tensors: [], rows: 0, past: 0 };
  return {
    vocabSize,
    contextLength,
    // Prompts are left-padded to the longest and run together; the padding stays masked in the
    // cache, which is laid out just as a decode step expects.
    async prefill(prompts) {
      const longest = Math.max(...prompts.map((p) => p.length));
      const ids = prompts.flatMap((p) => [...new Array<number>(longest - p.length).fill(0), ...p]);
      const { logits, states } = await run(ids, prompts.map((_, row) => ({ length: 0, block: empty, row })), longest, prompts.map((p) => p.length));
      return prompts.map((p, r) => ({
        logits: logits.subarray((r * longest + longest - p.length) * vocabSize, (r + 1) * longest * vocabSize),
        state: states[r]!,
      }));
    },
    async extend(state, tokens) {
      const from: BlockState = (state as BlockState | null) ?? { length: 0, block: empty, row: 0 };
      const { logits, states } = await run(tokens, [from], tokens.length, [tokens.length]);
      return { logits, state: states[0]! };
    },
    release: () => {},
    step: (batch) => run(batch.map((b) => b.token), batch.map((b) => b.state as BlockState), 1, batch.map(() => 1)),
    // The oldest of a row's positions becomes left padding, masked from then on.
    dropOldest: (state) => ({ ...(state as BlockState), length: state.length - 1 }),
  };
}
