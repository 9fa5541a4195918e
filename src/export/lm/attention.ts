/**
 * Causal self-attention with a KV cache in four ONNX forms. Every form takes the same combined
 * causal + padding mask, filled with the lowest finite float32 (never -inf: a fully masked row
 * of a left-padded batch must stay finite).
 */
import { attr, type Graph, LOWEST_FLOAT32, MICROSOFT_DOMAIN } from '../graph.ts';
import type { AttentionForm, AttentionIO } from '../converters/types.ts';
import type { RelativePositions } from './positions.ts';

export interface AttentionHeads {
  heads: number;
  headDim: number;
}

/** The mask inputs every block shares, built once from the ids and the attention mask inputs (only what `form` uses). */
export function buildAttentionMask(g: Graph, inputIds: string, attentionMask: string, form: AttentionForm): Omit<AttentionIO, 'form' | 'newKeyValues' | 'positionIds' | 'attentionMask' | 'past' | 'present'> {
  const seq = g.op('Shape', [inputIds], { start: attr.int(1), end: attr.int(2) });
  const total = g.op('Shape', [attentionMask], { start: attr.int(1), end: attr.int(2) });
  const past = g.op('Sub', [total, seq]);
  const zero = g.scalarInt64('zero', 0);
  const one = g.scalarInt64('one', 1);
  const scalar = (x: string) => g.squeeze(x, [0]);
  const queryPositions = g.op('Add', [g.op('Range', [zero, scalar(seq), one]), past]);
  const keyPositions = g.op('Range', [zero, scalar(total), one]);
  const causal = g.op('LessOrEqual', [g.unsqueeze(keyPositions, [0]), g.unsqueeze(queryPositions, [1])]);
  const padding = g.unsqueeze(g.op('Cast', [attentionMask], { to: attr.dtype('bool') }), [1, 2]);
  const allowed = g.op('And', [causal, padding], {}, { name: 'attention_allowed' });
  if (form === 'decomposed') return { allowed };
  const maskBias = g.op('Where', [allowed, g.scalarFloat('zero', 0), g.scalarFloat('lowest', LOWEST_FLOAT32)], {}, { name: 'attention_bias' });
  if (form !== 'gqa') return { allowed, maskBias };
  // GQA also wants lengths; padding is in maskBias, so every row counts as full.
  const batch = g.op('Shape', [inputIds], { start: attr.int(0), end: attr.int(1) });
  const seqlensK = g.op('Cast', [g.op('Expand', [g.op('Sub', [total, one]), batch])], { to: attr.dtype('int32') });
  const totalSequenceLength = g.op('Cast', [scalar(total)], { to: attr.dtype('int32') });
  return { allowed, maskBias, seqlensK, totalSequenceLength };
}

/** Splits [B, T, H*hd] into heads: [B, H, T, hd]. */
function splitHeads(g: Graph, x: string, { heads, headDim }: AttentionHeads): string {
  return g.transpose(g.reshape(x, [0, 0, heads, headDim]), [0, 2, 1, 3]);
}

/**
 * Attention of q, k, v ([B, T, d] each, d = heads * headDim) over the cached past of block
 * `block`; registers the present K/V and returns the merged heads [B, T, d]. `positions` (RoPE,
 * ALiBi) only in the decomposed form: the fused ones would cache rotated keys or know no bias.
 */
export function attend(g: Graph, io: AttentionIO, block: number, q: string, k: string, v: string, shape: AttentionHeads, positions?: RelativePositions): string {
  if (io.form === 'decomposed') {
    return io.newKeyValues ? attendToPastApart(g, io, block, q, k, v, shape, positions) : attendThroughPresent(g, io, block, q, k, v, shape, positions);
  }
  const past = io.past(block);
  const scale = 1 / Math.sqrt(shape.headDim);
  const common = { scale: attr.float(scale) };
  switch (io.form) {
    case 'mha': {
      const [y, key, value] = g.node('MultiHeadAttention', [q, k, v, '', '', io.maskBias!, past.key, past.value], {
        num_heads: attr.int(shape.heads),
        ...common,
      }, { domain: MICROSOFT_DOMAIN, outputs: 3 });
      io.present(block, key!, value!);
      return y!;
    }
    case 'gqa': {
      const [y, key, value] = g.node('GroupQueryAttention', [q, k, v, past.key, past.value, io.seqlensK!, io.totalSequenceLength!, '', '', '', io.maskBias!], {
        num_heads: attr.int(shape.heads),
        kv_num_heads: attr.int(shape.heads),
        ...common,
      }, { domain: MICROSOFT_DOMAIN, outputs: 3 });
      io.present(block, key!, value!);
      return y!;
    }
    case 'attention23': {
      const [y, key, value] = g.node('Attention', [q, k, v, io.maskBias!, past.key, past.value], {
        q_num_heads: attr.int(shape.heads),
        kv_num_heads: attr.int(shape.heads),
        ...common,
      }, { outputs: 3 });
      io.present(block, key!, value!);
      return y!;
    }
  }
}

