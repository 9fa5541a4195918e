/**
 * ferry's custom tfjs layers. Their class names, configs and weight names are a contract with
 * the exporter (docs/FORMATS.md): change them only together with that page.
 */
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../../errors.ts';
import { fusedCausalAttention, gelu, hasFusedAttention, layerNorm } from './fused.ts';
import { BLOCK_WEIGHTS as W, EMBEDDINGS_WEIGHT } from './weight-names.ts';
import { alibiSlopes, type BlockPositional, ropeTables } from './positions.ts';

type Shape = (number | null)[];
type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Kwargs = Record<string, unknown>;
type LayerVariable = tf.LayerVariable;

/** Added to the scores of future positions: finite, so a fully masked row never turns into NaN. */
const MASKED_SCORE = -1e9;
const DEFAULT_INIT_STD = 0.02;

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0]! : inputs;
}

function singleShape(inputShape: Shape | Shape[]): Shape {
  return Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0]! : (inputShape as Shape);
}

function isTraining(kwargs: Kwargs): boolean {
  return kwargs.training === true;
}

function maybeDropout(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  return training && rate > 0 ? tf.dropout(x, rate) : x;
}

/** x @ kernel + bias over the last axis of x (any rank), as one 2-D matMul. */
function dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const inDim = kernel.shape[0]!;
  const outDim = kernel.shape[1]!;
  const y = tf.add(tf.matMul(tf.reshape(x, [-1, inDim]), kernel), bias);
  return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

/** [T, T] additive mask: 0 where position t may see position s (s <= t), MASKED_SCORE elsewhere. */
function causalMask(length: number): tf.Tensor2D {
  const values = new Float32Array(length * length);
  for (let t = 0; t < length; t++) values.fill(MASKED_SCORE, t * length + t + 1, (t + 1) * length);
  return tf.tensor2d(values, [length, length]);
}

export type FerryTiedEmbeddingArgs = LayerArgs & {
  inputDim: number;
  outputDim: number;
  /** Initial standard deviation of the embeddings (not serialized: it only matters before training). */
  initStd?: number;
  /** Seed of the initial weights (not serialized either). */
  seed?: number;
};

/**
 * An embedding that is also the output head. Called on int ids [B,T] it gathers rows
 * ([B,T,outputDim]); called on features [B,T,outputDim] it returns x @ embeddings^T ([B,T,inputDim]).
 */
export class FerryTiedEmbedding extends tf.layers.Layer {
  static className = 'FerryTiedEmbedding';
  readonly inputDim: number;
  readonly outputDim: number;
  private readonly initStd: number;
  private readonly seed: number | undefined;
  private embeddings: LayerVariable | null = null;

  constructor(args: FerryTiedEmbeddingArgs) {
    super(args);
    this.inputDim = args.inputDim;
    this.outputDim = args.outputDim;
    this.initStd = args.initStd ?? DEFAULT_INIT_STD;
    this.seed = args.seed;
  }

  override build(): void {
    this.embeddings = this.addWeight(EMBEDDINGS_WEIGHT, [this.inputDim, this.outputDim], 'float32',
      tf.initializers.randomNormal({ mean: 0, stddev: this.initStd, seed: this.seed }));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = singleShape(inputShape);
    return shape.length === 2 ? [...shape, this.outputDim] : [...shape.slice(0, -1), this.inputDim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const embeddings = this.embeddings!.read();
      if (x.rank === 2) return tf.gather(embeddings, x.dtype === 'int32' ? x : tf.cast(x, 'int32'));
      const logits = tf.matMul(tf.reshape(x, [-1, this.outputDim]), embeddings, false, true);
      return tf.reshape(logits, [...x.shape.slice(0, -1), this.inputDim]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), inputDim: this.inputDim, outputDim: this.outputDim };
  }
}

export type PositionKind = 'learned' | 'sinusoidal';

export type FerryPositionEmbeddingArgs = LayerArgs & {
  maxLength: number;
  outputDim: number;
  kind: PositionKind;
  initStd?: number;
  seed?: number;
};

