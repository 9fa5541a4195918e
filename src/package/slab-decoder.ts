import { FerryError } from '../errors.ts';
import { ATTENTION_MASK, INPUT_IDS, LOGITS, POSITION_IDS, transformerNames } from './io.ts';
import { firstPast, float32Output, logitsOf, type Decoder, type SequenceState } from './decoder.ts';
import { bufferOf, float32, int64, type NamedTensors, type Session } from './session.ts';

/**
 * Transformer decoding with the KV cache kept here, in one preallocated buffer (the slab) that
 * holds, for each cache input, [rows, heads, span, headDim]: one sequence per row, its tokens at
 * positions 0..length-1. A step feeds the rows in use as the past, padding masked, and fetches
 * only the logits and the K/V of the new token (`TransformerNames.newKeyValues`), which it
 * writes into the rows. The graph only reads the cache and the runtime never returns it, so a step's cost does not grow with
 * copies of the cache, and sequences joining or leaving move at most a row each.
 *
 * The span is the longest row's length rounded up to a multiple of SPAN_STEP (at most the
 * context): attention costs in proportion to the past fed, so a batch of short sequences does
 * not pay for the whole context. The slab is laid out anew when the span changes, once every
 * SPAN_STEP tokens at most while sequences grow.
 *
 * The cache of a state lives as long as a step advances it: a step drops the rows of every
 * state it does not advance, and a prefill drops those of the previous prefill that no step
 * took. The n choices of one prompt share its prefilled state; the first to step takes the
 * row, the others get copies. The parts of a prompt fed by `extend` before its last are held:
 * their row stays (above the batch's rows, within the span) through the steps between parts.
 */
