/**
 * Pre-tokenized corpora as nanoGPT's prepare.py writes them (train.bin / val.bin): a flat array of
 * token ids, little-endian uint16, no header. The ids are only meaningful with the tokenizer that
 * produced them (a tokenizer.json, e.g. from Hugging Face tokenizers run on a cluster), so the
 * file is checked against that tokenizer's vocabulary as it is hashed, and then read a window at
 * a time, never whole.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { FerryError } from '../../errors.ts';
import { fileTokenSource, type TokenSource } from './token-source.ts';

/** A corpus path that names a pre-tokenized file. */
export const TOKEN_BIN = /\.bin$/i;
const BYTES_PER_TOKEN = 2;

export interface TokenBin {
  tokens: TokenSource;
  /** sha256 of the file's bytes, as hashCorpus gives for text. */
  corpusHash: string;
}

export async function openTokenBin(path: string, vocabSize: number): Promise<TokenBin> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new FerryError('corpus_not_found', `${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}.`, { hint: 'Give the .bin file of token ids (--corpus).' });
  });
  if (!info.isFile() || info.size === 0 || info.size % BYTES_PER_TOKEN !== 0) {
    throw new FerryError('corpus_bad_tokens', `${path} is not a file of uint16 token ids: it ${!info.isFile() ? 'is not a file' : `has ${info.size} bytes, ${info.size === 0 ? 'none' : 'an odd number'}`}.`, {
      hint: 'A .bin corpus is nanoGPT\'s format: token ids as little-endian uint16, nothing else.',
    });
  }
  const hash = createHash('sha256');
  let position = 0;
  let carry: number | undefined;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    let offset = 0;
    if (carry !== undefined) {
      checkId(carry | (chunk[0]! << 8), position++, path, vocabSize);
      offset = 1;
      carry = undefined;
    }
    for (; offset + 1 < chunk.length; offset += 2) checkId(chunk[offset]! | (chunk[offset + 1]! << 8), position++, path, vocabSize);
    if (offset < chunk.length) carry = chunk[offset]!;
  }
  return { tokens: fileTokenSource(path, 0, BYTES_PER_TOKEN, info.size / BYTES_PER_TOKEN), corpusHash: `sha256:${hash.digest('hex')}` };
}

function checkId(id: number, position: number, path: string, vocabSize: number): void {
  if (id >= vocabSize) {
    throw new FerryError('corpus_bad_tokens', `${path}: token ${position} is id ${id}, outside the tokenizer's ${vocabSize} ids.`, {
      hint: 'Give the tokenizer.json that produced the file (--tokenizer-file).',
    });
  }
}
