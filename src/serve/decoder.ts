import { FerryError } from '../errors.ts';
import type { StateSpec } from './package.ts';
import { float32, int64, type NamedTensors, type Session } from './runtime/types.ts';

/**
 * A language model as the scheduler sees it: a prompt goes in whole, then every active sequence
 * advances one token per step in one batched run. Sequence states are immutable values, so a
 * prefilled prompt can be shared by the `n` choices of one request.
 */
export interface Decoder {
  readonly vocabSize: number;
  /** Longest sequence (prompt + output) the model can see; null when unbounded (LSTM). */
  readonly contextLength: number | null;
  /** Runs one prompt; `logits` holds one row of `vocabSize` per prompt token. */
  prefill(ids: readonly number[]): Promise<{ logits: Float32Array; state: SequenceState }>;
  /** Feeds one token to each sequence; `logits` holds one row per sequence. */
  step(batch: readonly { state: SequenceState; token: number }[]): Promise<{ logits: Float32Array; states: SequenceState[] }>;
}

export interface SequenceState {
  /** Tokens consumed so far. */
  readonly length: number;
  /** Per layer: LSTM [h, c] of [hidden]; Transformer [key, value] of [heads, length, headDim]. */
  readonly layers: readonly (readonly [Float32Array, Float32Array])[];
}

export function createDecoder(session: Session, state: StateSpec, vocabSize: number, contextLength: number | null): Decoder {
  const missing = ['input_ids', ...feedNames(state)].filter((name) => !session.inputNames.includes(name));
  if (missing.length) {
    throw new FerryError('bad_model', `the ONNX model lacks the inputs ${missing.join(', ')} that its ferry.json promises`, {
      hint: 're-export the package with `ferry export`',
    });
  }
  return state.kind === 'lstm'
    ? createLstmDecoder(session, state.layers, state.hiddenSize, vocabSize)
    : createKvDecoder(session, state.layers, state.heads, state.headDim, vocabSize, contextLength);
}

function feedNames(state: StateSpec): string[] {
  const names: string[] = [];
  for (let l = 0; l < state.layers; l++) {
    names.push(...(state.kind === 'lstm' ? [`past_h.${l}`, `past_c.${l}`] : [`past_key_values.${l}.key`, `past_key_values.${l}.value`]));
  }
  if (state.kind === 'kv') names.push('attention_mask', 'position_ids');
  return names;
}

function logitsOf(outputs: NamedTensors, rows: number, vocabSize: number): Float32Array {
  const logits = outputs.logits;
  if (!logits || logits.dtype !== 'float32' || logits.data.length !== rows * vocabSize) {
    throw new FerryError('bad_model', `the model returned logits of shape [${logits?.dims.join(', ')}], expected ${rows} rows of ${vocabSize}`, {
      status: 500,
    });
  }
  return logits.data as Float32Array;
}

function output(outputs: NamedTensors, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor || tensor.dtype !== 'float32') throw new FerryError('bad_model', `the model returned no float32 output ${name}`, { status: 500 });
  return tensor.data as Float32Array;
}

/** LSTM: the state is h and c per layer; a batch stacks them into [batch, hidden]. */
function createLstmDecoder(session: Session, numLayers: number, hidden: number, vocabSize: number): Decoder {
  async function run(ids: number[], rows: number, seqLen: number, states: readonly SequenceState[]) {
    const feeds: NamedTensors = { input_ids: int64([rows, seqLen], ids) };
    for (let l = 0; l < numLayers; l++) {
      const h = new Float32Array(rows * hidden);
      const c = new Float32Array(rows * hidden);
      states.forEach((s, b) => {
        h.set(s.layers[l]![0], b * hidden);
        c.set(s.layers[l]![1], b * hidden);
      });
      feeds[`past_h.${l}`] = float32([rows, hidden], h);
      feeds[`past_c.${l}`] = float32([rows, hidden], c);
    }
    const outputs = await session.run(feeds);
    const next = states.map((s, b) => ({
      length: s.length + seqLen,
      layers: Array.from({ length: numLayers }, (_, l) => [
        output(outputs, `present_h.${l}`).slice(b * hidden, (b + 1) * hidden),
        output(outputs, `present_c.${l}`).slice(b * hidden, (b + 1) * hidden),
      ] as const),
    }));
    return { logits: logitsOf(outputs, rows * seqLen, vocabSize), states: next };
  }
  const empty: SequenceState = {
    length: 0,
    layers: Array.from({ length: numLayers }, () => [new Float32Array(hidden), new Float32Array(hidden)] as const),
  };
  return {
    vocabSize,
    contextLength: null,
    async prefill(ids) {
      const { logits, states } = await run([...ids], 1, ids.length, [empty]);
      return { logits, state: states[0]! };
    },
    step: (batch) => run(batch.map((b) => b.token), batch.length, 1, batch.map((b) => b.state)),
  };
}

