import { FerryError } from '../../errors.ts';
import { concatBytes } from '../../tokenizer/utf8.ts';
import { fileBytes } from './corpus.ts';
import { firstInvalidUtf8 } from './utf8.ts';

export interface NumberedLine {
  /** The line without its `\n` (and without a `\r` before it: Windows files read the same). */
  readonly text: string;
  /** 1-based. */
  readonly line: number;
}

const NEWLINE = 0x0a;

/**
 * The lines of a text file (gzipped when its name ends in .gz), streamed. Invalid UTF-8 is a
 * FerryError naming the file, line and column; a leading byte order mark is dropped. A last line
 * without `\n` counts; the empty line after a final `\n` does not.
 */
export async function* fileLines(path: string): AsyncGenerator<NumberedLine> {
  const gzip = /\.gz$/i.test(path);
  const label = gzip ? `${path} (decompressed)` : path;
  // Each decode() starts afresh, so the byte order mark is dropped by hand, at the file's start only.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let carry = new Uint8Array(0);
  let line = 0;
  const decode = (bytes: Uint8Array): string[] => {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw invalidUtf8(label, bytes, line);
    }
    if (line === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return text.split('\n');
  };
  for await (const chunk of fileBytes({ path, gzip })) {
    const bytes = carry.length === 0 ? chunk : concatBytes([carry, chunk]);
    const end = bytes.lastIndexOf(NEWLINE);
    if (end < 0) {
      carry = bytes.slice();
      continue;
    }
    // Whole lines only: a chunk may end inside a character or a line.
    const texts = decode(bytes.subarray(0, end));
    carry = bytes.slice(end + 1);
    for (const text of texts) yield { text: withoutCr(text), line: ++line };
  }
  if (carry.length > 0) {
    const [text] = decode(carry);
    yield { text: withoutCr(text!), line: ++line };
  }
}

function withoutCr(text: string): string {
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

/** The line and column (in bytes, 1-based) of the first invalid byte of `bytes`, whose first line is `linesBefore + 1`. */
function invalidUtf8(label: string, bytes: Uint8Array, linesBefore: number): FerryError {
  const bad = Math.max(0, firstInvalidUtf8(bytes));
  let line = linesBefore + 1;
  let lineStart = 0;
  for (let i = 0; i < bad; i++) {
    if (bytes[i] === NEWLINE) {
      line++;
      lineStart = i + 1;
    }
  }
  const byte = bytes[bad] ?? 0;
  return new FerryError('pairs_invalid_utf8', `${label}, line ${line}: not valid UTF-8 (byte 0x${byte.toString(16).padStart(2, '0')} at column ${bad - lineStart + 1} does not start a valid character)`, {
    hint: 'Convert the file to UTF-8 (for example: iconv -f latin1 -t utf-8 in.tsv > out.tsv).',
  });
}