/** Adds the position embedding P[0:T] to x [B,T,d]; learned (a weight) or sinusoidal (a fixed table). */
export class FerryPositionEmbedding extends tf.layers.Layer {
  static className = 'FerryPositionEmbedding';
  readonly maxLength: number;
  readonly outputDim: number;
  readonly kind: PositionKind;
  private readonly initStd: number;
  private readonly seed: number | undefined;
  private embeddings: LayerVariable | null = null;
  private sinusoids: Float32Array | null = null;

  constructor(args: FerryPositionEmbeddingArgs) {
    super(args);
    if (args.kind !== 'learned' && args.kind !== 'sinusoidal') {
      throw new FerryError('invalid_model_config', `Unknown position embedding kind "${String(args.kind)}".`, {
        hint: 'Use "learned" or "sinusoidal".',
      });
    }
    this.maxLength = args.maxLength;
    this.outputDim = args.outputDim;
    this.kind = args.kind;
    this.initStd = args.initStd ?? DEFAULT_INIT_STD;
    this.seed = args.seed;
  }

  override build(inputShape: Shape | Shape[]): void {
    const width = singleShape(inputShape).at(-1);
    if (width !== this.outputDim) {
      throw new FerryError('invalid_model_config', `${this.name} expects features of width ${this.outputDim}, got ${width}.`);
    }
    if (this.kind === 'learned') {
      this.embeddings = this.addWeight(EMBEDDINGS_WEIGHT, [this.maxLength, this.outputDim], 'float32',
        tf.initializers.randomNormal({ mean: 0, stddev: this.initStd, seed: this.seed }));
    } else {
      this.sinusoids = sinusoidTable(this.maxLength, this.outputDim);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return singleShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const length = x.shape[1]!;
      if (length > this.maxLength) {
        throw new FerryError('sequence_too_long', `A sequence of ${length} tokens is longer than the model's context of ${this.maxLength}.`, {
          hint: `Feed at most ${this.maxLength} tokens at a time.`,
        });
      }
      const positions = this.embeddings !== null
        ? tf.slice(this.embeddings.read(), [0, 0], [length, this.outputDim])
        : tf.tensor2d(this.sinusoids!.subarray(0, length * this.outputDim), [length, this.outputDim]);
      return tf.add(x, positions);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), maxLength: this.maxLength, outputDim: this.outputDim, kind: this.kind };
  }
}

