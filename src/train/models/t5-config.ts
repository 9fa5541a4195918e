import { FerryError } from '../../errors.ts';

/**
 * The T5 v1.1 / mT5 encoder-decoder's hyperparameters: one plain object, saved verbatim as `model`
 * in ferry.json. Field names follow ferry's other configs; `hfConfig` in the exporter maps them to
 * Hugging Face's `config.json` names (d_model, d_kv, d_ff, num_layers, ...).
 *
 * The math both the tfjs model (t5.ts) and the ONNX exporter implement, so that they agree:
 * - one shared embedding [vocabSize, dModel] feeds encoder and decoder, unscaled;
 * - every sub-layer is pre-norm: x + f(rmsNorm(x)), rmsNorm(x) = x * rsqrt(mean(x^2) + 1e-6) * w
 *   (no mean subtraction, no bias); a final rmsNorm closes each stack;
 * - attention has no biases and no 1/sqrt(dKv) scaling (T5 folds it into the initialisation):
 *   scores = q k^T + positionBias + mask, over nHeads heads of width dKv;
 * - the relative position bias is a table [relativeBuckets, nHeads] per stack (encoder:
 *   bidirectional buckets, decoder self-attention: causal buckets), T5's bucket function with
 *   relativeMaxDistance; computed in the first layer, added in every layer; cross-attention has none;
 * - the feed-forward is gated GELU (tanh approximation): wo(gelu(wi0 x) * wi1 x);
 * - the decoder starts from padId (T5's decoder_start_token_id = pad = 0), eos = 1, unk = 2;
 * - the head is untied (lm_head) unless tieWeights, where logits = (y * dModel^-0.5) E^T, as HF does.
 */
export type T5Config = {
  arch: 't5';
  vocabSize: number;
  dModel: number;
  dKv: number;
  dFf: number;
  nHeads: number;
  nEncoderLayers: number;
  nDecoderLayers: number;
  relativeBuckets: number;
  relativeMaxDistance: number;
  dropout: number;
  tieWeights: boolean;
  /** The longest source and target (in tokens, eos included) the model is trained and served on. */
  maxSourceLength: number;
  maxTargetLength: number;
};

/** T5's special token ids, fixed by the format (transformers.js and HF read them from config.json). */
export const T5_SPECIAL_IDS = { pad: 0, eos: 1, unk: 2 } as const;

/**
 * T5's relative position buckets (HF's `_relative_position_bucket`), computed in float32 as
 * PyTorch does: near the powers where the log term lands on a whole number (distance 16, 32, 64
 * with 32 buckets) float64 would round to the next bucket.
 */
const f = Math.fround;

