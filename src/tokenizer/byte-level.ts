/**
 * GPT-2's byte-to-unicode table: every byte gets a printable character (printable Latin-1 bytes
 * stand for themselves, the rest are shifted above U+0100), so byte-level tokens are plain
 * strings in tokenizer.json — " the" is written "Ġthe".
 */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

function buildByteToChar(): string[] {
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const chars: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    chars.push(String.fromCodePoint(printable(byte) ? byte : 256 + shifted++));
  }
  return chars;
}

export function bytesToByteLevel(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += BYTE_TO_CHAR[byte];
  return text;
}

/** The bytes a byte-level string stands for, or undefined when it has a character outside the table. */
export function byteLevelToBytes(text: string): Uint8Array | undefined {
  const bytes: number[] = [];
  for (const char of text) {
    const byte = CHAR_TO_BYTE.get(char);
    if (byte === undefined) return undefined;
    bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}