/** P[p, 2i] = sin(p / 10000^(2i/d)), P[p, 2i+1] = cos(p / 10000^(2i/d)), row-major [maxLength, d]. */
export function sinusoidTable(maxLength: number, dim: number): Float32Array {
  const table = new Float32Array(maxLength * dim);
  for (let p = 0; p < maxLength; p++) {
    for (let j = 0; j < dim; j++) {
      const angle = p / Math.pow(10000, (j - (j % 2)) / dim);
      table[p * dim + j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return table;
}

export type FerryTransformerBlockArgs = LayerArgs & {
  dim: number;
  numHeads: number;
  mlpDim: number;
  dropout: number;
  epsilon?: number;
  initStd?: number;
  /** Initial std of the two output projections (GPT-2 scales it by 1/sqrt(2 * layers)). */
  projInitStd?: number;
  /** The four kernels draw from seed, seed + 1, seed + 2, seed + 3. */
  seed?: number;
  /** Relative positions applied in the attention itself: rotary q/k or ALiBi score biases (absent: none). */
  positional?: BlockPositional;
  /** RoPE only: the most positions the rotation table covers (the context length). */
  maxLength?: number;
};

/**
 * One pre-LayerNorm GPT block: x = x + proj(attn(ln1(x))); x = x + mlpProj(gelu(fc(ln2(x)))).
 * Attention runs for all heads at once: one fused kernel where the backend has it (wasm, without
 * attention dropout), else qkv is reshaped to [B, 3H, T, hd] and split.
 */
export class FerryTransformerBlock extends tf.layers.Layer {
  static className = 'FerryTransformerBlock';
  readonly dim: number;
  readonly numHeads: number;
  readonly mlpDim: number;
  readonly dropout: number;
  readonly epsilon: number;
  private readonly initStd: number;
  private readonly projInitStd: number;
  private readonly seed: number | undefined;
  readonly positional: BlockPositional | undefined;
  readonly maxLength: number | undefined;
  private readonly rope: { cos: Float32Array; sin: Float32Array } | null;
  private readonly slopes: number[] | null;
  private weightsByName: Record<string, LayerVariable> = {};

  constructor(args: FerryTransformerBlockArgs) {
    super(args);
    if (args.dim % args.numHeads !== 0) {
      throw new FerryError('invalid_model_config', `${args.numHeads} heads do not divide the model width ${args.dim}.`);
    }
    if (args.positional !== undefined && args.positional !== 'rope' && args.positional !== 'alibi') {
      throw new FerryError('invalid_model_config', `Unknown block positional scheme "${String(args.positional)}".`, { hint: 'Use "rope" or "alibi".' });
    }
    const headDim = args.dim / args.numHeads;
    if (args.positional === 'rope' && (headDim % 2 !== 0 || !(args.maxLength! > 0))) {
      throw new FerryError('invalid_model_config', `RoPE needs an even head size and a maxLength, got head size ${headDim} and maxLength ${args.maxLength}.`);
    }
    this.positional = args.positional;
    this.maxLength = args.positional === 'rope' ? args.maxLength : undefined;
    this.rope = args.positional === 'rope' ? ropeTables(args.maxLength!, headDim) : null;
    this.slopes = args.positional === 'alibi' ? alibiSlopes(args.numHeads) : null;
    this.dim = args.dim;
    this.numHeads = args.numHeads;
    this.mlpDim = args.mlpDim;
    this.dropout = args.dropout;
    this.epsilon = args.epsilon ?? 1e-5;
    this.initStd = args.initStd ?? DEFAULT_INIT_STD;
    this.projInitStd = args.projInitStd ?? this.initStd;
    this.seed = args.seed;
  }

  override build(inputShape: Shape | Shape[]): void {
    const width = singleShape(inputShape).at(-1);
    if (width !== this.dim) {
      throw new FerryError('invalid_model_config', `${this.name} expects features of width ${this.dim}, got ${width}.`);
    }
    const d = this.dim;
    const ones = 'ones';
    const zeros = 'zeros';
    const normal = (stddev: number, stream: number) => ({ stddev, seed: this.seed === undefined ? undefined : this.seed + stream });
    const specs: [string, number[], 'ones' | 'zeros' | { stddev: number; seed: number | undefined }][] = [
      [W.ln1Gamma, [d], ones], [W.ln1Beta, [d], zeros],
      [W.qkvKernel, [d, 3 * d], normal(this.initStd, 0)], [W.qkvBias, [3 * d], zeros],
      [W.projKernel, [d, d], normal(this.projInitStd, 1)], [W.projBias, [d], zeros],
      [W.ln2Gamma, [d], ones], [W.ln2Beta, [d], zeros],
      [W.fcKernel, [d, this.mlpDim], normal(this.initStd, 2)], [W.fcBias, [this.mlpDim], zeros],
      [W.mlpProjKernel, [this.mlpDim, d], normal(this.projInitStd, 3)], [W.mlpProjBias, [d], zeros],
    ];
    for (const [name, shape, init] of specs) {
      const initializer = init === 'ones' ? tf.initializers.ones()
        : init === 'zeros' ? tf.initializers.zeros()
        : tf.initializers.randomNormal({ mean: 0, ...init });
      this.weightsByName[name] = this.addWeight(name, shape, 'float32', initializer);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return singleShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const w = (name: string) => this.weightsByName[name]!.read();
      const training = isTraining(kwargs);
      const x = single(inputs);
      const attended = this.attention(layerNorm(x, w(W.ln1Gamma), w(W.ln1Beta), this.epsilon), training);
      const afterAttention = tf.add(x, maybeDropout(attended, this.dropout, training));
      const hidden = gelu(dense(layerNorm(afterAttention, w(W.ln2Gamma), w(W.ln2Beta), this.epsilon), w(W.fcKernel), w(W.fcBias)));
      const mlpOut = dense(hidden, w(W.mlpProjKernel), w(W.mlpProjBias));
      return tf.add(afterAttention, maybeDropout(mlpOut, this.dropout, training));
    });
  }

  /** Causal multi-head self-attention of h [B, T, d], projected back to [B, T, d]. */
  private attention(h: tf.Tensor, training: boolean): tf.Tensor {
    const w = (name: string) => this.weightsByName[name]!.read();
    const [batch, length] = h.shape as [number, number, number];
    const heads = this.numHeads;
    const headDim = this.dim / heads;
    const projected = dense(h, w(W.qkvKernel), w(W.qkvBias));
    const qkv = this.rope ? this.rotateQueriesAndKeys(projected) : projected;
    // ferry's fused kernel knows only the causal mask: ALiBi's biases take the plain ops.
    if (hasFusedAttention(qkv) && this.slopes === null && !(training && this.dropout > 0)) {
      return dense(fusedCausalAttention(qkv, heads), w(W.projKernel), w(W.projBias));
    }
    const perHead = tf.transpose(tf.reshape(qkv, [batch, length, 3 * heads, headDim]), [0, 2, 1, 3]);
    const [q, k, v] = tf.split(perHead, 3, 1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const bias = this.slopes ? alibiCausalBias(this.slopes, length) : causalMask(length);
    const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(headDim)), k, false, true), bias);
    const weights = maybeDropout(tf.softmax(scores, -1), this.dropout, training);
    const mixed = tf.transpose(tf.matMul(weights, v), [0, 2, 1, 3]);
    return dense(tf.reshape(mixed, [batch, length, this.dim]), w('attn/proj/kernel'), w('attn/proj/bias'));
  }

  /**
   * RoPE on the q and k columns of qkv [B, T, 3d] at positions 0..T-1, per head:
   * x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1] for the halves x1, x2 of the head.
   */
  private rotateQueriesAndKeys(qkv: tf.Tensor): tf.Tensor {
    const [batch, length] = qkv.shape as [number, number, number];
    if (length > this.maxLength!) {
      throw new FerryError('sequence_too_long', `A sequence of ${length} tokens is longer than the model's context of ${this.maxLength}.`, {
        hint: `Feed at most ${this.maxLength} tokens at a time.`,
      });
    }
    const heads = this.numHeads;
    const headDim = this.dim / heads;
    const table = (values: Float32Array) => tf.tensor3d(values.subarray(0, length * headDim), [length, 1, headDim]);
    const [qk, v] = tf.split(tf.reshape(qkv, [batch, length, 3 * heads, headDim]), [2 * heads, heads], 2);
    const [first, second] = tf.split(qk!, 2, -1);
    const rotated = tf.add(tf.mul(qk!, table(this.rope!.cos)), tf.mul(tf.concat([tf.neg(second!), first!], -1), table(this.rope!.sin)));
    return tf.reshape(tf.concat([rotated, v!], 2), [batch, length, 3 * this.dim]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim, numHeads: this.numHeads, mlpDim: this.mlpDim, dropout: this.dropout, epsilon: this.epsilon,
      ...(this.positional === undefined ? {} : { positional: this.positional }),
      ...(this.maxLength === undefined ? {} : { maxLength: this.maxLength }),
    };
  }
}

/**
 * [H, T, T] additive scores: -slope_h * (t - s) where query t may see key s (s <= t), MASKED_SCORE
 * elsewhere. Each bias is float32(slope) times an integer, rounded once, as the ONNX graph computes it.
 */
function alibiCausalBias(slopes: number[], length: number): tf.Tensor3D {
  const values = new Float32Array(slopes.length * length * length).fill(MASKED_SCORE);
  slopes.forEach((slope, h) => {
    const negated = Math.fround(-slope);
    for (let t = 0; t < length; t++) {
      for (let s = 0; s <= t; s++) values[(h * length + t) * length + s] = negated * (t - s);
    }
  });
  return tf.tensor3d(values, [slopes.length, length, length]);
}

tf.serialization.registerClass(FerryTiedEmbedding);
tf.serialization.registerClass(FerryPositionEmbedding);
tf.serialization.registerClass(FerryTransformerBlock);
