/**
 * (source, target) pairs from a FreeDict dictionary in dictd's format (issue #17; Debian's
 * `dict-freedict-*` packages install them in /usr/share/dictd/), for pairs.ts: a path ending in
 * `.index` is read as one (docs/FORMATS.md, "Pairs").
 *
 * The format:
 * - `NAME.index`: one line per headword, `headword<TAB>offset<TAB>length` (a 4th column, the
 *   original headword, may follow), offset and length being numbers written in dictd's base 64:
 *   digits `A-Z a-z 0-9 + /` worth 0..63, most significant first (not RFC 4648 byte encoding);
 *   the headwords are dictd's lower-cased search keys, so the pairs take the body's headword.
 * - `NAME.dict.dz` (dictzip: gzip whose extra field indexes its chunks for random access; read
 *   whole here, as plain gzip) or `NAME.dict`: the entries' bodies at those byte offsets.
 * - Entries whose headword starts `00-database-` or `00database` are dictd's metadata (info,
 *   url, utf8 flag...), not words: skipped and counted.
 *
 * An entry's body (FreeDict's TEI rendered as plain text):
 *   Sklavenhandel /sklˈɑvənhˌandəl/ <masc, n, sg>
 *    [hist.] slave trade <n>, slave traffic <n>
 *         Note: ...
 *      "Abschaffung des Sklavenhandels"  - abolition of slave trade
 *    see: {Sklave}
 * line 1 is the headword, then an optional pronunciation `/.../`, parenthesised extras and a
 * part of speech `<...>`; the source is the headword alone. Each further line is a sense: its
 * translations, comma-separated, maybe numbered (`1. `) and labelled (`[hist.]`, `<n>`). Lines
 * that are cross-references, synonyms, notes or examples (quoted) are not translations.
 *
 * The choice: `translations: 'first'` (the default) gives one pair per entry, its first
 * translation — one answer per source, as exact-match evaluation wants, and the most common
 * sense comes first in FreeDict; `'all'` gives a pair per distinct translation. Several index
 * lines may point at one body (a headword's spellings): each body is read once, the others are
 * counted as `duplicates`. An entry without a translation (only references) is skipped and
 * counted in the PairSkips (`noTranslation`).
 *
 * Bad input is a FerryError naming the file and the index line (and headword): a line without
 * three columns, a digit outside the alphabet, an entry past the end of the .dict (truncated, or
 * the .dict of another index), invalid UTF-8 in a body, a .dict.dz that is not gzip.
 */
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { FerryError } from '../../errors.ts';
import { fileLines } from './pair-lines.ts';
import type { Pair, PairSkips } from './pairs.ts';

export interface FreedictCounts {
  /** Index lines read (metadata and duplicates included). */
  indexLines: number;
  metadata: number;
  duplicates: number;
  pairs: number;
}

export function newFreedictCounts(): FreedictCounts {
  return { indexLines: 0, metadata: 0, duplicates: 0, pairs: 0 };
}

export interface FreedictOptions {
  readonly translations?: 'first' | 'all';
  readonly counts?: FreedictCounts;
}

export const FREEDICT_INDEX = /\.index$/i;

const DICTD_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const METADATA = /^00-?database/i;

/** A number in dictd's base 64, or undefined when `text` is empty or holds a character outside the alphabet. */
export function decodeDictdNumber(text: string): number | undefined {
  if (text === '') return undefined;
  let value = 0;
  for (const char of text) {
    const digit = DICTD_DIGITS.indexOf(char);
    if (digit < 0) return undefined;
    value = value * 64 + digit;
  }
  return value;
}

export interface FreedictEntry {
  readonly headword: string;
  /** Every translation, in order, each once. */
  readonly translations: string[];
}

/** The headword and translations of one entry's body (see the header for the layout). */
export function parseFreedictEntry(body: string): FreedictEntry {
  const [first = '', ...rest] = body.split('\n');
  const translations: string[] = [];
  for (const line of rest) {
    if (!isSenseLine(line)) continue;
    for (const translation of splitTopLevel(line.trim().replace(SENSE_NUMBER, ''))) {
      const text = clean(translation);
      if (text !== '' && !translations.includes(text)) translations.push(text);
    }
  }
  return { headword: headwordOf(first), translations };
}

/** Labels of the lines that are about the entry rather than translations of it. */
const NOT_A_SENSE = /^(see|synonyms?|antonyms?|notes?|usage|examples?|also|cf\.?)\s*:/i;
const SENSE_NUMBER = /^\d+\.\s+/;

function isSenseLine(line: string): boolean {
  const text = line.trim();
  return text !== '' && !text.startsWith('"') && !NOT_A_SENSE.test(text);
}

/** The headword line without its pronunciation, extras and part of speech. */
function headwordOf(line: string): string {
  // A pronunciation is ` /.../`: whitespace before its slash, unlike the one in "und/oder".
  const pronunciation = /\s\/[^/]*\/(\s|$)/.exec(line);
  const head = pronunciation ? line.slice(0, pronunciation.index) : line.replace(/(\s*<[^<>]*>)+\s*$/, '');
  return head.replace(/\s+/g, ' ').trim();
}

