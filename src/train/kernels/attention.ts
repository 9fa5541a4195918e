/**
 * Causal multi-head self-attention from the qkv projection, forward and backward, one kernel each
 * (native/attention.c). As tfjs ops a block's attention was a reshape, a transpose, a split, a
 * scale, two batched products, a mask add, a softmax and a transpose back, with autodiff walking
 * all of them in reverse; here each head's products read their columns of qkv in place.
 */
import type { HeapKernel } from './heap-kernel.ts';
import { nativeKernels } from './native.ts';

export const ATTENTION_KERNEL = 'FerryCausalAttention';
export const ATTENTION_GRAD_KERNEL = 'FerryCausalAttentionGrad';

export type AttentionAttrs = { heads: number };

/** [batch, steps, d] and head size of a qkv tensor [batch, steps, 3d]. */
function dimensions(qkvShape: readonly number[], heads: number): { batch: number; steps: number; d: number; headDim: number } {
  const [batch, steps, width] = qkvShape as [number, number, number];
  const d = width / 3;
  return { batch, steps, d, headDim: d / heads };
}

/** Input qkv [B, T, 3d]; outputs y [B, T, d] (heads side by side) and the attention weights [B, H, T, T]. */
export const attentionKernel: HeapKernel<AttentionAttrs> = {
  kernelName: ATTENTION_KERNEL,
  inputNames: ['qkv'],
  outputShapes: ([qkv], { heads }) => {
    const { batch, steps, d } = dimensions(qkv!.shape, heads);
    return [[batch, steps, d], [batch, heads, steps, steps]];
  },
  scratchFloats: ([shape], { heads }, backend) => {
    const { steps, headDim } = dimensions(shape!, heads);
    return nativeKernels(backend).exports.attention_scratch_floats(steps, headDim);
  },
  compute: ([qkv], [y, probs], [shape], { heads }, backend, scratch) => {
    const { batch, steps, headDim } = dimensions(shape!, heads);
    nativeKernels(backend).exports.attention_forward(qkv!.byteOffset, y!.byteOffset, probs!.byteOffset, batch, steps, heads, headDim, 1 / Math.sqrt(headDim), scratch);
  },
};

/** Inputs dy [B, T, d], qkv and the forward pass's weights; output dqkv [B, T, 3d]. */
export const attentionGradKernel: HeapKernel<AttentionAttrs> = {
  kernelName: ATTENTION_GRAD_KERNEL,
  inputNames: ['dy', 'qkv', 'probs'],
  outputShapes: ([, qkv]) => [qkv!.shape],
  scratchFloats: ([, shape], { heads }, backend) => {
    const { steps, headDim } = dimensions(shape!, heads);
    return nativeKernels(backend).exports.attention_scratch_floats(steps, headDim);
  },
  compute: ([dy, qkv, probs], [dqkv], [, shape], { heads }, backend, scratch) => {
    const { batch, steps, headDim } = dimensions(shape!, heads);
    nativeKernels(backend).exports.attention_backward(qkv!.byteOffset, probs!.byteOffset, dy!.byteOffset, dqkv!.byteOffset, batch, steps, heads, headDim, 1 / Math.sqrt(headDim), scratch);
  },
};

export const BIASED_ATTENTION_KERNEL = 'FerryBiasedAttention';
export const BIASED_ATTENTION_GRAD_KERNEL = 'FerryBiasedAttentionGrad';

/**
 * T5's attention (native/attention.c's biased_attention): no scale, an additive bias [H, Tq, Tk]
 * (the relative position bias) and a key mask [B, Tk] (0 or a large negative), either optional,
 * causal or not. `kv` is absent for self-attention, where `q` is the qkv projection [B, T, 3d]
 * (q, k, v side by side); for cross-attention q is [B, Tq, d] and kv [B, Tk, 2d] (k, v).
 * `hasBias` / `hasMask` say whether the `bias` / `mask` inputs are real (else any tensor, unread).
 */
export type BiasedAttentionAttrs = { heads: number; self: boolean; causal: boolean; hasBias: boolean; hasMask: boolean };

