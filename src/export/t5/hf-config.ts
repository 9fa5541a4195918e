/**
 * The Hugging Face files beside the graphs: `config.json` (model_type "t5", what transformers.js
 * and Optimum read the shapes and special ids from) and `generation_config.json` (greedy from
 * the pad token until eos, as T5 generates).
 */
import { T5_SPECIAL_IDS, type T5Config } from '../../train/models/t5-config.ts';

export function t5HfConfig(config: T5Config): Record<string, unknown> {
  return {
    architectures: ['T5ForConditionalGeneration'],
    model_type: 't5',
    is_encoder_decoder: true,
    vocab_size: config.vocabSize,
    d_model: config.dModel,
    d_kv: config.dKv,
    d_ff: config.dFf,
    num_heads: config.nHeads,
    num_layers: config.nEncoderLayers,
    num_decoder_layers: config.nDecoderLayers,
    relative_attention_num_buckets: config.relativeBuckets,
    relative_attention_max_distance: config.relativeMaxDistance,
    dropout_rate: config.dropout,
    layer_norm_epsilon: 1e-6,
    feed_forward_proj: 'gated-gelu',
    is_gated_act: true,
    dense_act_fn: 'gelu_new',
    tie_word_embeddings: config.tieWeights,
    decoder_start_token_id: T5_SPECIAL_IDS.pad,
    pad_token_id: T5_SPECIAL_IDS.pad,
    eos_token_id: T5_SPECIAL_IDS.eos,
    use_cache: true,
    n_positions: config.maxSourceLength,
  };
}

export function t5GenerationConfig(config: T5Config): Record<string, unknown> {
  return {
    decoder_start_token_id: T5_SPECIAL_IDS.pad,
    pad_token_id: T5_SPECIAL_IDS.pad,
    eos_token_id: T5_SPECIAL_IDS.eos,
    // The start token counts: a target of maxTargetLength tokens (eos included) needs one more.
    max_length: config.maxTargetLength + 1,
  };
}