/** `text` split at the commas outside (), [], <> and {}. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if ('([<{'.includes(char)) depth++;
    else if (')]>}'.includes(char)) depth = Math.max(0, depth - 1);
    else if (char === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** A translation without its grammar tags `<n>` and domain labels `[hist.]`. */
function clean(translation: string): string {
  return translation.replace(/<[^<>]*>|\[[^\][]*\]/g, ' ').replace(/\s+/g, ' ').trim();
}

/** The dictionary body file next to `indexFile`: NAME.dict.dz, else NAME.dict. */
export async function readDictFile(indexFile: string): Promise<{ file: string; bytes: Uint8Array }> {
  const base = indexFile.replace(FREEDICT_INDEX, '');
  for (const file of [`${base}.dict.dz`, `${base}.dict`]) {
    let raw: Buffer;
    try {
      raw = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new FerryError('freedict_bad_dict', `cannot read ${file}: ${(error as Error).message}`, { hint: 'Check the file\'s permissions.', cause: error });
    }
    if (!file.endsWith('.dz')) return { file, bytes: raw };
    try {
      return { file, bytes: await promisify(gunzip)(raw) };
    } catch (error) {
      throw new FerryError('freedict_bad_dict', `${file} is not a valid dictzip (gzip) file: ${(error as Error).message}`, {
        hint: 'Check it with gzip -t, or reinstall the dictionary (e.g. apt-get install --reinstall dict-freedict-deu-eng).',
        cause: error,
      });
    }
  }
  throw new FerryError('freedict_dict_not_found', `${indexFile} has no dictionary next to it: neither ${base}.dict.dz nor ${base}.dict exists`, {
    hint: 'A FreeDict dictionary is two files, NAME.index and NAME.dict.dz (or NAME.dict); keep them in one directory.',
  });
}

/** The pairs of the FreeDict dictionary whose index is `indexFile`, in index order (see the header). */
export async function* freedictPairs(indexFile: string, skips: PairSkips, options: FreedictOptions = {}): AsyncGenerator<Pair> {
  const { translations = 'first', counts = newFreedictCounts() } = options;
  const dict = await readDictFile(indexFile);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const seen = new Set<string>();
  for await (const { text, line } of fileLines(indexFile)) {
    if (text === '') continue;
    counts.indexLines++;
    const columns = text.split('\t');
    const headword = columns[0]!;
    const where = `${indexFile}, line ${line} (headword ${JSON.stringify(headword)})`;
    if (columns.length !== 3 && columns.length !== 4) {
      throw new FerryError('freedict_bad_index', `${indexFile}, line ${line}: ${columns.length} tab-separated columns, not headword<TAB>offset<TAB>length`, {
        hint: 'Give the .index file dictd (dictfmt) wrote for the dictionary, unchanged.',
      });
    }
    const offset = decodeDictdNumber(columns[1]!);
    const length = decodeDictdNumber(columns[2]!);
    if (offset === undefined || length === undefined) {
      const [name, value] = offset === undefined ? ['offset', columns[1]] : ['length', columns[2]];
      throw new FerryError('freedict_bad_index', `${where}: the ${name} ${JSON.stringify(value)} is not a number in dictd's base 64 (digits A-Z a-z 0-9 + /)`, {
        hint: 'The .index file is damaged; reinstall the dictionary or regenerate the index with dictfmt.',
      });
    }
    if (METADATA.test(headword)) {
      counts.metadata++;
      continue;
    }
    const key = `${offset}:${length}`;
    if (seen.has(key)) {
      counts.duplicates++;
      continue;
    }
    seen.add(key);
    if (offset + length > dict.bytes.length) {
      throw new FerryError('freedict_entry_out_of_range', `${where}: the entry is bytes ${offset}..${offset + length} of ${dict.file}, which has only ${dict.bytes.length} bytes (decompressed)`, {
        hint: 'The .dict file is truncated or belongs to another index; reinstall the dictionary so that both files come from one release.',
      });
    }
    let body: string;
    try {
      body = decoder.decode(dict.bytes.subarray(offset, offset + length));
    } catch {
      throw new FerryError('pairs_invalid_utf8', `${dict.file}: the entry of ${where} is not valid UTF-8`, {
        hint: 'FreeDict dictionaries are UTF-8 (their 00-database-utf8 entry); check that the .dict and the .index belong together.',
      });
    }
    const entry = parseFreedictEntry(body);
    if (entry.headword === '' || entry.translations.length === 0) {
      skips.noTranslation++;
      skips.firstNoTranslation ??= where;
      continue;
    }
    for (const target of translations === 'first' ? entry.translations.slice(0, 1) : entry.translations) {
      counts.pairs++;
      yield { source: entry.headword, target, file: indexFile, line };
    }
  }
}
