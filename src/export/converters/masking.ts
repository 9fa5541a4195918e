/**
 * Keras masks: `Embedding(maskZero)` and `Masking` give a float [B, T] mask (1 = a real step)
 * that travels with the tensor (TensorRef.mask) to the recurrent layers. tfjs skips a masked
 * step: the state is kept and the output repeats the last one. So a recurrent layer runs on the
 * real steps moved to the front (any padding, left, right or inside, the same way) with ONNX's
 * sequence_lens, and each output step is read back from the compacted outputs.
 */
import { attr, type Graph } from '../graph.ts';
import type { Converter, LayerCall, TensorRef } from './types.ts';

const FLOAT = 1;
const INT32 = 6;

function cast(g: Graph, x: string, to: number): string {
  return g.op('Cast', [x], { to: attr.int(to) });
}

/** Batch-major [B, T, ...] rows reordered per batch row by `order` [B, T] (int64). */
function gatherSteps(g: Graph, x: string, order: string): string {
  return g.op('GatherND', [x, g.unsqueeze(order, [2])], { batch_dims: attr.int(1) });
}

export interface CompactedSteps {
  /** The input with each row's real steps first, in order: [B, T, F]. */
  x: string;
  /** Real steps per row, int32 [B]: ONNX's sequence_lens. */
  lengths: string;
  /** Output step t of a forward pass: the compacted output after the real steps up to t (zeros before the first). */
  forward(y: string): string;
  /** Output step t of a backward pass: the compacted output at the first real step from t on (zeros after the last). */
  backward(y: string): string;
}

export function compactSteps(g: Graph, x: string, mask: string): CompactedSteps {
  const steps = g.op('Shape', [mask], { start: attr.int(1), end: attr.int(2) });
  const positions = cast(g, g.op('Range', [g.scalarInt64('zero', 0), g.squeeze(steps, [0]), g.scalarInt64('one', 1)]), FLOAT);
  // Real steps sort first (key t), padding after them (key T + t); TopK of the smallest keys is that order.
  const key = g.op('Add', [positions, g.op('Mul', [g.op('Sub', [g.scalarFloat('one', 1), mask]), cast(g, steps, FLOAT)])]);
  const order = g.node('TopK', [key, steps], { largest: attr.int(0), sorted: attr.int(1), axis: attr.int(1) }, { outputs: 2 })[1]!;
  const seen = g.op('CumSum', [mask, g.scalarInt64('axis', 1)]);
  const toIndex = (v: string) => cast(g, v, 7);
  return {
    x: gatherSteps(g, x, order),
    lengths: cast(g, g.reduce('ReduceSum', mask, [1], false), INT32),
    forward: (y) => {
      const index = toIndex(g.op('Max', [g.op('Sub', [seen, g.scalarFloat('one', 1)]), g.scalarFloat('zero', 0)]));
      const started = g.unsqueeze(cast(g, g.op('Greater', [seen, g.scalarFloat('zero', 0)]), FLOAT), [2]);
      return g.op('Mul', [gatherSteps(g, y, index), started]);
    },
    // Past the last real step the index reaches the row's length, where ONNX's outputs are zero.
    backward: (y) => gatherSteps(g, y, toIndex(g.op('Sub', [seen, mask]))),
  };
}

/** 1 where `x` differs from `value`, as floats. */
export function notEqualMask(g: Graph, x: string, value: string): string {
  return cast(g, g.op('Not', [g.op('Equal', [x, value])]), FLOAT);
}

/** A step is real when any feature differs from maskValue; masked steps become zeros. */
const masking: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const value = g.scalarFloat('mask_value', (call.config.maskValue as number | undefined) ?? 0);
  const mask = g.reduce('ReduceMax', notEqualMask(g, x!.name, value), [2], false);
  return [{ name: g.op('Mul', [x!.name, g.unsqueeze(mask, [2])]), dtype: 'float32', mask }];
};

export const maskingConverters: Record<string, Converter> = { Masking: masking };

/** The tfjs layers whose computeMask hands the input's mask on unchanged (supportsMasking, no computeMask of their own). */
const PASSES_MASK = new Set(['Dense', 'Dropout', 'SpatialDropout1D', 'Activation', 'ReLU', 'PReLU', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'BatchNormalization', 'LayerNormalization', 'TimeDistributed']);

/**
 * The mask of output `index` of a call that set none itself, as tfjs computes it while it runs
 * (tfjs's symbolic nodes carry no masks): recurrent layers hand theirs on only with their sequences.
 */
export function propagatedMask(call: LayerCall, input: TensorRef | undefined, index: number): string | undefined {
  if (!input?.mask) return undefined;
  if (call.className === 'Bidirectional') {
    const inner = (call.config.layer as { config: Record<string, unknown> }).config;
    return inner.returnSequences === true && index < (call.config.mergeMode === null ? 2 : 1) ? input.mask : undefined;
  }
  if (['LSTM', 'GRU', 'SimpleRNN'].includes(call.className)) return call.config.returnSequences === true && index === 0 ? input.mask : undefined;
  return PASSES_MASK.has(call.className) ? input.mask : undefined;
}
