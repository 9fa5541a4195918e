/**
 * GPT-2's pre-tokenization pattern (what HF's ByteLevel pre-tokenizer and transformers.js use):
 * contractions, words and numbers with their leading space, punctuation runs, whitespace runs.
 * It runs with JavaScript's `\s`, as in transformers.js; HF's Rust library (Oniguruma) differs
 * only on U+0085 and U+FEFF.
 */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export function createPreTokenizer(pattern: string = GPT2_PATTERN): (text: string) => string[] {
  const regex = new RegExp(pattern, 'gu');
  return function preTokenize(text: string): string[] {
    return text.match(regex) ?? [];
  };
}
