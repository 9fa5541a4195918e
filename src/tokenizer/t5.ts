/**
 * Tokenizers with T5's conventions, for encoder-decoder models (issue #17): `<pad>` id 0 (also the
 * decoder's start token), `</s>` id 1 (appended to every source and target), `<unk>` id 2, then
 * the char, word or byte-level BPE vocabulary learned from both sides of the pairs.
 *
 * Exported names:
 * - `T5_TOKENS`: the three special tokens by id;
 * - `trainT5Tokenizer(kind, texts, options)`: learns a vocabulary from texts given whole (each
 *   source and each target apart, e.g. `pairTexts(pairs)`), never as pieces of one text;
 * - `asT5Tokenizer(tokenizer)`: a tokenizer loaded from a T5 tokenizer.json (loadTokenizer) with
 *   `eosId` 1 and the T5 tokenizer.json again; a FerryError if ids 0..2 are not the specials;
 * - `t5TokenizerFiles(tokenizer, { modelMaxLength })`: the `tokenizer.json` and
 *   `tokenizer_config.json` texts of an exported package, as transformers.js's T5Tokenizer reads
 *   them (its post-processor appends `</s>`, as Hugging Face's T5 tokenizer.json does).
 *
 * `encode` itself appends nothing (as every ferry tokenizer): callers add T5_TOKENS eos.
 */
import { FerryError } from '../errors.ts';
import { createBpeTokenizer } from './bpe.ts';
import { learnBpe } from './bpe-train.ts';
import { byteToken, createCharTokenizer } from './char.ts';
import { createPreTokenizer, GPT2_PATTERN } from './pretokenize.ts';
import type { Tokenizer } from './types.ts';
import { createSpecialSplitter, type SpecialToken } from './vocab.ts';
import { createWordTokenizer, DEFAULT_WORD_VOCAB_SIZE, wordVocabulary } from './word.ts';
import { BYTE_TO_CHAR } from './byte-level.ts';
import { checkKind, DEFAULT_BPE_VOCAB_SIZE } from './train.ts';

export const T5_TOKENS = { pad: '<pad>', eos: '</s>', unk: '<unk>' } as const;
const T5_SPECIALS: readonly SpecialToken[] = [
  { id: 0, content: T5_TOKENS.pad },
  { id: 1, content: T5_TOKENS.eos },
  { id: 2, content: T5_TOKENS.unk },
];
const T5_EOS_ID = 1;
const MAX_VOCAB_SIZE = 1 << 24;

export interface TrainT5TokenizerOptions {
  /** word: the vocabulary cap (default 10,000); bpe: the size to merge up to (default 1,000); char: unused. */
  vocabSize?: number;
  /** char: write unseen characters as UTF-8 byte tokens (default true) instead of `<unk>`. */
  byteFallback?: boolean;
}

/**
 * Learns a T5 vocabulary from whole texts (each source and each target on its own). Special
 * tokens written in a text (`</s>`, ...) are matched as in Hugging Face and learn nothing.
 */
