import { FerryError } from '../errors.ts';
import { createBpeTokenizer } from './bpe.ts';
import { learnBpe } from './bpe-train.ts';
import { charVocabulary, createCharTokenizer } from './char.ts';
import { createPreTokenizer } from './pretokenize.ts';
import { textInSafePieces } from './stream.ts';
import type { Tokenizer, TokenizerKind } from './types.ts';
import { EOS_TOKEN, TOKENIZER_KINDS } from './types.ts';
import { createSpecialSplitter } from './vocab.ts';
import { createWordTokenizer, DEFAULT_WORD_VOCAB_SIZE, wordVocabulary } from './word.ts';

export interface TrainTokenizerOptions {
  /** word: the vocabulary cap (default 10,000); bpe: the size to merge up to (default 1,000); char: unused. */
  vocabSize?: number;
  /** char: write unseen characters as UTF-8 byte tokens (default true) instead of `<unk>`. */
  byteFallback?: boolean;
}

export const DEFAULT_BPE_VOCAB_SIZE = 1000;
// `<|endoftext|>` + 256 byte tokens.
const MIN_BPE_VOCAB_SIZE = 257;
const MAX_VOCAB_SIZE = 1 << 24;

/**
 * Trains a tokenizer on a corpus given as consecutive pieces of one text (e.g. `readCorpus`).
 * Only distinct characters or word counts are held, never the corpus. `<|endoftext|>` written in
 * the corpus is the end-of-text token, as in Hugging Face tokenizers.
 */
export async function trainTokenizer(
  kind: string,
  texts: AsyncIterable<string> | Iterable<string>,
  options: TrainTokenizerOptions = {},
): Promise<Tokenizer> {
  const tokenizerKind = checkKind(kind);
  if (tokenizerKind === 'char') {
    const chars = new Set<string>();
    for await (const segment of plainSegments(texts)) {
      for (const char of segment) chars.add(char);
    }
    return createCharTokenizer(charVocabulary(chars, options.byteFallback ?? true));
  }

  const vocabSize = options.vocabSize ?? (tokenizerKind === 'word' ? DEFAULT_WORD_VOCAB_SIZE : DEFAULT_BPE_VOCAB_SIZE);
  checkVocabSize(tokenizerKind, vocabSize);
  const preTokenize = createPreTokenizer();
  const counts = new Map<string, number>();
  for await (const segment of plainSegments(texts)) {
    for (const word of preTokenize(segment)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return tokenizerKind === 'word'
    ? createWordTokenizer(wordVocabulary(counts, vocabSize))
    : createBpeTokenizer(learnBpe(counts, vocabSize));
}

/** The corpus text between `<|endoftext|>` markers, cut where tokenization is unaffected. */
async function* plainSegments(texts: AsyncIterable<string> | Iterable<string>): AsyncGenerator<string> {
  const splitSpecials = createSpecialSplitter([{ id: 0, content: EOS_TOKEN }]);
  for await (const piece of textInSafePieces(texts)) {
    for (const segment of splitSpecials(piece)) {
      if (typeof segment === 'string') yield segment;
    }
  }
}

export function checkKind(kind: string): TokenizerKind {
  if ((TOKENIZER_KINDS as readonly string[]).includes(kind)) return kind as TokenizerKind;
  throw new FerryError('unknown_tokenizer', `unknown tokenizer "${kind}"`, {
    hint: `Use one of: ${TOKENIZER_KINDS.join(', ')}.`,
  });
}

function checkVocabSize(kind: 'word' | 'bpe', vocabSize: number): void {
  const min = kind === 'bpe' ? MIN_BPE_VOCAB_SIZE : 3;
  if (!Number.isInteger(vocabSize) || vocabSize < min || vocabSize > MAX_VOCAB_SIZE) {
    throw new FerryError('invalid_vocab_size', `vocabulary size ${vocabSize} is out of range for a ${kind} tokenizer`, {
      hint: kind === 'bpe'
        ? `Use a whole number from ${min} (${EOS_TOKEN} and the 256 byte tokens) to ${MAX_VOCAB_SIZE}.`
        : `Use a whole number from ${min} (${EOS_TOKEN}, <unk> and one word) to ${MAX_VOCAB_SIZE}.`,
    });
  }
}
