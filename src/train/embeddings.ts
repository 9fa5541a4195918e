/**
 * Pretrained word vectors for a run's token embedding (`ferry train --init-embeddings FILE`):
 * GloVe and word2vec text files (an optional "count dim" header line) and word2vec binary files,
 * plain or gzipped. The file is streamed and only the vectors of the vocabulary's tokens are
 * kept, so a GloVe file of gigabytes costs the memory of the vocabulary's rows, not the file's.
 *
 * Alignment: a token stands for the text of its bytes with the surrounding whitespace removed
 * (word tokens keep their leading space, " the"; byte-level BPE tokens write it as "Ġthe"; both
 * are the word "the"). The file's word equal to that text wins; else a word equal to it in lower
 * case (preferring the file's all-lowercase spelling, then its first). Tokens with no vector
 * (whitespace tokens, BPE pieces that are not whole characters, words the file lacks) keep the
 * model's seeded random initialisation.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { concatBytes } from '../tokenizer/utf8.ts';
import { fileBytes } from './data/corpus.ts';
import { fileLines } from './data/pair-lines.ts';
import type { ModelConfig } from './models/index.ts';

/** The layer both architectures keep their token table in (weight `embeddings`, [vocabSize, width]). */
export const EMBEDDING_LAYER = 'token_embedding';

export type EmbeddingsFormat = 'text' | 'word2vec-binary';

/** What `--init-embeddings` gave a run: in its log, state.json and ferry.json (`training.embeddings`). */
export interface EmbeddingsCoverage {
  file: string;
  format: EmbeddingsFormat;
  dim: number;
  /** Vectors in the file (entries whose word has spaces included). */
  vectors: number;
  /** The vocabulary's size. */
  tokens: number;
  /** Tokens whose row is the file's vector. */
  found: number;
  /** Of `found`, those matched by the lowercase fallback. */
  lowercase: number;
  /** Tokens that keep the seeded random initialisation. */
  random: number;
  /** `--freeze-embeddings`: AdamW never updates the table. */
  frozen: boolean;
}

export interface PretrainedEmbeddings {
  coverage: EmbeddingsCoverage;
  /** The file's vector for each token id, or null where the row keeps its random initialisation. */
  rows: (Float32Array | null)[];
  /** A few of the tokens without a vector, as they read, for the log. */
  missingExamples: string[];
}

/** The width of a config's token embedding. */
export function embeddingWidth(config: ModelConfig): number {
  return config.arch === 'lstm' ? config.embeddingDim : config.nEmbd;
}

/** A new run's problems with the two flags, in flag names (checked before the corpus is read). */
export function embeddingFlagProblems(initEmbeddings: string | undefined, freeze: boolean | undefined): string[] {
  const problems: string[] = [];
  if (freeze === true && initEmbeddings === undefined) {
    problems.push('--freeze-embeddings needs --init-embeddings FILE (frozen random embeddings would never learn)');
  }
  if (initEmbeddings !== undefined) {
    if (!existsSync(initEmbeddings)) problems.push(`--init-embeddings ${initEmbeddings} does not exist`);
    else if (!statSync(initEmbeddings).isFile()) problems.push(`--init-embeddings ${initEmbeddings} is not a file`);
  }
  return problems;
}

/** --init-embeddings on --resume: the run's embedding was set when it started, and has trained since. */
export function refuseEmbeddingsOnResume(initEmbeddings: string | undefined, saved: EmbeddingsCoverage | undefined): void {
  if (initEmbeddings === undefined) return;
  throw new FerryError('resume_mismatch', `Cannot resume with --init-embeddings ${initEmbeddings}: a resumed run keeps its weights${saved ? ` (its embedding came from ${saved.file})` : ''}.`, {
    hint: 'Drop --init-embeddings, or start a new run in another --out.',
  });
}

/**
 * The file's vectors for the tokenizer's vocabulary. Throws one FerryError for a file of another
 * dimension than `width` (as soon as the header or first line shows it) and for a bad file (with
 * the line, or for binary files the vector and byte offset).
 */
