/**
 * The T5 v1.1 / mT5 encoder-decoder in tfjs, written out as plain tensor functions over one map of
 * variables named as Hugging Face's state dict (`shared.weight`, `encoder.block.0.layer.0.SelfAttention.q.weight`, ...),
 * every linear a Dense kernel [in, out]: what src/export/t5/graph.ts builds the ONNX graphs from.
 * The math is t5-config.ts's, step for step:
 *
 *   encoder: h = E[source]; per layer h += selfAttention(rmsNorm(h), bias_enc); h += ff(rmsNorm(h)); rmsNorm(h)
 *   decoder: h = E[decoderInput]; per layer h += causalSelfAttention(rmsNorm(h), bias_dec);
 *            h += crossAttention(rmsNorm(h), encoded); h += ff(rmsNorm(h)); y = rmsNorm(h)
 *   logits = y lm_head, or (y * dModel^-0.5) E^T when tied.
 */
import * as tf from '@tensorflow/tfjs';
import type { T5WeightMap } from '../../export/t5/graph.ts';
import type { PairBatch } from '../data/pair-batch.ts';
import type { Parameter } from '../optimizer.ts';
import { fusedBiasedAttention, geluTanh, hasFusedBiasedAttention, rmsNorm } from './fused.ts';
import { seededInitializers } from './init.ts';
import { crossEntropy } from './loss.ts';
import { relativePositionBucket, T5_SPECIAL_IDS, t5StateDict, type T5Config } from './t5-config.ts';

/** Added to the scores of masked keys: finite, so a fully masked row (a padded query) never turns into NaN. */
const MASKED_SCORE = -1e9;
const EPSILON = 1e-6;


export interface T5Model {
  readonly config: T5Config;
  /** Every trainable variable, by state-dict name, in creation order. */
  readonly variables: ReadonlyMap<string, tf.Variable>;
}

/** A model's variables as the optimizer's parameters (names are the state-dict names). */
export function t5Parameters(model: T5Model): Parameter[] {
  return [...model.variables].map(([name, variable]) => ({ name, variable }));
}

/** A fresh model for a (validated) config; the same seed gives the same weights. */
export function createT5(config: T5Config, options: { seed?: number } = {}): T5Model {
  const init = seededInitializers(options.seed);
  const variables = new Map<string, tf.Variable>();
  for (const { name, shape, std } of t5StateDict(config)) {
    const initial = tf.tidy(() => (std === 'ones' ? tf.ones(shape) : init.normal(std).apply(shape)));
    variables.set(name, tf.variable(initial, true));
    initial.dispose();
  }
  return { config, variables };
}

/** The weights as plain arrays under their state-dict names (what t5PackageFiles exports). */
export async function t5Weights(model: T5Model): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, variable] of model.variables) out.set(name, { shape: [...variable.shape], data: (await variable.data()) as Float32Array });
  return out;
}

/** Replaces every weight; `weights` must hold exactly the model's names and shapes. */
export function setT5Weights(model: T5Model, weights: T5WeightMap): void {
  const extra = [...weights.keys()].filter((name) => !model.variables.has(name));
  if (extra.length > 0) throw new Error(`the T5 weights have entries the model lacks: ${extra.join(', ')}`);
  for (const [name, variable] of model.variables) {
    const w = weights.get(name);
    if (!w) throw new Error(`the T5 weights lack ${name}`);
    if (w.shape.join(',') !== variable.shape.join(',')) throw new Error(`${name} is [${w.shape.join(', ')}], the model has [${variable.shape.join(', ')}]`);
    tf.tidy(() => variable.assign(tf.tensor(w.data, [...w.shape], 'float32')));
  }
}

export function disposeT5(model: T5Model): void {
  for (const variable of model.variables.values()) variable.dispose();
}

