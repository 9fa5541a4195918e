/** Seeded word-vector files for the embeddings tests: GloVe / word2vec text and word2vec binary. */
import { writeFileSync } from 'node:fs';
import { mulberry32 } from '../../src/random.ts';

export type WordVectors = Map<string, Float32Array>;

/** A vector of `dim` float32 values in [-1, 1) per word, drawn from `seed`. */
export function seededVectors(words: readonly string[], dim: number, seed: number): WordVectors {
  const random = mulberry32(seed);
  return new Map(words.map((word) => [word, Float32Array.from({ length: dim }, () => random() * 2 - 1)]));
}

/**
 * GloVe text ("word v1 v2 ..." lines), or word2vec text with `header`. Each float32 is written
 * with the digits that read back as the same float32 (JavaScript's shortest form of its double).
 */
export function writeGlove(path: string, vectors: WordVectors, options: { header?: boolean } = {}): string {
  const dim = vectors.values().next().value?.length ?? 0;
  const lines = [...vectors].map(([word, vector]) => `${word} ${[...vector].join(' ')}\n`);
  writeFileSync(path, `${options.header ? `${vectors.size} ${dim}\n` : ''}${lines.join('')}`);
  return path;
}

/** word2vec's binary format: "count dim\n", then per word its UTF-8, a space, dim little-endian float32 and (word2vec's writer) a newline. */
export function writeWord2vecBinary(path: string, vectors: WordVectors, options: { newlines?: boolean } = {}): string {
  const dim = vectors.values().next().value?.length ?? 0;
  const parts: Buffer[] = [Buffer.from(`${vectors.size} ${dim}\n`)];
  for (const [word, vector] of vectors) {
    const values = Buffer.alloc(4 * dim);
    vector.forEach((value, k) => values.writeFloatLE(value, 4 * k));
    parts.push(Buffer.from(`${word} `), values);
    if (options.newlines !== false) parts.push(Buffer.from('\n'));
  }
  writeFileSync(path, Buffer.concat(parts));
  return path;
}