export async function trainT5Tokenizer(
  kind: string,
  texts: AsyncIterable<string> | Iterable<string>,
  options: TrainT5TokenizerOptions = {},
): Promise<Tokenizer> {
  const tokenizerKind = checkKind(kind);
  const splitSpecials = createSpecialSplitter(T5_SPECIALS);
  const plainPieces = async function* (): AsyncGenerator<string> {
    for await (const text of texts) {
      for (const segment of splitSpecials(text)) if (typeof segment === 'string') yield segment;
    }
  };
  const specialTokens = T5_SPECIALS.map((token) => token.content);

  if (tokenizerKind === 'char') {
    const chars = new Set<string>();
    for await (const piece of plainPieces()) for (const char of piece) chars.add(char);
    const byteFallback = options.byteFallback ?? true;
    const sorted = [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    const bytes = byteFallback ? Array.from({ length: 256 }, (_, byte) => byteToken(byte)) : [];
    const tokens = [...specialTokens, ...sorted, ...bytes];
    return withT5Conventions(createCharTokenizer({ tokens, specials: T5_SPECIALS, byteFallback, unkToken: byteFallback ? null : T5_TOKENS.unk }));
  }

  const vocabSize = options.vocabSize ?? (tokenizerKind === 'word' ? DEFAULT_WORD_VOCAB_SIZE : DEFAULT_BPE_VOCAB_SIZE);
  checkVocabSize(tokenizerKind, vocabSize);
  const preTokenize = createPreTokenizer();
  const counts = new Map<string, number>();
  for await (const piece of plainPieces()) {
    for (const word of preTokenize(piece)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  if (tokenizerKind === 'word') {
    // wordVocabulary's ranking, without its `<|endoftext|>` and `<unk>`.
    const words = wordVocabulary(counts, vocabSize - 1).tokens.slice(2);
    return withT5Conventions(createWordTokenizer({ tokens: [...specialTokens, ...words], specials: T5_SPECIALS, unkToken: T5_TOKENS.unk, pattern: GPT2_PATTERN }));
  }
  // learnBpe's vocabulary starts with `<|endoftext|>`; the three T5 specials take its place.
  const learned = learnBpe(counts, vocabSize - 2);
  return withT5Conventions(createBpeTokenizer({ tokens: [...specialTokens, ...learned.tokens.slice(1)], specials: T5_SPECIALS, merges: learned.merges }));
}

/**
 * A tokenizer whose ids 0, 1, 2 are `<pad>`, `</s>`, `<unk>` (as trainT5Tokenizer writes them, e.g.
 * after loadTokenizer) with `eosId` 1 and the T5 tokenizer.json; a FerryError otherwise.
 */
export function asT5Tokenizer(tokenizer: Tokenizer): Tokenizer {
  const json = tokenizer.toJSON() as { added_tokens?: { id: number; content: string }[] };
  const added = new Map((json.added_tokens ?? []).map((token) => [token.id, token.content]));
  const wrong = T5_SPECIALS.find((token) => added.get(token.id) !== token.content);
  if (wrong) {
    throw new FerryError('tokenizer_not_t5', `the tokenizer has ${added.has(wrong.id) ? `"${added.get(wrong.id)}"` : 'no special token'} at id ${wrong.id}, not "${wrong.content}" as T5 models need`, {
      hint: 'An encoder-decoder model needs a tokenizer trained for pairs (<pad> 0, </s> 1, <unk> 2); train the model with --arch t5 to get one.',
    });
  }
  return withT5Conventions(tokenizer);
}

/** The tokenizer.json and tokenizer_config.json of a T5 package (text, ready to write). */
export function t5TokenizerFiles(tokenizer: Tokenizer, options: { modelMaxLength?: number } = {}): { 'tokenizer.json': string; 'tokenizer_config.json': string } {
  const t5 = asT5Tokenizer(tokenizer);
  const config = {
    tokenizer_class: 'T5Tokenizer',
    clean_up_tokenization_spaces: false,
    eos_token: T5_TOKENS.eos,
    pad_token: T5_TOKENS.pad,
    unk_token: T5_TOKENS.unk,
    extra_ids: 0,
    additional_special_tokens: [],
    padding_side: 'right',
    ...(options.modelMaxLength === undefined ? {} : { model_max_length: options.modelMaxLength }),
    added_tokens_decoder: Object.fromEntries(
      T5_SPECIALS.map(({ id, content }) => [String(id), { content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }]),
    ),
  };
  return { 'tokenizer.json': JSON.stringify(t5.toJSON()), 'tokenizer_config.json': `${JSON.stringify(config, null, 2)}\n` };
}

function withT5Conventions(tokenizer: Tokenizer): Tokenizer {
  return {
    ...tokenizer,
    eosId: T5_EOS_ID,
    // Hugging Face's T5 post-processor: `</s>` after the text (and after each text of a pair).
    toJSON: () => ({ ...tokenizer.toJSON(), post_processor: T5_POST_PROCESSOR }),
  };
}

const EOS_ITEM = { SpecialToken: { id: T5_TOKENS.eos, type_id: 0 } };
const T5_POST_PROCESSOR = {
  type: 'TemplateProcessing',
  single: [{ Sequence: { id: 'A', type_id: 0 } }, EOS_ITEM],
  pair: [{ Sequence: { id: 'A', type_id: 0 } }, EOS_ITEM, { Sequence: { id: 'B', type_id: 0 } }, EOS_ITEM],
  special_tokens: { [T5_TOKENS.eos]: { id: T5_TOKENS.eos, ids: [T5_EOS_ID], tokens: [T5_TOKENS.eos] } },
};

function checkVocabSize(kind: 'word' | 'bpe', vocabSize: number): void {
  const min = kind === 'bpe' ? T5_SPECIALS.length + BYTE_TO_CHAR.length : T5_SPECIALS.length + 1;
  if (!Number.isInteger(vocabSize) || vocabSize < min || vocabSize > MAX_VOCAB_SIZE) {
    throw new FerryError('invalid_vocab_size', `vocabulary size ${vocabSize} is out of range for a ${kind} tokenizer of pairs`, {
      hint: kind === 'bpe'
        ? `Use a whole number from ${min} (<pad>, </s>, <unk> and the 256 byte tokens) to ${MAX_VOCAB_SIZE}.`
        : `Use a whole number from ${min} (<pad>, </s>, <unk> and one word) to ${MAX_VOCAB_SIZE}.`,
    });
  }
}
