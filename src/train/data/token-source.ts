import { closeSync, openSync, readSync } from 'node:fs';

/** A read-only sequence of token ids, read a window at a time. */
export interface TokenSource {
  readonly length: number;
  /** Ids in [start, end). */
  slice(start: number, end: number): Int32Array;
}

type IdArray = Int32Array | Uint16Array | Uint32Array;

export function arrayTokenSource(ids: IdArray | readonly number[]): TokenSource {
  const array = Array.isArray(ids) ? Int32Array.from(ids) : (ids as IdArray);
  return {
    length: array.length,
    slice(start, end) {
      checkRange(start, end, array.length);
      return new Int32Array(array.subarray(start, end));
    },
  };
}

/** Ids stored little-endian with `bytesPerToken` bytes each, from `dataOffset` on; read on demand. */
export function fileTokenSource(path: string, dataOffset: number, bytesPerToken: 2 | 4, length: number): TokenSource {
  return {
    length,
    slice(start, end) {
      checkRange(start, end, length);
      const bytes = new Uint8Array((end - start) * bytesPerToken);
      const fd = openSync(path, 'r');
      try {
        let done = 0;
        while (done < bytes.length) {
          const read = readSync(fd, bytes, done, bytes.length - done, dataOffset + start * bytesPerToken + done);
          if (read === 0) throw new Error(`token file ${path} is shorter than its header says`);
          done += read;
        }
      } finally {
        closeSync(fd);
      }
      return new Int32Array(bytesPerToken === 2 ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer));
    },
  };
}

/** The ids [offset, offset + length) of another source. */
export function subTokenSource(source: TokenSource, offset: number, length: number): TokenSource {
  checkRange(offset, offset + length, source.length);
  return {
    length,
    slice(start, end) {
      checkRange(start, end, length);
      return source.slice(offset + start, offset + end);
    },
  };
}

function checkRange(start: number, end: number, length: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > length) {
    throw new RangeError(`token range [${start}, ${end}) is outside [0, ${length})`);
  }
}
