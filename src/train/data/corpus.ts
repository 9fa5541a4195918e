import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import { FerryError } from '../../errors.ts';
import { createUtf8StreamDecoder } from './utf8.ts';

const CHUNK_BYTES = 1 << 20;

export interface CorpusFile {
  readonly path: string;
  readonly gzip: boolean;
}

/** JSON Lines (one `{"text": ...}` object per line, as Hugging Face datasets export them), gzipped or not. */
const JSON_LINES = /\.jsonl(\.gz)?$/i;

/**
 * A corpus as a stream of text: a text file, a `.gz` file, a `.jsonl` file (the `text` field of
 * each line, a newline after each), or a directory whose `.txt`, `.md` and `.jsonl` files
 * (gzipped or not, subfolders included; see listCorpus) are read in path order and joined as
 * they are. Never holds more than a chunk. Invalid UTF-8, a JSON line without a `text` string
 * and a missing, unreadable or empty corpus are FerryErrors.
 */
export async function* readCorpus(path: string): AsyncGenerator<string> {
  let characters = 0;
  for (const file of await corpusFiles(path)) {
    const decoder = createUtf8StreamDecoder(file.gzip ? `${file.path} (decompressed)` : file.path);
    const texts = JSON_LINES.test(file.path) ? jsonLinesText(file.path) : undefined;
    for await (const chunk of fileBytes(file)) {
      const text = texts ? texts.write(decoder.write(chunk)) : decoder.write(chunk);
      characters += text.length;
      if (text !== '') yield text;
    }
    decoder.end();
    const rest = texts?.end() ?? '';
    characters += rest.length;
    if (rest !== '') yield rest;
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

/**
 * The text of JSON Lines fed in pieces: each complete line's `text` field and a newline; blank
 * lines are skipped. A line that is not an object with a `text` string names its file and line.
 */
function jsonLinesText(path: string): { write(piece: string): string; end(): string } {
  let partial = '';
  let lineNumber = 0;
  const textOf = (line: string): string => {
    lineNumber++;
    if (line.trim() === '') return '';
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw badLine(`is not JSON`);
    }
    const text = (value as { text?: unknown } | null)?.text;
    if (typeof text !== 'string') throw badLine('has no "text" string field');
    return `${text}\n`;
  };
  const badLine = (problem: string) => new FerryError('corpus_bad_jsonl', `${path}, line ${lineNumber}: the line ${problem}`, {
    hint: 'A .jsonl corpus holds one JSON object per line with the text in "text", e.g. {"text": "..."}.',
  });
  return {
    write(piece) {
      const lines = (partial + piece).split('\n');
      partial = lines.pop()!;
      return lines.map(textOf).join('');
    },
    end() {
      const last = partial;
      partial = '';
      return textOf(last);
    },
  };
}

/** Files a corpus dir's text is read from: plain text, Markdown and JSON Lines, gzipped or not. */
const TEXT_FILE = /\.(txt|md|jsonl)(\.gz)?$/i;

/** What a corpus dir holds: the files read, in path order, and the entries skipped (paths relative to the dir). */
export interface CorpusListing {
  files: CorpusFile[];
  skipped: string[];
}

async function corpusFiles(path: string): Promise<CorpusFile[]> {
  return (await listCorpus(path)).files;
}

/**
 * The files of a corpus: the path itself when it is a file; for a directory, every .txt, .md and .jsonl
 * (and .txt.gz, .md.gz, .jsonl.gz) file in it and its subfolders, by path. Hidden entries, other files and
 * links to folders are skipped (and listed as such).
 */
export async function listCorpus(path: string): Promise<CorpusListing> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw unreadable(path, error);
  });
  if (info.isFile()) return { files: [{ path, gzip: /\.gz$/i.test(path) }], skipped: [] };
  if (!info.isDirectory()) throw unreadable(path, new Error('not a file or directory'));
  const files: string[] = [];
  const skipped: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(join(path, relative), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      throw unreadable(join(path, relative), error);
    });
    for (const entry of entries) {
      const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.name.startsWith('.')) skipped.push(entry.isDirectory() ? `${name}/` : name);
      else if (entry.isDirectory()) await walk(name);
      else if (!TEXT_FILE.test(entry.name)) skipped.push(entry.isSymbolicLink() ? `${name} (a link)` : name);
      // A symbolic link counts when it leads to a file; links to folders are not followed (no loops).
      else if (entry.isFile() || (await stat(join(path, name)).then((target) => target.isFile(), () => false))) files.push(name);
      else skipped.push(`${name} (not a file)`);
    }
  };
  await walk('');
  const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  files.sort(byPath);
  skipped.sort(byPath);
  if (files.length === 0) {
    throw new FerryError('corpus_empty', `the corpus directory ${path} has no .txt, .md or .jsonl files${skipped.length ? ` (it holds ${listed(skipped)})` : ''}`, {
      hint: 'Put the corpus in .txt, .md or .jsonl files (gzipped or not), in the directory or its subfolders, or give the path of one file.',
    });
  }
  return { files: files.map((name) => ({ path: join(path, name), gzip: name.toLowerCase().endsWith('.gz') })), skipped };
}

/** One line saying what a corpus dir contributed, for the log; undefined for a single file. */
export async function describeCorpus(path: string): Promise<string | undefined> {
  // A missing or unreadable path is readCorpus's to report, with its own message.
  if (!(await stat(path).then((info) => info.isDirectory(), () => false))) return undefined;
  const { files, skipped } = await listCorpus(path);
  const names = files.map((file) => relative(path, file.path).split(sep).join('/'));
  return `corpus ${path}: read ${files.length} file${files.length === 1 ? '' : 's'} (${listed(names)})` +
    (skipped.length ? `; skipped ${skipped.length} (${listed(skipped)}), which are not .txt, .md or .jsonl` : '');
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

/** The bytes of a corpus file, decompressed when gzipped; read errors are FerryErrors naming the file. */
export async function* fileBytes(file: CorpusFile): AsyncGenerator<Uint8Array> {
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