export function createSlabKvDecoder(session: Session, numLayers: number, heads: number, headDim: number, vocabSize: number, contextLength: number): Decoder {
  const { past: pastNames, newKeyValues: freshNames } = transformerNames(numLayers, { newKeyValues: true });
  const fetch = [LOGITS, ...freshNames];
  const emptyPast = firstPast(session, pastNames, heads, headDim);
  /** Positions per row in the slab: the past every step feeds. */
  let span = spanFor(0);
  let headSize = span * headDim;
  let rowSize = heads * headSize;
  /** Room per row whatever the span, so that a new span never needs a new buffer. */
  const rowRoom = heads * contextLength * headDim;

  /** The slab: one ArrayBuffer holding every cache input's rows, so a run moves one buffer to the worker and back. */
  let slab: Float32Array[] = viewsOf(new ArrayBuffer(0), 0);
  /** The sequence whose cache each row holds. */
  let owners: (Lineage | undefined)[] = [];
  /** Made by the last prefill and not yet advanced by a step. */
  let pending: Lineage[] = [];

  function grow(rows: number): void {
    if (rows <= owners.length) return;
    const capacity = Math.max(rows, owners.length * 2, 4);
    const bigger = viewsOf(new ArrayBuffer(pastNames.length * capacity * rowRoom * Float32Array.BYTES_PER_ELEMENT), capacity);
    slab.forEach((old, i) => bigger[i]!.set(old));
    slab = bigger;
    owners = [...owners, ...new Array<undefined>(capacity - owners.length).fill(undefined)];
  }

  function freeRow(): number {
    let row = owners.indexOf(undefined);
    if (row < 0) {
      row = owners.length;
      grow(row + 1);
    }
    return row;
  }

  function place(lineage: Lineage, row: number): void {
    owners[row] = lineage;
    lineage.row = row;
  }

  function drop(lineage: Lineage): void {
    if (lineage.row >= 0 && owners[lineage.row] === lineage) owners[lineage.row] = undefined;
    lineage.row = -1;
  }

  function copyRow(from: number, to: number): void {
    for (const tensor of slab) tensor.copyWithin(to * rowSize, from * rowSize, (from + 1) * rowSize);
  }

  /** Each cache input's region of `buffer`: room for `capacity` rows apiece, one after the other. */
  function viewsOf(buffer: ArrayBuffer, capacity: number): Float32Array[] {
    return pastNames.map((_, i) => new Float32Array(buffer, i * capacity * rowRoom * Float32Array.BYTES_PER_ELEMENT, capacity * rowRoom));
  }

  /** The span that holds `length` positions and the one a step writes after them. */
  function spanFor(length: number): number {
    return Math.min(contextLength, Math.ceil((length + 1) / SPAN_STEP) * SPAN_STEP);
  }

  /**
   * Lays the rows out with `positions` each, in place, moving only what live rows hold: a
   * longer span moves the last rows first, a shorter one the first rows first, so that nothing
   * is overwritten before it moves. (A fresh buffer each time would cost a full garbage
   * collection, which a buffer of megabytes outside the heap triggers.)
   */
  function respan(positions: number): void {
    if (positions === span) return;
    const longer = positions > span;
    const oldHeadSize = headSize;
    span = positions;
    headSize = span * headDim;
    rowSize = heads * headSize;
    const chunks = owners.length * heads;
    for (let c = 0; c < chunks; c++) {
      const chunk = longer ? chunks - 1 - c : c;
      const lineage = owners[Math.floor(chunk / heads)];
      if (!lineage) continue;
      const from = chunk * oldHeadSize;
      for (const tensor of slab) tensor.copyWithin(chunk * headSize, from, from + lineage.length * headDim);
    }
  }

  function dropAll(): void {
    for (const lineage of owners) if (lineage) lineage.row = -1;
    owners = owners.map(() => undefined);
    pending = [];
  }

  /** Writes `count` positions from `from` of row `freshRow` of `fresh` ([rows, heads, seq, headDim] per cache input) into slab row `row` at `at`. */
  function write(fresh: readonly Float32Array[], freshRow: number, seq: number, from: number, count: number, row: number, at: number): void {
    const length = count * headDim;
    fresh.forEach((source, i) => {
      const target = slab[i]!;
      for (let h = 0; h < heads; h++) {
        const start = ((freshRow * heads + h) * seq + from) * headDim;
        const to = row * rowSize + h * headSize + at * headDim;
        // A plain loop: a decode step copies a few floats per head, where subarray() would allocate.
        for (let k = 0; k < length; k++) target[to + k] = source[start + k]!;
      }
    });
  }

  const freshOutputs = (outputs: NamedTensors) => freshNames.map((name) => float32Output(outputs, name));

  /** Left-padded like the concat decoder, with a first past; each prompt's K/V then go to a row of their own. */
  async function prefill(prompts: readonly (readonly number[])[]): Promise<{ logits: Float32Array; state: SequenceState }[]> {
    for (const lineage of pending) drop(lineage);
    pending = [];
    const rows = prompts.length;
    const longest = Math.max(...prompts.map((p) => p.length));
    respan(Math.max(span, spanFor(longest)));
    const ids = prompts.flatMap((p) => [...new Array<number>(longest - p.length).fill(0), ...p]);
    const { past, tensors } = emptyPast(rows);
    const total = past + longest;
    const mask = new BigInt64Array(rows * total);
    const positions = new BigInt64Array(rows * longest);
    prompts.forEach((p, r) => {
      const pad = longest - p.length;
      mask.fill(1n, r * total + past + pad, (r + 1) * total);
      for (let t = pad; t < longest; t++) positions[r * longest + t] = BigInt(t - pad);
    });
    const feeds: NamedTensors = {
      [INPUT_IDS]: int64([rows, longest], ids),
      [ATTENTION_MASK]: { dtype: 'int64', dims: [rows, total], data: mask },
      [POSITION_IDS]: { dtype: 'int64', dims: [rows, longest], data: positions },
    };
    pastNames.forEach((name, i) => (feeds[name] = float32([rows, heads, past, headDim], tensors[i]!)));
    const outputs = await session.run(feeds, { fetch, giveUpFeeds: true });
    const fresh = freshOutputs(outputs);
    const logits = logitsOf(outputs, rows * longest, vocabSize);
    return prompts.map((p, r) => {
      const lineage: Lineage = { row: -1, length: p.length };
      place(lineage, freeRow());
      write(fresh, r, longest, longest - p.length, p.length, lineage.row, 0);
      pending.push(lineage);
      return {
        logits: logits.subarray((r * longest + longest - p.length) * vocabSize, (r + 1) * longest * vocabSize),
        state: { length: p.length, lineage } satisfies SlabState,
      };
    });
  }

  /** The next part of one prompt: its row's positions so far are the past, the part's K/V go after them. */
  async function extend(state: SequenceState | null, tokens: readonly number[], last: boolean): Promise<{ logits: Float32Array; state: SequenceState }> {
    const lineage: Lineage = state ? (state as SlabState).lineage : { row: -1, length: 0 };
    if (state && (lineage.row < 0 || lineage.length !== state.length)) throw new Error('only the latest state of a held prompt can be extended');
    if (!state) place(lineage, freeRow());
    const seq = tokens.length;
    if (lineage.length + seq > contextLength) {
      throw new FerryError('context_length_exceeded', `a prompt reached this model's context of ${contextLength} tokens`, { status: 400 });
    }
    const { past, tensors } = lineage.length ? { past: lineage.length, tensors: slab.map((view) => pastOf(view, lineage)) } : emptyPast(1);
    const total = past + seq;
    const mask = new BigInt64Array(total).fill(1n, total - seq - lineage.length);
    const positions = BigInt64Array.from(tokens, (_, t) => BigInt(lineage.length + t));
    const feeds: NamedTensors = {
      [INPUT_IDS]: int64([1, seq], tokens),
      [ATTENTION_MASK]: { dtype: 'int64', dims: [1, total], data: mask },
      [POSITION_IDS]: { dtype: 'int64', dims: [1, seq], data: positions },
    };
    pastNames.forEach((name, i) => (feeds[name] = float32([1, heads, past, headDim], tensors[i]!)));
    const outputs = await session.run(feeds, { fetch, giveUpFeeds: true });
    if (lineage.row < 0) throw new Error('a held prompt was released while its part ran');
    respan(Math.max(span, spanFor(lineage.length + seq)));
    write(freshOutputs(outputs), 0, seq, 0, seq, lineage.row, lineage.length);
    lineage.length += seq;
    lineage.held = !last;
    if (last) pending.push(lineage);
    const next: SlabState = { length: lineage.length, lineage };
    return { logits: logitsOf(outputs, seq, vocabSize), state: next };
  }

  /** A row's first `lineage.length` positions, [heads, length, headDim]: the past of its next part. */
  function pastOf(view: Float32Array, lineage: Lineage): Float32Array {
    const past = new Float32Array(heads * lineage.length * headDim);
    for (let h = 0; h < heads; h++) {
      const start = lineage.row * rowSize + h * headSize;
      past.set(view.subarray(start, start + lineage.length * headDim), h * lineage.length * headDim);
    }
    return past;
  }

  function release(state: SequenceState): void {
    const { lineage } = state as SlabState;
    lineage.held = false;
    drop(lineage);
  }

  /** Decides each entry's row: the batch's sequences end up in rows 0..batch-1, in any order. */
  function arrange(states: readonly SlabState[]): Lineage[] {
    const taken = new Set<Lineage>();
    const forks: { index: number; source: Lineage; length: number }[] = [];
    const lineages: Lineage[] = states.map((state, index) => {
      const lineage = state.lineage;
      if (lineage.row < 0) throw new Error('a decoder state was used after its cache was dropped');
      if (state.length >= contextLength) {
        throw new FerryError('context_length_exceeded', `a sequence reached this model's context of ${contextLength} tokens`, { status: 400 });
      }
      if (lineage.length === state.length && !taken.has(lineage)) {
        taken.add(lineage);
        lineage.held = false;
        return lineage;
      }
      forks.push({ index, source: lineage, length: state.length });
      return lineage;
    });
    for (const fork of forks) {
      const copy: Lineage = { row: -1, length: fork.length };
      place(copy, freeRow());
      copyRow(fork.source.row, copy.row);
      lineages[fork.index] = copy;
      taken.add(copy);
    }
    for (const lineage of owners) if (lineage && !taken.has(lineage) && !lineage.held) drop(lineage);
    pending = [];
    const batch = states.length;
    // Held rows leave the rows a step feeds; then rows past the batch move into the holes below it.
    for (const lineage of owners) {
      if (!lineage?.held || lineage.row >= batch) continue;
      let above = owners.indexOf(undefined, batch);
      if (above < 0) {
        above = owners.length;
        grow(above + 1);
      }
      copyRow(lineage.row, above);
      owners[lineage.row] = undefined;
      place(lineage, above);
    }
    for (const lineage of lineages) {
      if (lineage.row < batch) continue;
      const hole = owners.indexOf(undefined);
      copyRow(lineage.row, hole);
      owners[lineage.row] = undefined;
      place(lineage, hole);
    }
    return lineages;
  }

  async function step(batch: readonly { state: SequenceState; token: number }[]): Promise<{ logits: Float32Array; states: SequenceState[] }> {
    const lineages = arrange(batch.map((b) => b.state as SlabState));
    respan(spanFor(Math.max(...owners.map((lineage) => lineage?.length ?? 0))));
    const rows = batch.length;
    const total = span + 1;
    const ids = new Array<number>(rows);
    const mask = new BigInt64Array(rows * total);
    const positions = new BigInt64Array(rows);
    lineages.forEach((lineage, entry) => {
      const row = lineage.row;
      ids[row] = batch[entry]!.token;
      mask.fill(1n, row * total, row * total + lineage.length);
      mask[row * total + span] = 1n;
      positions[row] = BigInt(lineage.length);
    });
    const feeds: NamedTensors = {
      [INPUT_IDS]: int64([rows, 1], ids),
      [ATTENTION_MASK]: { dtype: 'int64', dims: [rows, total], data: mask },
      [POSITION_IDS]: { dtype: 'int64', dims: [rows, 1], data: positions },
    };
    pastNames.forEach((name, i) => (feeds[name] = float32([rows, heads, span, headDim], slab[i]!.subarray(0, rows * rowSize))));
    let outputs: NamedTensors;
    try {
      outputs = await session.run(feeds, { fetch, giveUpFeeds: true, lendFeeds: pastNames });
    } catch (error) {
      // The lent buffers may not have come back: every cache is gone, and so are the sequences of this batch.
      slab = viewsOf(new ArrayBuffer(pastNames.length * owners.length * rowRoom * Float32Array.BYTES_PER_ELEMENT), owners.length);
      dropAll();
      throw error;
    }
    slab = viewsOf(bufferOf(outputs[pastNames[0]!]!)!, owners.length);
    const fresh = freshOutputs(outputs);
    const rowLogits = logitsOf(outputs, rows, vocabSize);
    // A steady batch keeps each sequence in the row of its entry: the runtime's logits are then already in order.
    const inOrder = lineages.every((lineage, entry) => lineage.row === entry);
    const logits = inOrder ? rowLogits : new Float32Array(rows * vocabSize);
    const states = lineages.map((lineage, entry): SlabState => {
      write(fresh, lineage.row, 1, 0, 1, lineage.row, lineage.length);
      if (!inOrder) logits.set(rowLogits.subarray(lineage.row * vocabSize, (lineage.row + 1) * vocabSize), entry * vocabSize);
      lineage.length++;
      return { length: lineage.length, lineage };
    });
    return { logits, states };
  }

  /** Shifts the row's positions down by one (per cache input and head), dropping position 0. */
  function dropOldest(state: SequenceState): SequenceState {
    const { lineage } = state as SlabState;
    if (lineage.row < 0 || lineage.length !== state.length) throw new Error('only the latest state of a sequence can drop its oldest position');
    for (const view of slab) {
      for (let h = 0; h < heads; h++) {
        const start = lineage.row * rowSize + h * headSize;
        view.copyWithin(start, start + headDim, start + lineage.length * headDim);
      }
    }
    lineage.length--;
    const dropped: SlabState = { length: lineage.length, lineage };
    return dropped;
  }

  return { vocabSize, contextLength, prefill, extend, release, step, dropOldest };
}

/** Granularity of the past fed to a step: fewer distinct shapes, and a new layout only every so many tokens. */
const SPAN_STEP = 16;

/** One sequence's cache: a slab row holding its first `length` positions. */
interface Lineage {
  /** -1 once dropped. */
  row: number;
  length: number;
  /** A prompt part before the last: no step or prefill drops it. */
  held?: boolean;
}

interface SlabState extends SequenceState {
  readonly lineage: Lineage;
}
