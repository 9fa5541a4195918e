import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { FerryError } from '../../errors.ts';
import { createUtf8StreamDecoder } from './utf8.ts';

const CHUNK_BYTES = 1 << 20;

interface CorpusFile {
  readonly path: string;
  readonly gzip: boolean;
}

/**
 * A corpus as a stream of text: a text file, a `.gz` file, or a directory whose `.txt` (and
 * `.txt.gz`) files are read in name order and joined as they are. Never holds more than a chunk.
 * Invalid UTF-8 and a missing, unreadable or empty corpus are FerryErrors.
 */
export async function* readCorpus(path: string): AsyncGenerator<string> {
  let characters = 0;
  for (const file of await corpusFiles(path)) {
    const decoder = createUtf8StreamDecoder(file.gzip ? `${file.path} (decompressed)` : file.path);
    for await (const chunk of fileBytes(file)) {
      const text = decoder.write(chunk);
      characters += text.length;
      if (text !== '') yield text;
    }
    decoder.end();
  }
  if (characters === 0) {
    throw new FerryError('corpus_empty', `the corpus ${path} is empty`, { hint: 'Give a corpus with some text in it.' });
  }
}

/** `sha256:<hex>` of the corpus bytes (decompressed, files joined), which keys the token cache. */
export async function hashCorpus(path: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await corpusFiles(path)) {
    for await (const chunk of fileBytes(file)) hash.update(chunk);
  }
  return `sha256:${hash.digest('hex')}`;
}

async function corpusFiles(path: string): Promise<CorpusFile[]> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw unreadable(path, error);
  });
  if (info.isFile()) return [{ path, gzip: /\.gz$/i.test(path) }];
  if (!info.isDirectory()) throw unreadable(path, new Error('not a file or directory'));
  const entries = await readdir(path, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw unreadable(path, error);
  });
  const candidates = entries
    .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && /\.txt(\.gz)?$/i.test(entry.name))
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // A symbolic link counts when it leads to a file.
  const isFile = await Promise.all(candidates.map((name) => stat(join(path, name)).then((target) => target.isFile(), () => false)));
  const names = candidates.filter((_, i) => isFile[i]);
  if (names.length === 0) {
    throw new FerryError('corpus_empty', `the corpus directory ${path} has no .txt files`, {
      hint: 'Put the corpus in .txt (or .txt.gz) files, or give the path of one file.',
    });
  }
  return names.map((name) => ({ path: join(path, name), gzip: name.toLowerCase().endsWith('.gz') }));
}

async function* fileBytes(file: CorpusFile): AsyncGenerator<Uint8Array> {
  const raw = createReadStream(file.path, { highWaterMark: CHUNK_BYTES });
  const stream = file.gzip ? raw.pipe(createGunzip({ chunkSize: CHUNK_BYTES })) : raw;
  if (file.gzip) raw.on('error', (error) => stream.destroy(error));
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
  } catch (error) {
    if (error instanceof FerryError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (file.gzip && typeof code === 'string' && code.startsWith('Z_')) {
      throw new FerryError('corpus_unreadable', `${file.path} is not a valid gzip file: ${(error as Error).message}`, {
        hint: 'Check the file (gzip -t), or give the uncompressed text.',
        cause: error,
      });
    }
    throw unreadable(file.path, error as NodeJS.ErrnoException);
  } finally {
    raw.destroy();
  }
}

function unreadable(path: string, error: NodeJS.ErrnoException): FerryError {
  if (error.code === 'ENOENT') {
    return new FerryError('corpus_not_found', `the corpus ${path} does not exist`, {
      hint: 'Give the path of a text file, a .gz file or a directory of .txt files.',
      cause: error,
    });
  }
  return new FerryError('corpus_unreadable', `cannot read the corpus ${path}: ${error.message}`, {
    hint: 'Check that the path is a readable file or directory.',
    cause: error,
  });
}