/** The math of one forward pass; call inside tf.tidy. */
function t5Ops(model: T5Model, training: boolean) {
  const { config, variables } = model;
  const { nHeads, dKv, dModel, dropout } = config;
  const w = (name: string): tf.Tensor => {
    const v = variables.get(name);
    if (!v) throw new Error(`the T5 model lacks ${name}`);
    return v;
  };
  const drop = (x: tf.Tensor) => (training && dropout > 0 ? tf.dropout(x, dropout) : x);
  const linearBy = (x: tf.Tensor, kernel: tf.Tensor) => {
    const y = tf.matMul(tf.reshape(x, [-1, kernel.shape[0]!]), kernel);
    return tf.reshape(y, [...x.shape.slice(0, -1), kernel.shape[1]!]);
  };
  const linear = (x: tf.Tensor, name: string) => linearBy(x, w(name));
  const fused = hasFusedBiasedAttention(w('shared.weight'));
  const norm = (x: tf.Tensor, name: string) => rmsNorm(x, w(name), EPSILON);
  /** [B, T, H*dKv] -> [B, H, T, dKv] and back. */
  const splitHeads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [x.shape[0]!, x.shape[1]!, nHeads, dKv]), [0, 2, 1, 3]);
  const mergeHeads = (x: tf.Tensor) => tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [x.shape[0]!, x.shape[2]!, nHeads * dKv]);
  /** softmax(q k^T + bias) v, no 1/sqrt(dKv); `bias` broadcasts to [B, H, queries, keys]. */
  const attention = (queries: tf.Tensor, keysFrom: tf.Tensor, prefix: string, bias: tf.Tensor) => {
    const q = splitHeads(linear(queries, `${prefix}.q.weight`));
    const k = splitHeads(linear(keysFrom, `${prefix}.k.weight`));
    const v = splitHeads(linear(keysFrom, `${prefix}.v.weight`));
    const scores = tf.add(tf.matMul(q, k, false, true), bias);
    return linear(mergeHeads(tf.matMul(tf.softmax(scores), v)), `${prefix}.o.weight`);
  };
  /**
   * The same on ferry's fused kernel (wasm): q, k and v from one product with their kernels side
   * by side (k and v for cross-attention), the heads read in place, the bias [H, Tq, Tk] and the
   * key mask [B, Tk] added inside, causal keys skipped: a third of the launches, no transposes.
   */
  const fusedAttention = (queries: tf.Tensor, keysFrom: tf.Tensor | null, prefix: string, options: { causal: boolean; bias?: tf.Tensor; mask?: tf.Tensor }) => {
    const kernels = (names: string[]) => tf.concat(names.map((name) => w(`${prefix}.${name}.weight`)), 1);
    const y = keysFrom === null
      ? fusedBiasedAttention(linearBy(queries, kernels(['q', 'k', 'v'])), undefined, { heads: nHeads, ...options })
      : fusedBiasedAttention(linear(queries, `${prefix}.q.weight`), linearBy(keysFrom, kernels(['k', 'v'])), { heads: nHeads, ...options });
    return linear(y, `${prefix}.o.weight`);
  };
  /** Gated GELU with the tanh approximation: wo(gelu(wi_0 x) * wi_1 x). */
  const feedForward = (x: tf.Tensor, prefix: string) => {
    const gelu = geluTanh(linear(x, `${prefix}.wi_0.weight`));
    return linear(drop(tf.mul(gelu, linear(x, `${prefix}.wi_1.weight`))), `${prefix}.wo.weight`);
  };
  /** The [H, queries, keys] bias of the stack's table, from the first layer, for every layer. */
  const positionBias = (stack: 'encoder' | 'decoder', queries: number, keys: number) => {
    const buckets = new Int32Array(queries * keys);
    for (let q = 0; q < queries; q++) {
      for (let k = 0; k < keys; k++) buckets[q * keys + k] = relativePositionBucket(k - q, stack === 'encoder', config.relativeBuckets, config.relativeMaxDistance);
    }
    const table = w(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`);
    const rows = tf.gather(table, tf.tensor1d(buckets, 'int32'));
    return tf.transpose(tf.reshape(rows, [queries, keys, nHeads]), [2, 0, 1]);
  };
  /** [B, S]: 0 on real keys, MASKED_SCORE on padding. */
  const keyMask = (mask: tf.Tensor2D) => tf.mul(tf.sub(1, mask), MASKED_SCORE);
  /** The same as [B, 1, 1, S], to broadcast over heads and queries. */
  const keyMask4 = (mask: tf.Tensor2D) => tf.reshape(keyMask(mask), [mask.shape[0], 1, 1, mask.shape[1]]);
  const embed = (ids: tf.Tensor2D) => tf.gather(w('shared.weight'), ids);

  function encode(sourceIds: tf.Tensor2D, sourceMask: tf.Tensor2D): tf.Tensor3D {
    const length = sourceIds.shape[1];
    const position = positionBias('encoder', length, length);
    const mask = keyMask(sourceMask);
    const bias = fused ? null : tf.add(tf.expandDims(position, 0), keyMask4(sourceMask));
    let h = drop(embed(sourceIds));
    for (let i = 0; i < config.nEncoderLayers; i++) {
      const b = `encoder.block.${i}`;
      const x = norm(h, `${b}.layer.0.layer_norm.weight`);
      const prefix = `${b}.layer.0.SelfAttention`;
      h = tf.add(h, drop(bias === null ? fusedAttention(x, null, prefix, { causal: false, bias: position, mask }) : attention(x, x, prefix, bias)));
      h = tf.add(h, drop(feedForward(norm(h, `${b}.layer.1.layer_norm.weight`), `${b}.layer.1.DenseReluDense`)));
    }
    return drop(norm(h, 'encoder.final_layer_norm.weight')) as tf.Tensor3D;
  }

  /** Teacher-forced logits [B, T, vocab] of the decoder inputs over the encoder states. */
  function decode(encoded: tf.Tensor3D, sourceMask: tf.Tensor2D, decoderInputIds: tf.Tensor2D): tf.Tensor3D {
    const length = decoderInputIds.shape[1];
    const position = positionBias('decoder', length, length);
    const mask = keyMask(sourceMask);
    let selfBias: tf.Tensor | null = null;
    let crossBias: tf.Tensor | null = null;
    if (!fused) {
      const causal = tf.tensor2d(Float32Array.from({ length: length * length }, (_, i) => (i % length <= Math.floor(i / length) ? 0 : MASKED_SCORE)), [length, length]);
      selfBias = tf.add(tf.expandDims(position, 0), causal);
      crossBias = keyMask4(sourceMask);
    }
    let h = drop(embed(decoderInputIds));
    for (let i = 0; i < config.nDecoderLayers; i++) {
      const b = `decoder.block.${i}`;
      const x = norm(h, `${b}.layer.0.layer_norm.weight`);
      const selfPrefix = `${b}.layer.0.SelfAttention`;
      h = tf.add(h, drop(selfBias === null ? fusedAttention(x, null, selfPrefix, { causal: true, bias: position }) : attention(x, x, selfPrefix, selfBias)));
      const y = norm(h, `${b}.layer.1.layer_norm.weight`);
      const crossPrefix = `${b}.layer.1.EncDecAttention`;
      h = tf.add(h, drop(crossBias === null ? fusedAttention(y, encoded, crossPrefix, { causal: false, mask }) : attention(y, encoded, crossPrefix, crossBias)));
      h = tf.add(h, drop(feedForward(norm(h, `${b}.layer.2.layer_norm.weight`), `${b}.layer.2.DenseReluDense`)));
    }
    const y = drop(norm(h, 'decoder.final_layer_norm.weight'));
    if (!config.tieWeights) return linear(y, 'lm_head.weight') as tf.Tensor3D;
    const flat = tf.matMul(tf.reshape(tf.mul(y, dModel ** -0.5), [-1, dModel]), w('shared.weight'), false, true);
    return tf.reshape(flat, [y.shape[0]!, y.shape[1]!, config.vocabSize]);
  }

  return { encode, decode };
}

/** The tensors of a PairBatch, for one forward pass. */
function batchTensors(batch: PairBatch) {
  return {
    sourceIds: tf.tensor2d(batch.sourceIds, [batch.batch, batch.sourceLength], 'int32'),
    sourceMask: tf.tensor2d(batch.sourceMask, [batch.batch, batch.sourceLength], 'float32'),
    decoderInputIds: tf.tensor2d(batch.decoderInputIds, [batch.batch, batch.targetLength], 'int32'),
  };
}

/** Teacher-forced logits [batch, targetLength, vocab] of a batch (inference: no dropout). */
export function t5Logits(model: T5Model, batch: PairBatch, options: { training?: boolean } = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const ops = t5Ops(model, options.training === true);
    const { sourceIds, sourceMask, decoderInputIds } = batchTensors(batch);
    return ops.decode(ops.encode(sourceIds, sourceMask), sourceMask, decoderInputIds);
  });
}

/** Mean cross-entropy (nats per token) over the labels with labelMask 1. */
export function t5Loss(model: T5Model, batch: PairBatch, options: { training?: boolean } = {}): tf.Scalar {
  return tf.tidy(() => {
    const logits = tf.reshape(t5Logits(model, batch, options), [-1, model.config.vocabSize]);
    const kept: number[] = [];
    batch.labelMask.forEach((m, i) => m !== 0 && kept.push(i));
    if (kept.length === 0) {
      // SUM_BY_NONZERO_WEIGHTS with 0/1 weights: the mean over the real label tokens (here none).
      const labels = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), model.config.vocabSize);
      return tf.losses.softmaxCrossEntropy(labels, logits, tf.tensor1d(batch.labelMask)) as tf.Scalar;
    }
    // The mean over the real label tokens, through loss.ts's crossEntropy (fused on wasm: one
    // pass each way instead of softmaxCrossEntropy's one-hot, log-softmax and weighted sum).
    if (kept.length === batch.labelMask.length) return crossEntropy(logits, tf.tensor1d(batch.labels, 'int32'));
    const rows = tf.tensor1d(kept, 'int32');
    return crossEntropy(tf.gather(logits, rows), tf.tensor1d(kept.map((i) => batch.labels[i]!), 'int32'));
  });
}

/**
 * Greedy outputs of every source (token ids, each ending in eos): from the start token (pad)
 * the most likely token each step, until eos (not included) or `maxTokens`, as
 * src/package/seq2seq.ts's greedySeq2Seq does on the exported graphs. Each step reruns the whole
 * decoder: there is no cache here, and these models and outputs are short.
 */
export async function greedyGenerate(model: T5Model, sources: readonly (readonly number[])[], maxTokens: number): Promise<number[][]> {
  if (sources.length === 0) return [];
  const sourceLength = Math.max(...sources.map((s) => s.length));
  const sourceIds = new Int32Array(sources.length * sourceLength).fill(T5_SPECIAL_IDS.pad);
  const sourceMask = new Float32Array(sources.length * sourceLength);
  sources.forEach((s, r) => {
    sourceIds.set(s, r * sourceLength);
    sourceMask.fill(1, r * sourceLength, r * sourceLength + s.length);
  });
  const ops = t5Ops(model, false);
  const mask = tf.tensor2d(sourceMask, [sources.length, sourceLength]);
  const encoded = tf.tidy(() => ops.encode(tf.tensor2d(sourceIds, [sources.length, sourceLength], 'int32'), mask));
  const outputs = sources.map((): number[] => []);
  const done = sources.map(() => false);
  try {
    for (let t = 0; t < maxTokens && done.includes(false); t++) {
      const inputs = sources.map((_, r) => [T5_SPECIAL_IDS.pad, ...outputs[r]!, ...new Array<number>(t - outputs[r]!.length).fill(T5_SPECIAL_IDS.pad)]);
      const next = tf.tidy(() => {
        const logits = ops.decode(encoded, mask, tf.tensor2d(inputs.flat(), [sources.length, t + 1], 'int32'));
        return tf.argMax(tf.squeeze(tf.slice(logits, [0, t, 0], [-1, 1, -1]), [1]), -1);
      });
      const tokens = await next.data();
      next.dispose();
      tokens.forEach((token, r) => {
        if (done[r]) return;
        if (token === T5_SPECIAL_IDS.eos) done[r] = true;
        else outputs[r]!.push(token);
      });
    }
  } finally {
    encoded.dispose();
    mask.dispose();
  }
  return outputs;
}
