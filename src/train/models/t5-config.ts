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