/** Where each of q, k and v starts (byte offsets from the tensors' starts), the rows' widths and the sizes. */
function biasedLayout(qShape: readonly number[], kvShape: readonly number[], { heads, self }: BiasedAttentionAttrs) {
  const [batch, queries, qRow] = qShape as [number, number, number];
  const keys = kvShape[1]!;
  const kvRow = kvShape[2]!;
  const d = self ? qRow / 3 : qRow;
  return { batch, queries, keys, qRow, kvRow, d, headDim: d / heads, k: self ? 4 * d : 0, v: self ? 8 * d : 4 * d };
}

/** Inputs q, kv (q again for self-attention), bias, mask; outputs y [B, Tq, d] and the weights [B, H, Tq, Tk]. */
export const biasedAttentionKernel: HeapKernel<BiasedAttentionAttrs> = {
  kernelName: BIASED_ATTENTION_KERNEL,
  inputNames: ['q', 'kv', 'bias', 'mask'],
  outputShapes: ([q, kv], attrs) => {
    const { batch, queries, keys, d } = biasedLayout(q!.shape, kv!.shape, attrs);
    return [[batch, queries, d], [batch, attrs.heads, queries, keys]];
  },
  scratchFloats: ([qShape, kvShape], attrs, backend) => {
    const { queries, keys, headDim } = biasedLayout(qShape!, kvShape!, attrs);
    return nativeKernels(backend).exports.biased_attention_scratch_floats(queries, keys, headDim);
  },
  compute: ([q, kv, bias, mask], [y, probs], [qShape, kvShape], attrs, backend, scratch) => {
    const { batch, queries, keys, qRow, kvRow, headDim, k, v } = biasedLayout(qShape!, kvShape!, attrs);
    nativeKernels(backend).exports.biased_attention_forward(
      q!.byteOffset, qRow, kv!.byteOffset + k, kv!.byteOffset + v, kvRow, attrs.hasBias ? bias!.byteOffset : 0, attrs.hasMask ? mask!.byteOffset : 0,
      y!.byteOffset, probs!.byteOffset, batch, queries, keys, attrs.heads, headDim, attrs.causal ? 1 : 0, scratch);
  },
};

/**
 * Inputs dy, q, kv, the forward pass's weights; outputs dq (dqkv for self-attention), then dkv
 * for cross-attention, then dbias [H, Tq, Tk] (summed over the batch) when hasBias.
 */
export const biasedAttentionGradKernel: HeapKernel<BiasedAttentionAttrs> = {
  kernelName: BIASED_ATTENTION_GRAD_KERNEL,
  inputNames: ['dy', 'q', 'kv', 'probs'],
  outputShapes: ([, q, kv, probs], attrs) => {
    const [, heads, queries, keys] = probs!.shape as [number, number, number, number];
    return [q!.shape, ...(attrs.self ? [] : [kv!.shape]), ...(attrs.hasBias ? [[heads, queries, keys]] : [])];
  },
  scratchFloats: ([, qShape, kvShape], attrs, backend) => {
    const { queries, keys, headDim } = biasedLayout(qShape!, kvShape!, attrs);
    return nativeKernels(backend).exports.biased_attention_scratch_floats(queries, keys, headDim);
  },
  compute: ([dy, q, kv, probs], outputs, [, qShape, kvShape], attrs, backend, scratch) => {
    const { batch, queries, keys, qRow, kvRow, headDim, k, v } = biasedLayout(qShape!, kvShape!, attrs);
    const dq = outputs[0]!;
    const dkv = attrs.self ? dq : outputs[1]!;
    const dbias = attrs.hasBias ? outputs.at(-1)!.byteOffset : 0;
    nativeKernels(backend).exports.biased_attention_backward(
      q!.byteOffset, qRow, kv!.byteOffset + k, kv!.byteOffset + v, kvRow, probs!.byteOffset, dy!.byteOffset,
      dq.byteOffset, dkv.byteOffset + k, dkv.byteOffset + v, dbias, batch, queries, keys, attrs.heads, headDim, scratch);
  },
};