/** Decomposed attention over the present (past + new) K/V, as HF exports have it. */
function attendThroughPresent(g: Graph, io: AttentionIO, block: number, q: string, k: string, v: string, shape: AttentionHeads, positions?: RelativePositions): string {
  const past = io.past(block);
  const key = g.op('Concat', [past.key, splitHeads(g, k, shape)], { axis: attr.int(2) });
  const value = g.op('Concat', [past.value, splitHeads(g, v, shape)], { axis: attr.int(2) });
  io.present(block, key, value);
  const query = splitHeads(g, q, shape);
  const [rotatedQuery, rotatedKey] = positions ? [positions.rotateNew(query), positions.rotateAll(key)] : [query, key];
  const scores = g.op('Mul', [g.op('MatMul', [rotatedQuery, g.transpose(rotatedKey, [0, 1, 3, 2])]), g.scalarFloat('scale', 1 / Math.sqrt(shape.headDim))]);
  return mergeHeads(g, g.op('MatMul', [softmaxAllowed(g, io, withBias(g, scores, positions)), value]), shape);
}

/**
 * Decomposed attention with scores over the past and over the new tokens taken apart, so that
 * the cache is only read: the present Concat feeds nothing but its graph output, and a runtime
 * that fetches the new K/V outputs instead never pays for copying the cache.
 */
function attendToPastApart(g: Graph, io: AttentionIO, block: number, q: string, k: string, v: string, shape: AttentionHeads, positions?: RelativePositions): string {
  const past = io.past(block);
  const newKey = splitHeads(g, k, shape);
  const newValue = splitHeads(g, v, shape);
  const present = (cached: string, fresh: string) => g.op('Concat', [cached, fresh], { axis: attr.int(2) });
  io.present(block, present(past.key, newKey), present(past.value, newValue), { key: newKey, value: newValue });
  const rotateNew = positions?.rotateNew ?? ((x: string) => x);
  const query = rotateNew(splitHeads(g, q, shape));
  const pastKey = positions ? positions.rotatePast(past.key) : past.key;
  const scoresOf = (key: string) => g.op('MatMul', [query, g.transpose(key, [0, 1, 3, 2])]);
  const scores = g.op('Mul', [g.op('Concat', [scoresOf(pastKey), scoresOf(rotateNew(newKey))], { axis: attr.int(-1) }), g.scalarFloat('scale', 1 / Math.sqrt(shape.headDim))]);
  const probs = softmaxAllowed(g, io, withBias(g, scores, positions));
  const pastLength = g.op('Shape', [past.key], { start: attr.int(2), end: attr.int(3) });
  const lastAxis = g.int64('last_axis', [3]);
  const probsPast = g.op('Slice', [probs, g.int64('from_start', [0]), pastLength, lastAxis]);
  const probsNew = g.op('Slice', [probs, pastLength, g.int64('to_end', [Number.MAX_SAFE_INTEGER]), lastAxis]);
  return mergeHeads(g, g.op('Add', [g.op('MatMul', [probsPast, past.value]), g.op('MatMul', [probsNew, newValue])]), shape);
}

function withBias(g: Graph, scores: string, positions: RelativePositions | undefined): string {
  const bias = positions?.scoreBias();
  return bias === undefined ? scores : g.op('Add', [scores, bias]);
}

function softmaxAllowed(g: Graph, io: AttentionIO, scores: string): string {
  const masked = g.op('Where', [io.allowed, scores, g.scalarFloat('lowest', LOWEST_FLOAT32)]);
  return g.op('Softmax', [masked], { axis: attr.int(-1) });
}

/** [B, H, T, hd] back to [B, T, H*hd]. */
function mergeHeads(g: Graph, context: string, { heads, headDim }: AttentionHeads): string {
  return g.reshape(g.transpose(context, [0, 2, 1, 3]), [0, 0, heads * headDim]);
}
