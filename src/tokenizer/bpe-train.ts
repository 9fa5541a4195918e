import { BYTE_TO_CHAR } from './byte-level.ts';
import type { BpeVocabulary } from './bpe.ts';
import { EOS_TOKEN } from './types.ts';
import { utf8Encode } from './utf8.ts';

/**
 * Learns byte-level BPE merges from word counts. Pair counts are kept over the unique words and
 * updated only for the words a merge touches; a max-heap with lazy deletion finds the most
 * frequent pair (ties: the lower ids first, so training is deterministic). Stops at `vocabSize`
 * or when no pair occurs twice.
 */
export function learnBpe(wordCounts: ReadonlyMap<string, number>, vocabSize: number): BpeVocabulary {
  const tokens: string[] = [EOS_TOKEN, ...BYTE_TO_CHAR];
  const merges: [string, string][] = [];
  const idByToken = new Map(tokens.map((token, id) => [token, id]));
  // Pair keys a * KEY_BASE + b stay exact in a double for ids below 2^26.
  const KEY_BASE = 1 << 26;

  const words: number[][] = [];
  const frequencies: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push(Array.from(utf8Encode(word), (byte) => byte + 1));
    frequencies.push(count);
  }

  const pairCounts = new Map<number, number>();
  const wordsWithPair = new Map<number, Set<number>>();
  words.forEach((symbols, w) => {
    for (let i = 0; i < symbols.length - 1; i++) {
      const key = symbols[i]! * KEY_BASE + symbols[i + 1]!;
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + frequencies[w]!);
      let holders = wordsWithPair.get(key);
      if (holders === undefined) wordsWithPair.set(key, (holders = new Set()));
      holders.add(w);
    }
  });

  const heap = createPairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  while (tokens.length < vocabSize) {
    const best = popCurrentBest(heap, pairCounts);
    if (best === undefined || best.count < 2) break;
    const left = Math.floor(best.key / KEY_BASE);
    const right = best.key % KEY_BASE;
    // Two merge paths can spell the same token ("ab"+"c", "a"+"bc"): they share its id, as in HF.
    const mergedToken = tokens[left]! + tokens[right]!;
    let mergedId = idByToken.get(mergedToken);
    if (mergedId === undefined) {
      mergedId = tokens.length;
      tokens.push(mergedToken);
      idByToken.set(mergedToken, mergedId);
    }
    merges.push([tokens[left]!, tokens[right]!]);

    const changed = new Map<number, number>();
    for (const w of wordsWithPair.get(best.key) ?? []) {
      const symbols = words[w]!;
      const merged = mergePair(symbols, left, right, mergedId);
      if (merged.length === symbols.length) continue;
      const frequency = frequencies[w]!;
      for (let i = 0; i < symbols.length - 1; i++) {
        const key = symbols[i]! * KEY_BASE + symbols[i + 1]!;
        changed.set(key, (changed.get(key) ?? 0) - frequency);
      }
      for (let i = 0; i < merged.length - 1; i++) {
        const key = merged[i]! * KEY_BASE + merged[i + 1]!;
        changed.set(key, (changed.get(key) ?? 0) + frequency);
        let holders = wordsWithPair.get(key);
        if (holders === undefined) wordsWithPair.set(key, (holders = new Set()));
        holders.add(w);
      }
      words[w] = merged;
    }
    wordsWithPair.delete(best.key);
    for (const [key, delta] of changed) {
      if (delta === 0) continue;
      const count = (pairCounts.get(key) ?? 0) + delta;
      if (count > 0) pairCounts.set(key, count);
      else pairCounts.delete(key);
      // Decreases are found lazily when the stale entry surfaces; increases need a fresh entry.
      if (delta > 0) heap.push(count, key);
    }
  }

  return { tokens, specials: [{ id: 0, content: EOS_TOKEN }], merges };
}

function mergePair(symbols: readonly number[], left: number, right: number, mergedId: number): number[] {
  const merged: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] === left && symbols[i + 1] === right) {
      merged.push(mergedId);
      i++;
    } else {
      merged.push(symbols[i]!);
    }
  }
  return merged;
}

function popCurrentBest(heap: PairHeap, pairCounts: ReadonlyMap<number, number>): { count: number; key: number } | undefined {
  for (let entry = heap.pop(); entry !== undefined; entry = heap.pop()) {
    const current = pairCounts.get(entry.key) ?? 0;
    if (current === entry.count) return entry;
    if (current > 0 && current < entry.count) heap.push(current, entry.key);
  }
  return undefined;
}

type PairHeap = ReturnType<typeof createPairHeap>;

/** A binary max-heap of (count, pair key); equal counts pop the smaller key first. */
function createPairHeap() {
  const counts: number[] = [];
  const keys: number[] = [];
  const before = (i: number, j: number) => counts[i]! > counts[j]! || (counts[i] === counts[j] && keys[i]! < keys[j]!);
  const swap = (i: number, j: number) => {
    [counts[i], counts[j]] = [counts[j]!, counts[i]!];
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  };

  function push(count: number, key: number): void {
    counts.push(count);
    keys.push(key);
    for (let i = counts.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  }

  function pop(): { count: number; key: number } | undefined {
    if (counts.length === 0) return undefined;
    const top = { count: counts[0]!, key: keys[0]! };
    const lastCount = counts.pop()!;
    const lastKey = keys.pop()!;
    if (counts.length > 0) {
      counts[0] = lastCount;
      keys[0] = lastKey;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < counts.length && before(l, best)) best = l;
        if (r < counts.length && before(r, best)) best = r;
        if (best === i) break;
        swap(i, best);
        i = best;
      }
    }
    return top;
  }

  return { push, pop };
}
