// Turns a FreeDict dictionary (default: Debian's dict-freedict-deu-eng) into a TSV of
// headword<TAB>first translation pairs, written to a temp file then renamed, and prints counts.
// Usage: node --import tsx scripts/freedict-pairs.ts [INDEX] [OUT.tsv]
import { open, rename } from 'node:fs/promises';
import { freedictPairs, newFreedictCounts } from '../src/train/data/freedict.ts';
import { newPairSkips } from '../src/train/data/pairs.ts';

const [index = '/usr/share/dictd/freedict-deu-eng.index', out = 'deu-eng.tsv'] = process.argv.slice(2);
const counts = newFreedictCounts();
const skips = newPairSkips();
const temp = `${out}.tmp`;
const file = await open(temp, 'w');
let sourceChars = 0;
let targetChars = 0;
let tabbed = 0;
for await (const { source, target } of freedictPairs(index, skips, { counts })) {
  // A tab or newline inside a side would break the TSV; none are expected, so they are counted and left out.
  if (/[\t\n]/.test(source + target)) {
    tabbed++;
    continue;
  }
  sourceChars += [...source].length;
  targetChars += [...target].length;
  await file.write(`${source}\t${target}\n`);
}
await file.close();
await rename(temp, out);
const written = counts.pairs - tabbed;
console.log(`${out}: ${written} pairs from ${counts.indexLines} index lines (${counts.metadata} metadata, ${counts.duplicates} duplicates, ${skips.noTranslation} without a translation, ${tabbed} with a tab)`);
console.log(`mean length: source ${(sourceChars / written).toFixed(1)} chars, target ${(targetChars / written).toFixed(1)} chars`);
