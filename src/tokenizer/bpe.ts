import { FerryError } from '../errors.ts';
import type { Tokenizer } from './types.ts';
import { EOS_TOKEN } from './types.ts';
import { BYTE_TO_CHAR, byteLevelToBytes } from './byte-level.ts';
import { createPreTokenizer } from './pretokenize.ts';
import { utf8Encode } from './utf8.ts';
import { addedTokensJson, createIdDecoder, createEncoder, vocabJson, type SpecialToken } from './vocab.ts';

/**
 * Byte-level BPE as GPT-2: text is pre-tokenized into words, each word's UTF-8 bytes start as the
 * 256 byte tokens and are merged pair by pair in the order the merges were learned. Every byte
 * has a token, so any text round-trips.
 */
export interface BpeVocabulary {
  /** Token strings by id, written with GPT-2's byte-to-unicode table; special tokens as they read. */
  readonly tokens: readonly string[];
  readonly specials: readonly SpecialToken[];
  /** In priority order: the first merge is applied first. */
  readonly merges: readonly (readonly [string, string])[];
}

// Words in real text repeat (Zipf), so caching each word's ids makes encoding several times faster.
const WORD_CACHE_LIMIT = 100_000;
// Words of more bytes than this are merged with a heap instead of pass by pass.
const LONG_WORD = 48;
const POSITION_BASE = 2 ** 26;
const REMOVED = -1;

export function createBpeTokenizer(vocabulary: BpeVocabulary): Tokenizer {
  const { tokens, specials, merges } = vocabulary;
  const vocabSize = tokens.length;
  const idByToken = new Map(tokens.map((token, id) => [token, id]));
  const specialIds = new Set(specials.map((token) => token.id));

  const idByByte = BYTE_TO_CHAR.map((char, byte) => {
    const id = idByToken.get(char);
    if (id === undefined) {
      throw new FerryError('tokenizer_invalid', `byte-level BPE vocabulary lacks the token for byte ${byte} ("${char}")`, {
        hint: 'A byte-level vocabulary must have all 256 byte tokens; retrain the tokenizer.',
      });
    }
    return id;
  });

  const rankByPair = new Map<number, number>();
  const mergedIdByRank: number[] = [];
  merges.forEach(([left, right], rank) => {
    const leftId = idByToken.get(left);
    const rightId = idByToken.get(right);
    const mergedId = idByToken.get(left + right);
    if (leftId === undefined || rightId === undefined || mergedId === undefined) {
      throw new FerryError('tokenizer_invalid', `BPE merge ${rank} ("${left} ${right}") uses a token missing from the vocabulary`, {
        hint: 'The tokenizer.json is corrupt or hand-edited; retrain or restore it.',
      });
    }
    const key = leftId * vocabSize + rightId;
    if (!rankByPair.has(key)) rankByPair.set(key, rank);
    mergedIdByRank.push(mergedId);
  });

  const bytesById = tokens.map((token, id) => (specialIds.has(id) ? utf8Encode(token) : (byteLevelToBytes(token) ?? utf8Encode(token))));
  const eosId = specials.find((token) => token.content === EOS_TOKEN)?.id;
  const preTokenize = createPreTokenizer();
  const { tokenBytes, decode } = createIdDecoder(bytesById);
  const cache = new Map<string, readonly number[]>();

  function mergeWord(word: string): number[] {
    let symbols = Array.from(utf8Encode(word), (byte) => idByByte[byte]!);
    if (symbols.length > LONG_WORD) return mergeLongWord(symbols);
    while (symbols.length > 1) {
      let bestRank = Infinity;
      let bestIndex = -1;
      for (let i = 0; i < symbols.length - 1; i++) {
        const rank = rankByPair.get(symbols[i]! * vocabSize + symbols[i + 1]!);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) break;
      const left = symbols[bestIndex]!;
      const right = symbols[bestIndex + 1]!;
      const merged: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          merged.push(mergedIdByRank[bestRank]!);
          i++;
        } else {
          merged.push(symbols[i]!);
        }
      }
      symbols = merged;
    }
    return symbols;
  }

  /**
   * The same merges in O(n log n) for long words (a paragraph of Chinese is one "word"): a heap
   * of (rank, position) over a linked list of symbols. A merge only makes pairs of higher rank,
   * and equal ranks pop leftmost first, so the result equals the rank-by-rank passes above.
   */
  function mergeLongWord(symbols: number[]): number[] {
    const ids = Int32Array.from(symbols);
    const next = Int32Array.from(symbols, (_, i) => (i + 1 < symbols.length ? i + 1 : -1));
    const prev = Int32Array.from(symbols, (_, i) => i - 1);
    const heap = createMinHeap();
    const pushPair = (i: number) => {
      const j = next[i]!;
      if (j < 0) return;
      const rank = rankByPair.get(ids[i]! * vocabSize + ids[j]!);
      if (rank !== undefined) heap.push(rank * POSITION_BASE + i);
    };
    for (let i = 0; i < symbols.length - 1; i++) pushPair(i);
    for (let entry = heap.pop(); entry !== undefined; entry = heap.pop()) {
      const rank = Math.floor(entry / POSITION_BASE);
      const i = entry % POSITION_BASE;
      const j = next[i]!;
      if (ids[i] === REMOVED || j < 0 || rankByPair.get(ids[i]! * vocabSize + ids[j]!) !== rank) continue;
      ids[i] = mergedIdByRank[rank]!;
      ids[j] = REMOVED;
      next[i] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = i;
      if (prev[i]! >= 0) pushPair(prev[i]!);
      pushPair(i);
    }
    const merged: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) merged.push(ids[i]!);
    return merged;
  }

  function encodeWord(word: string): readonly number[] {
    let ids = cache.get(word);
    if (ids === undefined) {
      ids = mergeWord(word);
      if (cache.size >= WORD_CACHE_LIMIT) cache.clear();
      cache.set(word, ids);
    }
    return ids;
  }

  const encode = createEncoder(specials, (text, ids) => {
    for (const word of preTokenize(text)) {
      for (const id of encodeWord(word)) ids.push(id);
    }
  });

  function toJSON(): object {
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokensJson(specials),
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab: vocabJson(tokens),
        merges: merges.map(([left, right]) => `${left} ${right}`),
      },
    };
  }

  return { kind: 'bpe', vocabSize, eosId, encode, decode, tokenBytes, toJSON };
}

/** A binary min-heap of numbers. */
function createMinHeap() {
  const items: number[] = [];

  function push(value: number): void {
    items.push(value);
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      items[parent] = value;
      i = parent;
    }
  }

  function pop(): number | undefined {
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < items.length && items[l]! < items[smallest]!) smallest = l;
        if (r < items.length && items[r]! < items[smallest]!) smallest = r;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest]!, items[i]!];
        i = smallest;
      }
    }
    return top;
  }

  return { push, pop };
}
