import { FerryError } from '../../errors.ts';

/**
 * Whether a pair is held out for validation: a seeded hash of its source text below valFraction.
 * Deterministic for a seed, independent of file order and of the other pairs, and every pair with
 * the same source lands on the same side, so that a dictionary's second translation of a word
 * cannot leak the held-out answer into training.
 */
export function isHeldOut(source: string, valFraction: number, seed: number): boolean {
  checkValFraction(valFraction);
  return valFraction > 0 && sourceHash(source, seed) / 2 ** 32 < valFraction;
}

export function checkValFraction(valFraction: number): void {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new FerryError('invalid_val_fraction', `validation fraction ${valFraction} is not in [0, 1)`, {
      hint: 'Give a fraction such as 0.1 (about 10% of the pairs, chosen by a seeded hash of the source, validate).',
    });
  }
}

/** FNV-1a over the UTF-16 code units, seeded, with murmur3's finalizer so that close texts spread. */
function sourceHash(text: string, seed: number): number {
  let hash = (0x811c9dc5 ^ Math.imul(Math.trunc(seed) >>> 0, 0x9e3779b9)) >>> 0;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
