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
  compute: ([qkv], [y, probs], [shape], { heads }, backend) => {
    const { batch, steps, headDim } = dimensions(shape!, heads);
    const { exports, withScratch } = nativeKernels(backend);
    withScratch(exports.attention_scratch_floats(steps, headDim), (scratch) => exports.attention_forward(
      qkv!.byteOffset, y!.byteOffset, probs!.byteOffset, batch, steps, heads, headDim, 1 / Math.sqrt(headDim), scratch));
  },
};

/** Inputs dy [B, T, d], qkv and the forward pass's weights; output dqkv [B, T, 3d]. */
export const attentionGradKernel: HeapKernel<AttentionAttrs> = {
  kernelName: ATTENTION_GRAD_KERNEL,
  inputNames: ['dy', 'qkv', 'probs'],
  outputShapes: ([, qkv]) => [qkv!.shape],
  compute: ([dy, qkv, probs], [dqkv], [, shape], { heads }, backend) => {
    const { batch, steps, headDim } = dimensions(shape!, heads);
    const { exports, withScratch } = nativeKernels(backend);
    withScratch(exports.attention_scratch_floats(steps, headDim), (scratch) => exports.attention_backward(
      qkv!.byteOffset, probs!.byteOffset, dy!.byteOffset, dqkv!.byteOffset, batch, steps, heads, headDim, 1 / Math.sqrt(headDim), scratch));
  },
};