/** The bucket of `relative` = key position - query position. */
export function relativePositionBucket(relative: number, bidirectional: boolean, buckets: number, maxDistance: number): number {
  let bucket = 0;
  let distance: number;
  let n = buckets;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (relative > 0) bucket += n;
    distance = Math.abs(relative);
  } else {
    distance = Math.max(-relative, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (distance < maxExact) return bucket + distance;
  const scaled = f(f(f(Math.log(f(distance / maxExact))) / f(Math.log(maxDistance / maxExact))) * (n - maxExact));
  return bucket + Math.min(maxExact + Math.trunc(scaled), n - 1);
}


/** A T5 config without its vocabulary size, which comes from the tokenizer. */
export type T5Shape = Omit<T5Config, 'vocabSize'>;

export const T5_PRESETS: Readonly<Record<string, { description: string; t5: T5Shape }>> = {
  't5-tiny': {
    description: 'About 40 thousand parameters (width 32, 2+2 layers), for tests and smoke runs.',
    t5: {
      arch: 't5', dModel: 32, dKv: 8, dFf: 64, nHeads: 4, nEncoderLayers: 2, nDecoderLayers: 2, relativeBuckets: 32,
      relativeMaxDistance: 128, dropout: 0, tieWeights: false, maxSourceLength: 64, maxTargetLength: 64,
    },
  },
  't5-mini': {
    description: 'About 1M parameters (width 128, 4 heads of 32, 2+2 layers, tied head).',
    t5: {
      arch: 't5', dModel: 128, dKv: 32, dFf: 256, nHeads: 4, nEncoderLayers: 2, nDecoderLayers: 2, relativeBuckets: 32,
      relativeMaxDistance: 128, dropout: 0.1, tieWeights: true, maxSourceLength: 128, maxTargetLength: 128,
    },
  },
  't5-small-char': {
    description: 'About 9.5M parameters with a character vocabulary (width 256, 4 heads of 64, 4+4 layers).',
    t5: {
      arch: 't5', dModel: 256, dKv: 64, dFf: 1024, nHeads: 4, nEncoderLayers: 4, nDecoderLayers: 4, relativeBuckets: 32,
      relativeMaxDistance: 128, dropout: 0.1, tieWeights: false, maxSourceLength: 256, maxTargetLength: 256,
    },
  },
};

export const DEFAULT_T5_PRESET = 't5-mini';

const T5_KEYS: readonly (keyof T5Config)[] = [
  'arch', 'vocabSize', 'dModel', 'dKv', 'dFf', 'nHeads', 'nEncoderLayers', 'nDecoderLayers', 'relativeBuckets',
  'relativeMaxDistance', 'dropout', 'tieWeights', 'maxSourceLength', 'maxTargetLength',
];

/** A preset's shape with the overrides (undefined ones ignored) and the tokenizer's vocabulary size, validated. */
export function resolveT5Config(options: { preset?: string; overrides?: Record<string, unknown>; vocabSize: number }): T5Config {
  const name = options.preset ?? DEFAULT_T5_PRESET;
  const preset = T5_PRESETS[name];
  if (preset === undefined) {
    throw new FerryError('unknown_preset', `Unknown T5 preset "${name}".`, { hint: `Valid T5 presets: ${Object.keys(T5_PRESETS).join(', ')}.` });
  }
  const overrides = Object.fromEntries(Object.entries(options.overrides ?? {}).filter(([, value]) => value !== undefined));
  return validateT5Config({ ...preset.t5, ...overrides, vocabSize: options.vocabSize });
}

/** Checks that `value` is a complete T5Config with sensible values (also a checkpoint's `model`). */
export function validateT5Config(value: unknown): T5Config {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('the model config is not an object');
  const record = value as Record<string, unknown>;
  if (record.arch !== 't5') throw invalid(`arch must be "t5", got ${JSON.stringify(record.arch)}`);
  const unknown = Object.keys(record).filter((key) => !(T5_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) throw invalid(`unknown t5 hyperparameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, `Valid ones: ${T5_KEYS.slice(1).join(', ')}.`);
  const missing = T5_KEYS.filter((key) => record[key] === undefined);
  if (missing.length > 0) throw invalid(`missing ${missing.join(', ')}`);
  for (const key of T5_KEYS) {
    if (key === 'arch' || key === 'dropout' || key === 'tieWeights') continue;
    const n = record[key];
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw invalid(`${key} must be a positive integer, got ${JSON.stringify(n)}`);
  }
  const dropout = record.dropout;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw invalid(`dropout must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  if (typeof record.tieWeights !== 'boolean') throw invalid(`tieWeights must be true or false, got ${JSON.stringify(record.tieWeights)}`);
  const config = Object.fromEntries(T5_KEYS.map((key) => [key, record[key]])) as T5Config;
  if (config.vocabSize <= T5_SPECIAL_IDS.unk) throw invalid(`vocabSize ${config.vocabSize} leaves no room past pad, eos and unk`);
  // The bidirectional buckets split in two halves, each with an exact half: fewer than 4 has none.
  if (config.relativeBuckets < 4) throw invalid(`relativeBuckets must be at least 4, got ${config.relativeBuckets}`);
  return config;
}

function invalid(problem: string, hint?: string): FerryError {
  return new FerryError('invalid_model_config', `Invalid T5 config: ${problem}.`, { hint });
}

/** Trainable parameters of a config (equals the sizes of t5Weights). */
export function countT5Parameters(config: T5Config): number {
  return t5StateDict(config).reduce((sum, { shape }) => sum + shape.reduce((a, b) => a * b, 1), 0);
}

export interface T5StateDictEntry {
  name: string;
  shape: number[];
  /** The standard deviation of the weight's initialisation (HF's T5PreTrainedModel._init_weights); norms start at 1. */
  std: number | 'ones';
}

/**
 * The Hugging Face state-dict names and shapes of a config, in creation order: the contract between
 * the tfjs model (t5.ts's variables) and the exporter (src/export/t5/graph.ts reads these names).
 */
export function t5StateDict(config: T5Config): T5StateDictEntry[] {
  const { dModel: d, dKv, nHeads, dFf, vocabSize, relativeBuckets } = config;
  const inner = nHeads * dKv;
  const out: T5StateDictEntry[] = [];
  const add = (name: string, shape: number[], std: number | 'ones') => out.push({ name, shape, std });
  const attention = (prefix: string) => {
    // q carries the 1/sqrt(dKv) that T5's attention leaves out.
    add(`${prefix}.q.weight`, [d, inner], (d * dKv) ** -0.5);
    add(`${prefix}.k.weight`, [d, inner], d ** -0.5);
    add(`${prefix}.v.weight`, [d, inner], d ** -0.5);
    add(`${prefix}.o.weight`, [inner, d], inner ** -0.5);
  };
  const feedForward = (prefix: string) => {
    add(`${prefix}.wi_0.weight`, [d, dFf], d ** -0.5);
    add(`${prefix}.wi_1.weight`, [d, dFf], d ** -0.5);
    add(`${prefix}.wo.weight`, [dFf, d], dFf ** -0.5);
  };
  add('shared.weight', [vocabSize, d], 1);
  for (const stack of ['encoder', 'decoder'] as const) {
    const layers = stack === 'encoder' ? config.nEncoderLayers : config.nDecoderLayers;
    for (let i = 0; i < layers; i++) {
      const block = `${stack}.block.${i}`;
      attention(`${block}.layer.0.SelfAttention`);
      if (i === 0) add(`${block}.layer.0.SelfAttention.relative_attention_bias.weight`, [relativeBuckets, nHeads], d ** -0.5);
      add(`${block}.layer.0.layer_norm.weight`, [d], 'ones');
      if (stack === 'decoder') {
        attention(`${block}.layer.1.EncDecAttention`);
        add(`${block}.layer.1.layer_norm.weight`, [d], 'ones');
      }
      const ff = stack === 'encoder' ? 1 : 2;
      feedForward(`${block}.layer.${ff}.DenseReluDense`);
      add(`${block}.layer.${ff}.layer_norm.weight`, [d], 'ones');
    }
    add(`${stack}.final_layer_norm.weight`, [d], 'ones');
  }
  // HF draws lm_head from N(0, 1), which with an unscaled head starts at logits of size sqrt(dModel);
  // dModel^-0.5 starts them near 1, as the tied head's scaling does.
  if (!config.tieWeights) add('lm_head.weight', [d, vocabSize], d ** -0.5);
  return out;
}
