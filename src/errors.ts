/**
 * Every code a FerryError or an HTTP error carries, in one casing (lower snake case, as OpenAI's
 * error codes are), so that a typo is a type error and clients can match codes across releases.
 */
export const ERROR_CODES = [
  'backend_unavailable', 'bad_device', 'bad_flag', 'bad_input', 'bad_input_flag', 'bad_json', 'bad_manifest',
  'bad_model', 'bad_npy', 'bad_tokenizer', 'body_too_large', 'cache_unwritable', 'checkpoint_file_missing',
  'checkpoint_incomplete', 'checkpoint_not_found', 'client_closed', 'context_length_exceeded',
  'corpus_bad_jsonl', 'corpus_bad_tokens', 'corpus_binary', 'corpus_empty', 'corpus_invalid_utf8', 'corpus_not_found',
  'corpus_too_short', 'corpus_unreadable', 'deadline_exceeded', 'device_unavailable', 'draining',
  'duplicate_model', 'echo_unsupported', 'edge_too_large', 'embeddings_bad_file', 'embeddings_dim_mismatch',
  'embeddings_not_found', 'empty_prompt', 'eval_not_a_language_model', 'export_bad_checkpoint',
  'export_bad_graph', 'export_bad_options', 'export_bad_plugin', 'export_block_outside_lm',
  'export_control_flow', 'export_internal', 'export_missing_weight', 'export_model_unreadable',
  'export_nonfinite_weights', 'export_not_graph_model', 'export_onnx_failed', 'export_out_not_dir',
  'export_out_not_writable', 'export_parity', 'export_positional_form', 'export_source_not_found',
  'export_tfjs_failed', 'export_unknown_custom_layer', 'export_unknown_dtype', 'export_unknown_shape',
  'export_unsupported_layer', 'export_unsupported_op', 'export_unsupported_option',
  'export_verify_too_large', 'export_weights_size', 'freedict_bad_dict', 'freedict_bad_index',
  'freedict_dict_not_found', 'freedict_entry_out_of_range', 'host_not_allowed', 'inconsistent_checkpoint',
  'inference_protocol', 'internal_error', 'interrupted', 'invalid_api_key', 'invalid_checkpoint',
  'invalid_checkpoint_file', 'invalid_flag', 'invalid_hyperparameter', 'invalid_json',
  'invalid_model_config', 'invalid_model_json', 'invalid_option', 'invalid_path', 'invalid_rng_state',
  'invalid_safetensors', 'invalid_seed', 'invalid_utf8', 'invalid_val_fraction', 'invalid_value',
  'invalid_vocab_size', 'loading', 'missing', 'missing_arch', 'missing_corpus', 'missing_file',
  'missing_input', 'missing_model_file', 'missing_precision', 'model_failed', 'model_load_failed',
  'model_not_found', 'model_too_large', 'n_too_large', 'no_backend', 'no_models', 'not_a_checkpoint',
  'not_a_package', 'not_found', 'not_generative', 'not_plain', 'nothing_to_resume', 'onnx_unreadable',
  'onnx_unsupported', 'optimizer_state_corrupt', 'optimizer_state_mismatch', 'output_is_checkpoint',
  'output_not_a_run', 'output_not_writable', 'pairs_bad_line', 'pairs_empty', 'pairs_invalid_utf8',
  'pairs_misaligned', 'pairs_no_validation', 'port_in_use', 'preset_arch_mismatch', 'quantize_bad_package',
  'queue_full', 'resume_mismatch', 'run_exists', 'sequence_too_long', 't5_checkpoint', 't5_not_served',
  'token_out_of_range', 'tokenizer_invalid', 'tokenizer_not_found', 'tokenizer_not_t5',
  'tokenizer_unreadable', 'tokenizer_unsupported', 'too_many_prompts', 'training_checkpoint',
  'training_diverged', 'training_thread_failed', 'triton_bad_name', 'triton_unsupported_type',
  'unknown_arch', 'unknown_backend', 'unknown_input', 'unknown_output', 'unknown_parameter',
  'unknown_preset', 'unknown_tokenizer', 'unsupported_checkpoint_version', 'unsupported_media_type',
  'unsupported_model', 'weights_not_found', 'weights_size_mismatch', 'window_too_long', 'worker_died',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Every error a user can cause is a FerryError: a message that names the problem, a hint that
 * says what to do, and an HTTP status for the server. Anything else reaching the top is a bug.
 */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options: { hint?: string; status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = options.hint;
    this.status = options.status ?? 400;
  }

  /** One line for a terminal: the problem, then what to do. */
  toUserMessage(): string {
    return this.hint ? `${this.message}\n  ${this.hint}` : this.message;
  }
}
