import type { Tokenizer } from './types.ts';
import { EOS_TOKEN, UNK_TOKEN } from './types.ts';
import { createPreTokenizer, GPT2_PATTERN } from './pretokenize.ts';
import { utf8Encode } from './utf8.ts';
import { addedTokensJson, createIdDecoder, createEncoder, vocabJson, type SpecialToken } from './vocab.ts';

/**
 * Word-level: the most frequent words of the corpus, everything else `<unk>` (the classic
 * 10,000-word language-model setup). Words are GPT-2 pre-tokenizer pieces, which keep their
 * leading space (" the", "\n", ","), so decoding is plain concatenation and gives the text back
 * exactly wherever no word was unknown.
 */
export interface WordVocabulary {
  readonly tokens: readonly string[];
  readonly specials: readonly SpecialToken[];
  readonly unkToken: string;
  readonly pattern: string;
}

export const DEFAULT_WORD_VOCAB_SIZE = 10_000;

/** `<|endoftext|>`, `<unk>`, then the `vocabSize - 2` most frequent words (ties in string order). */
export function wordVocabulary(counts: ReadonlyMap<string, number>, vocabSize: number): WordVocabulary {
  const words = [...counts]
    .sort(([wordA, countA], [wordB, countB]) => countB - countA || (wordA < wordB ? -1 : wordA > wordB ? 1 : 0))
    .slice(0, Math.max(0, vocabSize - 2))
    .map(([word]) => word);
  return {
    tokens: [EOS_TOKEN, UNK_TOKEN, ...words],
    specials: [
      { id: 0, content: EOS_TOKEN },
      { id: 1, content: UNK_TOKEN },
    ],
    unkToken: UNK_TOKEN,
    pattern: GPT2_PATTERN,
  };
}

export function createWordTokenizer(vocabulary: WordVocabulary): Tokenizer {
  const { tokens, specials, unkToken, pattern } = vocabulary;
  const specialIds = new Set(specials.map((token) => token.id));
  const idByWord = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (!specialIds.has(id)) idByWord.set(token, id);
  });
  const unkId = tokens.indexOf(unkToken);
  const eosId = specials.find((token) => token.content === EOS_TOKEN)?.id;
  const preTokenize = createPreTokenizer(pattern);
  const { tokenBytes, decode } = createIdDecoder(tokens.map(utf8Encode));

  const encode = createEncoder(specials, (text, ids) => {
    for (const word of preTokenize(text)) ids.push(idByWord.get(word) ?? unkId);
  });

  function toJSON(): object {
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokensJson(specials),
      normalizer: null,
      pre_tokenizer: { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab: vocabJson(tokens), unk_token: unkToken },
    };
  }

  return { kind: 'word', vocabSize: tokens.length, eosId, encode, decode, tokenBytes, toJSON };
}
