import type { Tokenizer } from './types.ts';

/**
 * The `tokenizer_config.json` that goes next to tokenizer.json in an exported package:
 * transformers.js loads no tokenizer without it, and must not "clean up" spaces (it would change
 * the text around punctuation).
 */
export function tokenizerConfigJson(tokenizer: Tokenizer, options: { modelMaxLength?: number } = {}): object {
  const json = tokenizer.toJSON() as { added_tokens?: { id: number; content: string }[] };
  const addedTokens = json.added_tokens ?? [];
  const eos = tokenizer.eosId === undefined ? null : addedTokens.find((token) => token.id === tokenizer.eosId)?.content ?? null;
  const unk = addedTokens.find((token) => token.content === '<unk>')?.content ?? eos;
  return {
    tokenizer_class: tokenizer.kind === 'bpe' ? 'GPT2Tokenizer' : 'PreTrainedTokenizer',
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: eos,
    eos_token: eos,
    pad_token: eos,
    unk_token: unk,
    ...(options.modelMaxLength === undefined ? {} : { model_max_length: options.modelMaxLength }),
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...token }) => [String(id), token])),
  };
}