export async function readPretrainedEmbeddings(file: string, tokenizer: Tokenizer, width: number, options: { frozen?: boolean } = {}): Promise<PretrainedEmbeddings> {
  const words = Array.from({ length: tokenizer.vocabSize }, (_, id) => tokenWord(tokenizer.tokenBytes(id)));
  const matcher = createMatcher(words);
  const gzip = /\.gz$/i.test(file);
  const { format } = await sniffFormat(file, gzip);
  const checkDim = (dim: number) => checkDimension(file, dim, width);
  const { dim, vectors } = format === 'text'
    ? await readText(file, matcher, checkDim)
    : await readBinary(file, gzip, matcher, checkDim);
  const rows: (Float32Array | null)[] = [];
  let lowercase = 0;
  const missingExamples: string[] = [];
  words.forEach((word, id) => {
    const exact = word === undefined ? undefined : matcher.exact.get(word);
    const lower = word === undefined || exact ? undefined : matcher.lower.get(word.toLowerCase())?.vector;
    if (lower) lowercase += 1;
    const row = exact ?? lower ?? null;
    if (!row && missingExamples.length < MISSING_EXAMPLES) missingExamples.push(new TextDecoder().decode(tokenizer.tokenBytes(id)));
    rows.push(row);
  });
  const found = rows.filter((row) => row !== null).length;
  return {
    // Absolute, as the corpus is: ferry.json records where the vectors came from.
    coverage: { file: resolve(file), format, dim, vectors, tokens: words.length, found, lowercase, random: words.length - found, frozen: options.frozen === true },
    rows,
    missingExamples,
  };
}

const MISSING_EXAMPLES = 6;

/**
 * The dimension check alone, from the file's first line: run before the corpus is tokenized, so
 * that a file of the wrong width fails at once. Whatever else is wrong with the file is for
 * readPretrainedEmbeddings to say.
 */
export async function checkEmbeddingsWidth(file: string, width: number): Promise<void> {
  const { dim } = await sniffFormat(file, /\.gz$/i.test(file));
  if (dim !== undefined) checkDimension(file, dim, width);
}

function checkDimension(file: string, dim: number, width: number): void {
  if (dim === width) return;
  throw new FerryError('embeddings_dim_mismatch', `--init-embeddings ${file} holds ${dim}-dimensional vectors, but the model's embedding width is ${width}.`, {
    hint: `Train with --embd ${dim}, or give a file of ${width}-dimensional vectors.`,
  });
}

/** The log lines of a run's embeddings: the coverage in the form users grep for, then the details. */
export function describeEmbeddings(embeddings: PretrainedEmbeddings, config: ModelConfig): string[] {
  const { file, found, tokens, random, lowercase, frozen, format, vectors } = embeddings.coverage;
  const count = (n: number) => n.toLocaleString('en');
  const percent = tokens === 0 ? '0.0' : ((100 * found) / tokens).toFixed(1);
  const lines = [`embeddings: ${count(found)} of ${count(tokens)} tokens found in ${file} (${percent}%), ${count(random)} random`];
  const examples = embeddings.missingExamples.map((token) => JSON.stringify(token)).join(', ');
  lines.push(
    `embeddings: ${format === 'text' ? 'text' : 'word2vec binary'} file of ${count(vectors)} vectors; ${count(lowercase)} token${lowercase === 1 ? '' : 's'} matched in lower case` +
      (random > 0 ? `; the ${count(random)} without a vector keep the seeded random init (${examples}${random > embeddings.missingExamples.length ? ', ...' : ''})` : ''),
  );
  if (frozen) {
    lines.push(`embeddings: frozen (--freeze-embeddings): AdamW does not update ${EMBEDDING_LAYER}` +
      (config.tieWeights ? ', which the tied output layer shares, so the output projection stays fixed too' : ''));
  }
  return lines;
}

/** Writes the file's vectors into the model's token table; rows without one keep their values. */
export function applyEmbeddings(model: tf.LayersModel, embeddings: PretrainedEmbeddings): void {
  const layer = model.getLayer(EMBEDDING_LAYER);
  const [table, ...rest] = layer.getWeights();
  const [vocabSize, dim] = table!.shape as [number, number];
  if (vocabSize !== embeddings.rows.length || dim !== embeddings.coverage.dim) {
    throw new Error(`the embedding table is ${vocabSize}x${dim}, the pretrained rows ${embeddings.rows.length}x${embeddings.coverage.dim}`);
  }
  const values = Float32Array.from(table!.dataSync() as Float32Array);
  embeddings.rows.forEach((row, id) => {
    if (row) values.set(row, id * dim);
  });
  const updated = tf.tensor2d(values, [vocabSize, dim]);
  layer.setWeights([updated, ...rest]);
  updated.dispose();
}

