// Byte-level BPE training and encoding speed on a corpus (default: ../shared/data/tinyshakespeare.txt).
// Usage: node --import tsx bench/tokenizer-bpe.ts [corpus] [vocabSize]
import { readCorpus } from '../src/train/data/index.ts';
import { trainTokenizer } from '../src/tokenizer/index.ts';

const corpusPath = process.argv[2] ?? new URL('../../shared/data/tinyshakespeare.txt', import.meta.url).pathname;
const vocabSize = Number(process.argv[3] ?? 1000);

let start = performance.now();
const tokenizer = await trainTokenizer('bpe', readCorpus(corpusPath), { vocabSize });
const trainSeconds = (performance.now() - start) / 1000;

let text = '';
for await (const chunk of readCorpus(corpusPath)) text += chunk;
start = performance.now();
const ids = tokenizer.encode(text);
const encodeSeconds = (performance.now() - start) / 1000;
const bytes = new TextEncoder().encode(text).length;

console.log(`corpus ${corpusPath}: ${bytes} bytes`);
console.log(`train bpe to ${tokenizer.vocabSize} tokens: ${trainSeconds.toFixed(2)} s`);
console.log(`encode: ${encodeSeconds.toFixed(2)} s, ${ids.length} tokens (${(bytes / ids.length).toFixed(2)} bytes/token)`);
console.log(`round trip exact: ${tokenizer.decode(ids) === text}`);
