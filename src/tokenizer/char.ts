import type { Tokenizer } from './types.ts';
import { EOS_TOKEN, UNK_TOKEN } from './types.ts';
import { utf8Encode } from './utf8.ts';
import { addedTokensJson, createIdDecoder, createEncoder, vocabJson, type SpecialToken } from './vocab.ts';

/**
 * Character-level: one token per Unicode code point seen in the corpus. A character the corpus
 * never had is written as its UTF-8 bytes with the 256 byte tokens `<0x00>`..`<0xFF>` (byte
 * fallback, as Llama's tokenizers do), so that decode(encode(s)) === s for any text. Without byte
 * fallback unseen characters become `<unk>`.
 *
 * In tokenizer.json it is a BPE model with no merges (transformers.js has no char model).
 */
export interface CharVocabulary {
  /** Token strings by id: single characters, special tokens and (with byte fallback) byte tokens. */
  readonly tokens: readonly string[];
  readonly specials: readonly SpecialToken[];
  readonly byteFallback: boolean;
  readonly unkToken: string | null;
}

export function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;

/** The vocabulary of a corpus whose distinct characters are `chars`: `<|endoftext|>`, the characters in code point order, then the byte tokens (or `<unk>`). */
export function charVocabulary(chars: Iterable<string>, byteFallback: boolean): CharVocabulary {
  const sorted = [...new Set(chars)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const tail = byteFallback ? Array.from({ length: 256 }, (_, byte) => byteToken(byte)) : [UNK_TOKEN];
  const tokens = [EOS_TOKEN, ...sorted, ...tail];
  const specials: SpecialToken[] = [{ id: 0, content: EOS_TOKEN }];
  if (!byteFallback) specials.push({ id: tokens.length - 1, content: UNK_TOKEN });
  return { tokens, specials, byteFallback, unkToken: byteFallback ? null : UNK_TOKEN };
}

export function createCharTokenizer(vocabulary: CharVocabulary): Tokenizer {
  const { tokens, specials, byteFallback, unkToken } = vocabulary;
  const specialIds = new Set(specials.map((token) => token.id));
  const idByChar = new Map<string, number>();
  const idByByte = new Array<number>(256);
  const bytesById = tokens.map((token, id) => {
    const byte = byteFallback ? BYTE_TOKEN.exec(token) : null;
    if (byte) {
      idByByte[parseInt(byte[1]!, 16)] = id;
      return Uint8Array.of(parseInt(byte[1]!, 16));
    }
    if (!specialIds.has(id)) idByChar.set(token, id);
    return utf8Encode(token);
  });
  const unkId = unkToken === null ? undefined : tokens.indexOf(unkToken);
  const eosId = specials.find((token) => token.content === EOS_TOKEN)?.id;
  const { tokenBytes, decode } = createIdDecoder(bytesById);

  function encodeUnseen(char: string, ids: number[]): void {
    if (byteFallback) {
      for (const byte of utf8Encode(char)) ids.push(idByByte[byte]!);
    } else if (unkId !== undefined && unkId >= 0) {
      ids.push(unkId);
    }
  }

  const encode = createEncoder(specials, (text, ids) => {
    for (const char of text) {
      const id = idByChar.get(char);
      if (id === undefined) encodeUnseen(char, ids);
      else ids.push(id);
    }
  });

  function toJSON(): object {
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokensJson(specials),
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: byteFallback
        ? { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }] }
        : { type: 'Fuse' },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: unkToken,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: byteFallback,
        ignore_merges: false,
        vocab: vocabJson(tokens),
        merges: [],
      },
    };
  }

  return { kind: 'char', vocabSize: tokens.length, eosId, encode, decode, tokenBytes, toJSON };
}
