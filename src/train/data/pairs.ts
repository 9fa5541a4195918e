/**
 * Corpora of (source, target) pairs for encoder-decoder models (issue #17), streamed a line at a
 * time (docs/FORMATS.md, "Pairs"):
 * - a TSV file: `source<TAB>target` on each line;
 * - a JSON Lines file (name ending .jsonl): `{"source": "...", "target": "..."}` on each line;
 * - two aligned files `{ source, target }`: line n of one translates line n of the other;
 * each gzipped too (name ending .gz). Lines may end in `\r\n`.
 * - a FreeDict (dictd) dictionary, by its index (name ending .index, the .dict.dz or .dict next
 *   to it): a pair per entry, headword -> first translation (freedict.ts).
 *
 * Exported names: `readPairs(input, skips?)`, `pairTexts(pairs)`, `newPairSkips()`, and the types
 * `Pair`, `PairInput`, `PairSkips`. The whole pipeline for a trainer is in pair-set.ts.
 *
 * Bad input: a TSV line without exactly one tab, a JSONL line that is not an object with string
 * "source" and "target", invalid UTF-8, aligned files of different lengths: a FerryError naming
 * the file and line. A pair with an empty side (only whitespace) is skipped and counted in
 * `skips`, as is a dictionary entry without a translation; blank lines of TSV and JSONL files
 * are skipped silently.
 */
import { FerryError } from '../../errors.ts';
import { FREEDICT_INDEX, freedictPairs } from './freedict.ts';
import { fileLines, type NumberedLine } from './pair-lines.ts';

export interface Pair {
  readonly source: string;
  readonly target: string;
  /** Where the pair was read, for messages: the file (the source file of aligned files) and line. */
  readonly file: string;
  readonly line: number;
}

/** A TSV, JSONL or FreeDict .index file (by its name), or two aligned files. */
export type PairInput = string | { readonly source: string; readonly target: string };

/** Pairs left out while reading and encoding, with the first of each kind, for the log. */
export interface PairSkips {
  emptySide: number;
  sourceTooLong: number;
  targetTooLong: number;
  /** FreeDict entries with no translation line (only cross-references). */
  noTranslation: number;
  firstEmptySide?: string;
  firstNoTranslation?: string;
  firstSourceTooLong?: string;
  firstTargetTooLong?: string;
}

export function newPairSkips(): PairSkips {
  return { emptySide: 0, sourceTooLong: 0, targetTooLong: 0, noTranslation: 0 };
}

const JSON_LINES = /\.jsonl(\.gz)?$/i;

/** The pairs of `input` in file order; pairs with an empty side are counted in `skips` and left out. */
export async function* readPairs(input: PairInput, skips: PairSkips = newPairSkips()): AsyncGenerator<Pair> {
  const pairs = typeof input !== 'string'
    ? alignedPairs(input.source, input.target)
    : FREEDICT_INDEX.test(input) ? freedictPairs(input, skips) : JSON_LINES.test(input) ? jsonLinePairs(input) : tsvPairs(input);
  for await (const pair of pairs) {
    if (pair.source.trim() === '' || pair.target.trim() === '') {
      skips.emptySide++;
      skips.firstEmptySide ??= `${pair.file} line ${pair.line}`;
      continue;
    }
    yield pair;
  }
}

/** Each source and each target as a whole text, as trainT5Tokenizer learns from them. */
export async function* pairTexts(pairs: AsyncIterable<Pair> | Iterable<Pair>): AsyncGenerator<string> {
  for await (const pair of pairs) {
    yield pair.source;
    yield pair.target;
  }
}

async function* tsvPairs(file: string): AsyncGenerator<Pair> {
  for await (const { text, line } of fileLines(file)) {
    if (text.trim() === '') continue;
    const tab = text.indexOf('\t');
    if (tab < 0) {
      throw badLine(file, line, 'has no tab', 'A TSV file of pairs holds source<TAB>target on each line; give .jsonl files a name ending in .jsonl.');
    }
    if (text.indexOf('\t', tab + 1) >= 0) {
      const tabs = text.split('\t').length - 1;
      throw badLine(file, line, `has ${tabs} tabs, not one`, 'Each line holds source<TAB>target and nothing else; keep two columns (e.g. cut -f2,4 for the 2nd and 4th).');
    }
    yield { source: text.slice(0, tab), target: text.slice(tab + 1), file, line };
  }
}

async function* jsonLinePairs(file: string): AsyncGenerator<Pair> {
  const hint = 'A .jsonl file of pairs holds one object per line: {"source": "...", "target": "..."}.';
  for await (const { text, line } of fileLines(file)) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw badLine(file, line, 'is not JSON', hint);
    }
    const { source, target } = (typeof value === 'object' && value !== null ? value : {}) as { source?: unknown; target?: unknown };
    if (typeof source !== 'string') throw badLine(file, line, 'has no "source" string field', hint);
    if (typeof target !== 'string') throw badLine(file, line, 'has no "target" string field', hint);
    yield { source, target, file, line };
  }
}

/** Line n of `sourceFile` with line n of `targetFile`; a blank line on either side is an empty side. */
async function* alignedPairs(sourceFile: string, targetFile: string): AsyncGenerator<Pair> {
  const sources = fileLines(sourceFile);
  const targets = fileLines(targetFile);
  try {
    for (;;) {
      const [source, target] = await Promise.all([sources.next(), targets.next()]);
      if (source.done && target.done) return;
      if (source.done || target.done) throw misaligned(sourceFile, targetFile, source.done ? target.value as NumberedLine : source.value as NumberedLine, source.done === true);
      yield { source: source.value.text, target: target.value.text, file: sourceFile, line: source.value.line };
    }
  } finally {
    await Promise.all([sources.return(undefined), targets.return(undefined)]);
  }
}

function misaligned(sourceFile: string, targetFile: string, extra: NumberedLine, sourceEnded: boolean): FerryError {
  const [shorter, longer] = sourceEnded ? [sourceFile, targetFile] : [targetFile, sourceFile];
  return new FerryError('pairs_misaligned', `the aligned files have different line counts: ${shorter} has ${extra.line - 1} lines, ${longer} has more (line ${extra.line} has no partner)`, {
    hint: 'Line n of the source file must translate line n of the target file; check both with wc -l.',
  });
}

function badLine(file: string, line: number, problem: string, hint: string): FerryError {
  return new FerryError('pairs_bad_line', `${file}, line ${line}: the line ${problem}`, { hint });
}
