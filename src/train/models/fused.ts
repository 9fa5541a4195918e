/**
 * Building blocks of ferry's layers with hand-written gradients, run by ferry's JavaScript heap
 * kernels where the backend has them (wasm) and as plain tfjs ops elsewhere (the reference
 * `cpu` backend, native TensorFlow, webgpu). Both paths compute the same functions; the fused
 * one saves what its gradient needs in the forward pass, so the backward pass is a few loops
 * instead of autodiff over a dozen small kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { ATTENTION_GRAD_KERNEL, ATTENTION_KERNEL, BIASED_ATTENTION_GRAD_KERNEL, BIASED_ATTENTION_KERNEL } from '../kernels/attention.ts';
import { GELU_KERNEL, GELU_TANH_KERNEL } from '../kernels/gelu.ts';
import { hasFusedKernel, runFused } from '../kernels/heap-kernel.ts';
import { LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, RMS_NORM_GRAD_KERNEL, RMS_NORM_KERNEL } from '../kernels/layer-norm.ts';

type CustomGradFunc = Parameters<typeof tf.customGrad>[0];

/** LayerNormalization over the last axis with biased variance, as tfjs's LayerNormalization. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  if (hasFusedKernel(LAYER_NORM_KERNEL) && x.dtype === 'float32') return fusedLayerNorm(x, gamma, beta, epsilon);
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
}

function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const normalize = tf.customGrad(((input: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, xhat, rstd] = runFused(LAYER_NORM_KERNEL, { x: input, gamma: scale, beta: shift }, { epsilon });
    save([xhat!, rstd!, scale]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedXhat, savedRstd, savedGamma] = saved;
        return runFused(LAYER_NORM_GRAD_KERNEL, { dy, xhat: savedXhat!, rstd: savedRstd!, gamma: savedGamma! });
      },
    };
  }) as unknown as CustomGradFunc) as (input: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) => tf.Tensor;
  return normalize(x, gamma, beta);
}

/** T5's RMS norm over the last axis: x rsqrt(mean(x^2) + epsilon) gamma, no mean and no bias. */
export function rmsNorm(x: tf.Tensor, gamma: tf.Tensor, epsilon: number): tf.Tensor {
  if (hasFusedKernel(RMS_NORM_KERNEL) && x.dtype === 'float32') return fusedRmsNorm(x, gamma, epsilon);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), epsilon))), gamma);
}

function fusedRmsNorm(x: tf.Tensor, gamma: tf.Tensor, epsilon: number): tf.Tensor {
  const normalize = tf.customGrad(((input: tf.Tensor, scale: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, xhat, rstd] = runFused(RMS_NORM_KERNEL, { x: input, gamma: scale }, { epsilon });
    save([xhat!, rstd!, scale]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, [savedXhat, savedRstd, savedGamma]: tf.Tensor[]) =>
        runFused(RMS_NORM_GRAD_KERNEL, { dy, xhat: savedXhat!, rstd: savedRstd!, gamma: savedGamma! }),
    };
  }) as unknown as CustomGradFunc) as (input: tf.Tensor, scale: tf.Tensor) => tf.Tensor;
  return normalize(x, gamma);
}

/** GELU with the exact erf, as PyTorch's default and ONNX's Gelu: x Phi(x). */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (hasFusedKernel(GELU_KERNEL) && x.dtype === 'float32') return fusedGelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

const fusedGelu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const [y, slope] = runFused(GELU_KERNEL, { x });
  save([slope!]);
  return { value: y!, gradFunc: (dy: tf.Tensor, [savedSlope]: tf.Tensor[]) => [tf.mul(dy, savedSlope!)] };
}) as unknown as CustomGradFunc) as (x: tf.Tensor) => tf.Tensor;