/** The weights AdamW trains: all trainable ones, less the token table when it is frozen. */
export function trainedWeights(model: tf.LayersModel, freezeEmbeddings: boolean): tf.LayerVariable[] {
  if (!freezeEmbeddings) return model.trainableWeights;
  const frozen = new Set(model.getLayer(EMBEDDING_LAYER).trainableWeights.map((weight) => weight.name));
  return model.trainableWeights.filter((weight) => !frozen.has(weight.name));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The word a token stands for: its text without surrounding whitespace; none for whitespace or partial characters. */
export function tokenWord(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  const word = text.trim();
  return word === '' ? undefined : word;
}

interface Matcher {
  /** The vectors kept, by the file's word. */
  exact: Map<string, Float32Array>;
  /** By lower-case word; `own`: the file's word was itself lower case. */
  lower: Map<string, { vector: Float32Array; own: boolean }>;
  /** Whether the file's word has a token (exactly or in lower case): only then is its vector kept. */
  wanted(word: string): boolean;
  offer(word: string, vector: Float32Array): void;
}

function createMatcher(words: readonly (string | undefined)[]): Matcher {
  const exactWords = new Set<string>();
  const lowerWords = new Set<string>();
  for (const word of words) {
    if (word === undefined) continue;
    exactWords.add(word);
    lowerWords.add(word.toLowerCase());
  }
  const exact = new Map<string, Float32Array>();
  const lower = new Map<string, { vector: Float32Array; own: boolean }>();
  return {
    exact,
    lower,
    wanted: (word) => exactWords.has(word) || lowerWords.has(word.toLowerCase()),
    offer(word, vector) {
      // A word listed twice: its first vector counts, as in word2vec's own reader.
      if (exactWords.has(word) && !exact.has(word)) exact.set(word, vector);
      const key = word.toLowerCase();
      if (!lowerWords.has(key)) return;
      const own = key === word;
      const held = lower.get(key);
      if (!held || (own && !held.own)) lower.set(key, { vector, own });
    },
  };
}

const HEADER = /^[ \t]*(\d+)[ \t]+(\d+)[ \t]*\r?$/;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FIELD_SEPARATOR = /[ \t]+/;
/** Bytes of a text file's numbers, whitespace and nan/inf spellings: the first vector of a binary file has others. */
const TEXT_BYTES = new Set([...'0123456789+-.eE \t\r\nnaifNAIFty'].map((char) => char.charCodeAt(0)));

function badFile(file: string, where: string, problem: string, hint = 'Check the file: GloVe / word2vec text (one "word v1 v2 ..." line per word, an optional "count dim" first line) or word2vec binary.'): FerryError {
  return new FerryError('embeddings_bad_file', `--init-embeddings ${file}, ${where}: ${problem}.`, { hint });
}

/**
 * Text unless the file starts with a "count dim" header followed by a word and bytes that are no
 * text numbers; and the dimension its first line gives (the header's, or the first vector's value count).
 */
async function sniffFormat(file: string, gzip: boolean): Promise<{ format: EmbeddingsFormat; dim: number | undefined }> {
  const chunks = fileBytes({ path: file, gzip });
  let head: Uint8Array = new Uint8Array(0);
  try {
    for await (const chunk of chunks) {
      head = concatBytes([head, chunk]);
      if (head.length >= 1 << 16) break;
    }
  } catch (error) {
    throw asEmbeddingsError(file, error);
  }
  const newline = head.indexOf(0x0a);
  const firstLine = new TextDecoder().decode(head.subarray(0, newline < 0 ? head.length : newline));
  const header = HEADER.exec(firstLine);
  if (!header) {
    const fields = firstLine.replace(/[ \t\r]+$/, '').split(FIELD_SEPARATOR);
    // A first line cut by the sniff's limit, or blank, tells nothing.
    return { format: 'text', dim: newline >= 0 && fields.length > 1 ? fields.length - 1 : undefined };
  }
  const dim = Number(header[2]) || undefined;
  if (newline < 0) return { format: 'text', dim };
  const space = head.indexOf(0x20, newline + 1);
  if (space < 0) return { format: 'text', dim };
  // A text file's first values, up to the end of the line, are number characters; a binary file's first float's bytes almost never all are.
  const values = head.subarray(space + 1, space + 1 + 4 * (dim ?? 0));
  const line = values.subarray(0, values.indexOf(0x0a) < 0 ? values.length : values.indexOf(0x0a));
  return { format: line.length > 0 && line.every((byte) => TEXT_BYTES.has(byte)) ? 'text' : 'word2vec-binary', dim };
}

/** fileBytes' and fileLines' errors, in the flag's words. */
function asEmbeddingsError(file: string, error: unknown): unknown {
  if (!(error instanceof FerryError)) return error;
  if (error.code === 'pairs_invalid_utf8') {
    return new FerryError('embeddings_bad_file', `--init-embeddings ${error.message.replace(/^.*?, (line \d+)/, `${file}, $1`)}.`, {
      hint: 'Word vector files are UTF-8; convert this one (for example: iconv -f latin1 -t utf-8 in.txt > out.txt).',
    });
  }
  if (error.code === 'corpus_not_found') return new FerryError('embeddings_not_found', `--init-embeddings ${file} does not exist.`, { hint: 'Give the path of a GloVe or word2vec file.' });
  if (error.code === 'corpus_unreadable') return new FerryError('embeddings_bad_file', `--init-embeddings ${file}: ${error.message.replace(/^.*?: /, '')}.`, { hint: error.hint });
  return error;
}

async function readText(file: string, matcher: Matcher, checkDim: (dim: number) => void): Promise<{ dim: number; vectors: number }> {
  let dim: number | undefined;
  let announced: number | undefined;
  let vectors = 0;
  let lastLine = 0;
  try {
    let plainValues: RegExp | undefined;
    for await (const { text, line } of fileLines(file)) {
      lastLine = line;
      // Most lines are words the vocabulary lacks: one pattern checks their values without splitting them.
      if (plainValues) {
        const end = text.search(FIELD_SEPARATOR);
        if (end > 0 && !matcher.wanted(text.slice(0, end)) && plainValues.test(text.slice(end))) {
          vectors += 1;
          if (announced !== undefined && vectors > announced) {
            throw badFile(file, `line ${line}`, `a vector more than the ${announced.toLocaleString('en')} its header announces`);
          }
          continue;
        }
      }
      const trimmed = text.replace(/[ \t\r]+$/, '');
      if (trimmed === '') continue;
      const fields = trimmed.split(FIELD_SEPARATOR);
      if (dim === undefined) {
        const header = HEADER.exec(trimmed);
        if (header) {
          announced = Number(header[1]);
          dim = Number(header[2]);
          if (dim === 0) throw badFile(file, `line ${line}`, 'the header announces vectors of 0 values');
          checkDim(dim);
          continue;
        }
        dim = fields.length - 1;
        if (dim === 0) throw badFile(file, `line ${line}`, `"${fields[0]}" has no values`);
        checkDim(dim);
      }
      plainValues ??= new RegExp(`^(?:[ \\t]+${NUMBER.source.slice(1, -1)}){${dim}}[ \\t\\r]*$`);
      vectors += 1;
      if (announced !== undefined && vectors > announced) {
        throw badFile(file, `line ${line}`, `a vector more than the ${announced.toLocaleString('en')} its header announces`);
      }
      const valueFields = fields.length - 1;
      if (valueFields !== dim) {
        // GloVe's 840B file has a few words with spaces (". . ."): no token is one, so they are passed over.
        const leading = fields.slice(1, fields.length - dim);
        const spaced = valueFields > dim && leading.some((field) => !NUMBER.test(field)) && fields.slice(-dim).every((field) => NUMBER.test(field));
        if (spaced) continue;
        throw badFile(file, `line ${line}`, `"${fields[0]}" has ${valueFields} value${valueFields === 1 ? '' : 's'}, expected ${dim} (as ${announced === undefined ? 'the first line has' : 'the header says'})`);
      }
      const word = fields[0]!;
      const keep = matcher.wanted(word);
      const vector = keep ? new Float32Array(dim) : undefined;
      for (let k = 0; k < dim; k += 1) {
        const field = fields[k + 1]!;
        if (!NUMBER.test(field)) throw badFile(file, `line ${line}`, `value ${k + 1} of "${word}" is ${JSON.stringify(field)}, not a number`);
        if (vector) vector[k] = Number(field);
      }
      if (vector) {
        if (!vector.every(Number.isFinite)) throw badFile(file, `line ${line}`, `a value of "${word}" is too large for float32`);
        matcher.offer(word, vector);
      }
    }
  } catch (error) {
    throw asEmbeddingsError(file, error);
  }
  if (dim === undefined) throw badFile(file, 'line 1', 'the file holds no vectors');
  if (announced !== undefined && vectors < announced) {
    throw badFile(file, `line ${lastLine}`, `the file ends after ${vectors.toLocaleString('en')} of the ${announced.toLocaleString('en')} vectors its header announces (truncated?)`);
  }
  return { dim, vectors };
}

/** A word2vec binary word longer than this is taken for a text file or garbage. */
const MAX_WORD_BYTES = 4096;

async function readBinary(file: string, gzip: boolean, matcher: Matcher, checkDim: (dim: number) => void): Promise<{ dim: number; vectors: number }> {
  const chunks = fileBytes({ path: file, gzip })[Symbol.asyncIterator]();
  let buffer: Uint8Array = new Uint8Array(0);
  let pos = 0;
  /** The file offset of buffer[0]. */
  let base = 0;
  let ended = false;
  /** Whether `n` bytes from `pos` are in the buffer (reading on as needed); false at the end of the file. */
  const fill = async (n: number): Promise<boolean> => {
    while (buffer.length - pos < n) {
      if (ended) return false;
      const next = await chunks.next();
      if (next.done) {
        ended = true;
        return false;
      }
      base += pos;
      buffer = concatBytes([buffer.subarray(pos), next.value]);
      pos = 0;
    }
    return true;
  };
  /** Offset from `pos` of the next `byte`, -1 at the end of the file, -2 when not within `max` bytes. */
  const find = async (byte: number, max: number): Promise<number> => {
    let from = 0;
    for (;;) {
      const at = buffer.subarray(pos + from, pos + Math.min(buffer.length - pos, max)).indexOf(byte);
      if (at >= 0) return from + at;
      from = buffer.length - pos;
      if (from >= max) return -2;
      if (!(await fill(from + 1))) return -1;
    }
  };
  try {
    const headerEnd = await find(0x0a, 256);
    const header = headerEnd < 0 ? null : HEADER.exec(new TextDecoder().decode(buffer.subarray(pos, pos + headerEnd)));
    if (!header) throw badFile(file, 'line 1', 'not a word2vec header ("count dim")');
    const count = Number(header[1]);
    const dim = Number(header[2]);
    if (dim === 0) throw badFile(file, 'line 1', 'the header announces vectors of 0 values');
    checkDim(dim);
    pos += headerEnd + 1;
    const vectorBytes = 4 * dim;
    const truncated = (index: number, inside: string) =>
      badFile(file, `vector ${index.toLocaleString('en')} (byte offset ${(base + pos).toLocaleString('en')})`,
        `the file ends ${inside} (${(index - 1).toLocaleString('en')} of the ${count.toLocaleString('en')} vectors its header announces are complete: truncated?)`);
    for (let index = 1; index <= count; index += 1) {
      // Each vector is followed by a newline (word2vec's writer) or nothing (some others).
      for (;;) {
        if (!(await fill(1))) throw truncated(index, 'before it');
        const byte = buffer[pos]!;
        if (byte !== 0x0a && byte !== 0x0d && byte !== 0x20 && byte !== 0x09) break;
        pos += 1;
      }
      const start = base + pos;
      const where = () => `vector ${index.toLocaleString('en')} (byte offset ${start.toLocaleString('en')})`;
      const space = await find(0x20, MAX_WORD_BYTES);
      if (space === -1) throw truncated(index, 'inside its word');
      if (space === -2) throw badFile(file, where(), `no space ends the word within ${MAX_WORD_BYTES.toLocaleString('en')} bytes: not a word2vec binary file, or a damaged one`);
      let word: string;
      try {
        word = strictUtf8.decode(buffer.subarray(pos, pos + space));
      } catch {
        throw badFile(file, where(), 'its word is not valid UTF-8', 'Word vector files are UTF-8; convert this one, or write it again as UTF-8.');
      }
      pos += space + 1;
      if (!(await fill(vectorBytes))) throw truncated(index, `inside the values of "${word}"`);
      const view = new DataView(buffer.buffer, buffer.byteOffset + pos, vectorBytes);
      const keep = matcher.wanted(word);
      const vector = keep ? new Float32Array(dim) : undefined;
      for (let k = 0; k < dim; k += 1) {
        const value = view.getFloat32(4 * k, true);
        if (!Number.isFinite(value)) throw badFile(file, where(), `value ${k + 1} of "${word}" is ${value}, not a number`);
        if (vector) vector[k] = value;
      }
      if (vector) matcher.offer(word, vector);
      pos += vectorBytes;
    }
    // After the announced vectors only whitespace may follow: more data means the header is wrong.
    for (;;) {
      if (!(await fill(1))) break;
      const byte = buffer[pos]!;
      if (byte !== 0x0a && byte !== 0x0d && byte !== 0x20 && byte !== 0x09) {
        throw badFile(file, `byte offset ${(base + pos).toLocaleString('en')}`, `data after the ${count.toLocaleString('en')} vectors its header announces`);
      }
      pos += 1;
    }
    return { dim, vectors: count };
  } catch (error) {
    throw asEmbeddingsError(file, error);
  } finally {
    await chunks.return?.(undefined);
  }
}
