/**
 * Consecutive pieces of one text, re-cut so that each piece tokenizes exactly as it would inside
 * the whole text. The pre-tokenizer never joins a non-space character to the whitespace after it,
 * and looks ahead only over whitespace, so a cut between a non-space character and a whitespace
 * character changes nothing. Where a text has no such place for `maxCarry` characters (no
 * whitespace at all), it is cut anyway, away from surrogate pairs.
 */
export async function* textInSafePieces(
  texts: AsyncIterable<string> | Iterable<string>,
  maxCarry = 1 << 22,
): AsyncGenerator<string> {
  let carry = '';
  for await (const text of texts) {
    const buffer = carry + text;
    let cut = lastSafeCut(buffer);
    if (cut === 0 && buffer.length > maxCarry) cut = endOutsideSurrogatePair(buffer);
    if (cut === 0) {
      carry = buffer;
      continue;
    }
    yield buffer.slice(0, cut);
    carry = buffer.slice(cut);
  }
  if (carry !== '') yield carry;
}

function lastSafeCut(text: string): number {
  for (let i = text.length - 1; i > 0; i--) {
    if (isWhitespace(text.charCodeAt(i)) && !isWhitespace(text.charCodeAt(i - 1))) return i;
  }
  return 0;
}

function endOutsideSurrogatePair(text: string): number {
  const last = text.charCodeAt(text.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? text.length - 1 : text.length;
}

const WHITESPACE = /\s/;

function isWhitespace(code: number): boolean {
  if (code === 32 || (code >= 9 && code <= 13)) return true;
  return code > 127 && WHITESPACE.test(String.fromCharCode(code));
}