/**
 * GELU with the tanh approximation, as T5 v1.1's gated GELU and PyTorch's gelu(approximate='tanh'):
 * x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2. As tfjs ops its pow and tanh took ~60% of
 * a T5 step's non-matmul time on wasm (tanh alone 18 ms per [32, 32, 1024]); fused, one pass.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (hasFusedKernel(GELU_TANH_KERNEL) && x.dtype === 'float32') return fusedGeluTanh(x);
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

const fusedGeluTanh = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const [y, slope] = runFused(GELU_TANH_KERNEL, { x });
  save([slope!]);
  return { value: y!, gradFunc: (dy: tf.Tensor, [savedSlope]: tf.Tensor[]) => [tf.mul(dy, savedSlope!)] };
}) as unknown as CustomGradFunc) as (x: tf.Tensor) => tf.Tensor;

/** Whether causal attention can run fused on the active backend (attention dropout cannot). */
export function hasFusedAttention(qkv: tf.Tensor): boolean {
  return hasFusedKernel(ATTENTION_KERNEL) && qkv.dtype === 'float32';
}

/**
 * Causal self-attention of qkv [B, T, 3d] (q, k, v side by side) over `heads` heads: [B, T, d],
 * the heads side by side. Check hasFusedAttention first.
 */
export function fusedCausalAttention(qkv: tf.Tensor, heads: number): tf.Tensor {
  const attend = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, probs] = runFused(ATTENTION_KERNEL, { qkv: input }, { heads });
    save([input, probs!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, [savedQkv, savedProbs]: tf.Tensor[]) => runFused(ATTENTION_GRAD_KERNEL, { dy, qkv: savedQkv!, probs: savedProbs! }, { heads }),
    };
  }) as unknown as CustomGradFunc) as (input: tf.Tensor) => tf.Tensor;
  return attend(qkv);
}

/** Whether T5's attention can run fused on the active backend. */
export function hasFusedBiasedAttention(x: tf.Tensor): boolean {
  return hasFusedKernel(BIASED_ATTENTION_KERNEL) && x.dtype === 'float32';
}

export interface BiasedAttentionOptions {
  heads: number;
  /** Keys after the query left out (decoder self-attention). */
  causal: boolean;
  /** [H, Tq, Tk], added to every row's scores (T5's relative position bias); it gets a gradient. */
  bias?: tf.Tensor;
  /** [B, Tk], added to the keys' scores (0 on real keys, a large negative on padding); a constant. */
  mask?: tf.Tensor;
}

/**
 * T5's attention in one kernel each way (check hasFusedBiasedAttention first): softmax(q k^T +
 * bias + mask) v over `heads` heads, no 1/sqrt(d) scale, heads side by side in and out. With `kv`
 * undefined, `q` is the qkv projection [B, T, 3d] (self-attention); else q is [B, Tq, d] and kv
 * [B, Tk, 2d] (cross-attention: k and v side by side). Returns [B, Tq, d]. Each head's products
 * read their columns in place: no split, reshape or transpose of q, k or v.
 */
export function fusedBiasedAttention(q: tf.Tensor, kv: tf.Tensor | undefined, options: BiasedAttentionOptions): tf.Tensor {
  const { heads, causal, bias, mask } = options;
  const attrs = { heads, self: kv === undefined, causal, hasBias: bias !== undefined, hasMask: mask !== undefined };
  const inputs = [q, ...(kv === undefined ? [] : [kv]), ...(bias === undefined ? [] : [bias])];
  const attend = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [qIn, kvIn, biasIn] = kv === undefined ? [args[0], args[0], args[1]] as tf.Tensor[] : args as tf.Tensor[];
    const [y, probs] = runFused(BIASED_ATTENTION_KERNEL, { q: qIn!, kv: kvIn!, bias: biasIn ?? qIn!, mask: mask ?? qIn! }, attrs);
    save([qIn!, kvIn!, probs!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, [savedQ, savedKv, savedProbs]: tf.Tensor[]) =>
        runFused(BIASED_ATTENTION_GRAD_KERNEL, { dy, q: savedQ!, kv: savedKv!, probs: savedProbs! }, attrs),
    };
  }) as unknown as CustomGradFunc) as (...xs: tf.Tensor[]) => tf.Tensor;
  return attend(...inputs);
}
