import { FerryError } from '../../errors.ts';
import { concatBytes } from '../../tokenizer/utf8.ts';

/**
 * Decodes a file's bytes as they stream in, chunk by chunk, rejecting invalid UTF-8 with the
 * byte offset where it is. A chunk may end inside a character: its first bytes wait for the next.
 * A leading byte order mark is dropped.
 */
export function createUtf8StreamDecoder(fileLabel: string) {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let carry = new Uint8Array(0);
  let offset = 0;

  function write(chunk: Uint8Array): string {
    // Text never holds NUL; binary files (executables, images, archives) do, near their start (git's test too).
    if (offset < BINARY_SNIFF_BYTES && chunk.subarray(0, BINARY_SNIFF_BYTES - offset).includes(0)) throw binaryFile(fileLabel);
    const bytes = carry.length === 0 ? chunk : concatBytes([carry, chunk]);
    const end = completeCharactersEnd(bytes);
    const complete = bytes.subarray(0, end);
    carry = bytes.slice(end);
    let text: string;
    try {
      text = decoder.decode(complete);
    } catch {
      const bad = firstInvalidUtf8(complete);
      throw invalidUtf8(fileLabel, offset + Math.max(0, bad), complete[bad] ?? 0);
    }
    if (offset === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    offset += end;
    return text;
  }

  function end(): void {
    if (carry.length > 0) throw invalidUtf8(fileLabel, offset, carry[0]!, 'the file ends inside a character');
  }

  return { write, end };
}

/** Where the last whole character of `bytes` ends (invalid bytes count as whole, for the validator to find). */
function completeCharactersEnd(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 4); i--) {
    const byte = bytes[i]!;
    if ((byte & 0xc0) === 0x80) continue;
    const length = byte >= 0xf0 && byte <= 0xf4 ? 4 : byte >= 0xe0 && byte <= 0xef ? 3 : byte >= 0xc2 && byte <= 0xdf ? 2 : 1;
    return i + length > bytes.length ? i : bytes.length;
  }
  return bytes.length;
}

/** Index of the first byte that does not start a well-formed UTF-8 sequence (Unicode table 3-7), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const trail = lead >= 0xc2 && lead <= 0xdf ? 1 : lead >= 0xe0 && lead <= 0xef ? 2 : lead >= 0xf0 && lead <= 0xf4 ? 3 : -1;
    if (trail < 0) return i;
    const second = bytes[i + 1];
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (second === undefined || second < low || second > high) return i;
    for (let k = 2; k <= trail; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
    }
    i += trail + 1;
  }
  return -1;
}

/** How far into a file a NUL byte marks it as binary. */
const BINARY_SNIFF_BYTES = 8000;

function binaryFile(fileLabel: string): FerryError {
  return new FerryError('corpus_binary', `${fileLabel} looks like a binary file, not text (it holds NUL bytes)`, {
    hint: 'Give a text file, a .gz of one, or a directory of them.',
  });
}

function invalidUtf8(fileLabel: string, offset: number, byte: number, detail?: string): FerryError {
  const what = detail ?? `byte 0x${byte.toString(16).padStart(2, '0')} does not start a valid character`;
  return new FerryError('corpus_invalid_utf8', `${fileLabel} is not valid UTF-8 at byte offset ${offset}: ${what}`, {
    hint: 'Convert the corpus to UTF-8 (for example: iconv -f latin1 -t utf-8 in.txt > out.txt).',
  });
}