/**
 * Transformer: each sequence keeps its own compact KV cache [heads, length, headDim]. A batch
 * left-pads the caches to the longest one; `attention_mask` zeroes the padding and
 * `position_ids` carries each sequence's own position, so a sequence sees exactly what it would
 * see alone.
 */
function createKvDecoder(session: Session, numLayers: number, heads: number, headDim: number, vocabSize: number, contextLength: number | null): Decoder {
  return {
    vocabSize,
    contextLength,
    async prefill(ids) {
      const length = ids.length;
      const feeds: NamedTensors = {
        input_ids: int64([1, length], ids),
        attention_mask: int64([1, length], new Array<number>(length).fill(1)),
        position_ids: int64([1, length], Array.from({ length }, (_, i) => i)),
      };
      for (let l = 0; l < numLayers; l++) {
        feeds[`past_key_values.${l}.key`] = float32([1, heads, 0, headDim], new Float32Array(0));
        feeds[`past_key_values.${l}.value`] = float32([1, heads, 0, headDim], new Float32Array(0));
      }
      const outputs = await session.run(feeds);
      const layers = Array.from({ length: numLayers }, (_, l) => [
        output(outputs, `present.${l}.key`).slice(),
        output(outputs, `present.${l}.value`).slice(),
      ] as const);
      return { logits: logitsOf(outputs, length, vocabSize), state: { length, layers } };
    },
    async step(batch) {
      const rows = batch.length;
      const past = Math.max(...batch.map((b) => b.state.length));
      const total = past + 1;
      const mask = new Array<number>(rows * total).fill(0);
      batch.forEach((b, r) => mask.fill(1, r * total + (past - b.state.length), (r + 1) * total));
      const feeds: NamedTensors = {
        input_ids: int64([rows, 1], batch.map((b) => b.token)),
        attention_mask: int64([rows, total], mask),
        position_ids: int64([rows, 1], batch.map((b) => b.state.length)),
      };
      for (let l = 0; l < numLayers; l++) {
        for (const [which, name] of [[0, 'key'], [1, 'value']] as const) {
          const padded = new Float32Array(rows * heads * past * headDim);
          batch.forEach((b, r) => {
            const own = b.state.layers[l]![which];
            const len = b.state.length;
            for (let h = 0; h < heads; h++) {
              padded.set(own.subarray(h * len * headDim, (h + 1) * len * headDim), ((r * heads + h) * past + (past - len)) * headDim);
            }
          });
          feeds[`past_key_values.${l}.${name}`] = float32([rows, heads, past, headDim], padded);
        }
      }
      const outputs = await session.run(feeds);
      const states = batch.map((b, r): SequenceState => {
        const len = b.state.length + 1;
        return {
          length: len,
          layers: Array.from({ length: numLayers }, (_, l) => {
            const unpad = (present: Float32Array) => {
              const own = new Float32Array(heads * len * headDim);
              for (let h = 0; h < heads; h++) {
                const start = ((r * heads + h) * total + (total - len)) * headDim;
                own.set(present.subarray(start, start + len * headDim), h * len * headDim);
              }
              return own;
            };
            return [unpad(output(outputs, `present.${l}.key`)), unpad(output(outputs, `present.${l}.value`))] as const;
          }),
        };
      });
      return { logits: logitsOf(outputs, rows, vocabSize), states };
    },
  };
}
