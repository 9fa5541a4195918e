// The tokenizer core: no Node APIs, no tfjs, no ORT (it also runs in browsers and edge workers).
// File helpers are in ./node.ts.
export type { Tokenizer, TokenizerKind } from './types.ts';
export { EOS_TOKEN, TOKENIZER_KINDS, UNK_TOKEN } from './types.ts';
export { trainTokenizer, DEFAULT_BPE_VOCAB_SIZE, type TrainTokenizerOptions } from './train.ts';
export { DEFAULT_WORD_VOCAB_SIZE } from './word.ts';
export { loadTokenizer } from './load.ts';
export { tokenizerConfigJson } from './config.ts';
export { textInSafePieces } from './stream.ts';
export { asT5Tokenizer, T5_TOKENS, t5TokenizerFiles, trainT5Tokenizer, type TrainT5TokenizerOptions } from './t5.ts';
