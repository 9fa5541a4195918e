import { FerryError } from '../errors.ts';
import { concatBytes, utf8Decode } from './utf8.ts';

/** A token that is matched in raw text before any splitting, like `<|endoftext|>` (HF "added_tokens"). */
export interface SpecialToken {
  readonly id: number;
  readonly content: string;
}

export type Segment = string | number;

/** Cuts text into plain-text pieces and the ids of the special tokens written in it, as HF does first. */
export function createSpecialSplitter(specials: readonly SpecialToken[]): (text: string) => Segment[] {
  if (specials.length === 0) return (text) => (text === '' ? [] : [text]);
  const idByContent = new Map(specials.map((token) => [token.content, token.id]));
  // Longest first, so that a special token that contains another one wins.
  const alternatives = [...idByContent.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(alternatives.join('|'), 'g');

  return function splitSpecials(text: string): Segment[] {
    const segments: Segment[] = [];
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) segments.push(text.slice(last, match.index));
      segments.push(idByContent.get(match[0])!);
      last = match.index + match[0].length;
    }
    if (last < text.length) segments.push(text.slice(last));
    return segments;
  };
}

/**
 * encode() of a tokenizer: special tokens written in the text become their ids, and every
 * piece of plain text between them goes through `encodeText`, which appends its ids.
 */
export function createEncoder(specials: readonly SpecialToken[], encodeText: (text: string, ids: number[]) => void): (text: string) => number[] {
  const splitSpecials = createSpecialSplitter(specials);
  return function encode(text: string): number[] {
    const ids: number[] = [];
    for (const segment of splitSpecials(text)) {
      if (typeof segment === 'number') ids.push(segment);
      else encodeText(segment, ids);
    }
    return ids;
  };
}

/** tokenBytes and decode over a table of each id's bytes. */
export function createIdDecoder(bytesById: readonly Uint8Array[]) {
  function tokenBytes(id: number): Uint8Array {
    const bytes = bytesById[id];
    if (bytes === undefined || !Number.isInteger(id)) {
      throw new FerryError('token_out_of_range', `token id ${id} is outside the vocabulary (0..${bytesById.length - 1})`, {
        hint: 'Decode only ids produced by this tokenizer or by a model trained with it.',
      });
    }
    return bytes;
  }

  function decode(ids: readonly number[]): string {
    return utf8Decode(concatBytes(ids.map(tokenBytes)));
  }

  return { tokenBytes, decode };
}

/** HF `added_tokens` entries for special tokens. */
export function addedTokensJson(specials: readonly SpecialToken[]): object[] {
  return [...specials]
    .sort((a, b) => a.id - b.id)
    .map((token) => ({
      id: token.id,
      content: token.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }));
}

/** A vocabulary object with its entries in id order, as HF writes it. */
export function vocabJson(tokens: readonly string[]): Record<string, number> {
  // No prototype: a corpus may well contain the word "__proto__".
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  return vocab;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
