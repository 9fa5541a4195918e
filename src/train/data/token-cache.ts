import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError } from '../../errors.ts';
import { textInSafePieces, type Tokenizer } from '../../tokenizer/index.ts';
import { hashCorpus, readCorpus } from './corpus.ts';
import { arrayTokenSource, fileTokenSource, type TokenSource } from './token-source.ts';

export interface PreparedTokens {
  readonly tokens: TokenSource;
  /** `sha256:<hex>` of the corpus bytes. */
  readonly corpusHash: string;
  readonly cachePath: string;
  /** True when the token file was already there and nothing was tokenized. */
  readonly cached: boolean;
}

/*
 * Token file: a 96-byte header, then the ids little-endian (uint16 when the vocabulary fits, else uint32).
 *   0 "FERRYTOK"   8 u32 version   12 u32 bytes per token   16 u64 token count
 *  24 u32 vocab size   28 u32 zero   32 sha256 of the corpus   64 sha256 of tokenizer.json
 */
const MAGIC = 'FERRYTOK';
const VERSION = 1;
const HEADER_BYTES = 96;
// Token files up to this size are read into memory; larger ones are read a window at a time.
const IN_MEMORY_BYTES = 256 * 1024 * 1024;

/**
 * Tokenizes a corpus once, as a stream, into a token file in `cacheDir` named after the corpus
 * and tokenizer hashes; later calls with the same corpus and tokenizer read that file.
 */
export async function prepareTokens(options: { corpusPath: string; tokenizer: Tokenizer; cacheDir: string }): Promise<PreparedTokens> {
  const { corpusPath, tokenizer, cacheDir } = options;
  const corpusHash = await hashCorpus(corpusPath);
  const corpusDigest = Buffer.from(corpusHash.slice('sha256:'.length), 'hex');
  const tokenizerDigest = createHash('sha256').update(JSON.stringify(tokenizer.toJSON())).digest();
  const cachePath = join(cacheDir, `tokens-${corpusDigest.toString('hex').slice(0, 16)}-${tokenizerDigest.toString('hex').slice(0, 16)}.bin`);
  const header = { corpusDigest, tokenizerDigest, vocabSize: tokenizer.vocabSize, bytesPerToken: tokenizer.vocabSize <= 65536 ? 2 : 4 } as const;

  const existing = await openTokenFile(cachePath, header);
  if (existing) return { tokens: existing, corpusHash, cachePath, cached: true };

  await writeTokenFile(cachePath, corpusPath, tokenizer, header);
  const written = await openTokenFile(cachePath, header);
  if (!written) throw new Error(`token file ${cachePath} did not read back`);
  return { tokens: written, corpusHash, cachePath, cached: false };
}

interface HeaderFields {
  readonly corpusDigest: Buffer;
  readonly tokenizerDigest: Buffer;
  readonly vocabSize: number;
  readonly bytesPerToken: 2 | 4;
}

async function writeTokenFile(path: string, corpusPath: string, tokenizer: Tokenizer, fields: HeaderFields): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const file = await mkdir(dirname(path), { recursive: true })
    .then(() => open(temp, 'w'))
    .catch((error: Error) => {
      throw new FerryError('cache_unwritable', `cannot write the token cache in ${dirname(path)}: ${error.message}`, {
        hint: 'Give a writable cache directory.',
        cause: error,
      });
    });
  try {
    let count = 0;
    let position = HEADER_BYTES;
    for await (const piece of textInSafePieces(readCorpus(corpusPath))) {
      const ids = tokenizer.encode(piece);
      const array = fields.bytesPerToken === 2 ? Uint16Array.from(ids) : Uint32Array.from(ids);
      await file.write(new Uint8Array(array.buffer), 0, array.byteLength, position);
      position += array.byteLength;
      count += ids.length;
    }
    await file.write(encodeHeader(fields, count), 0, HEADER_BYTES, 0);
    await file.close();
    await rename(temp, path);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}

function encodeHeader(fields: HeaderFields, count: number): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, fields.bytesPerToken, true);
  view.setBigUint64(16, BigInt(count), true);
  view.setUint32(24, fields.vocabSize, true);
  bytes.set(fields.corpusDigest, 32);
  bytes.set(fields.tokenizerDigest, 64);
  return bytes;
}

/** The token file's ids, or undefined when it is missing or was not made from this corpus and tokenizer. */
async function openTokenFile(path: string, expected: HeaderFields): Promise<TokenSource | undefined> {
  const size = await stat(path).then((info) => info.size, () => undefined);
  if (size === undefined || size < HEADER_BYTES) return undefined;
  const file = await open(path, 'r');
  try {
    const header = new Uint8Array(HEADER_BYTES);
    await readFully(file, header, 0);
    const view = new DataView(header.buffer);
    const count = Number(view.getBigUint64(16, true));
    const matches =
      new TextDecoder().decode(header.subarray(0, 8)) === MAGIC &&
      view.getUint32(8, true) === VERSION &&
      view.getUint32(12, true) === expected.bytesPerToken &&
      view.getUint32(24, true) === expected.vocabSize &&
      expected.corpusDigest.equals(header.subarray(32, 64)) &&
      expected.tokenizerDigest.equals(header.subarray(64, 96)) &&
      size === HEADER_BYTES + count * expected.bytesPerToken;
    if (!matches) return undefined;
    if (size - HEADER_BYTES > IN_MEMORY_BYTES) return fileTokenSource(path, HEADER_BYTES, expected.bytesPerToken, count);
    const data = new Uint8Array(size - HEADER_BYTES);
    await readFully(file, data, HEADER_BYTES);
    return arrayTokenSource(expected.bytesPerToken === 2 ? new Uint16Array(data.buffer) : new Uint32Array(data.buffer));
  } finally {
    await file.close();
  }
}

async function readFully(file: FileHandle, into: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error('token file ended early');
    done += bytesRead;
  }
}
