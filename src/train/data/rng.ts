import { FerryError } from '../../errors.ts';

/** xoshiro128** state: four uint32 words, never all zero. Plain JSON, saved with a checkpoint. */
export interface RngState {
  readonly algorithm: 'xoshiro128**';
  readonly s: readonly [number, number, number, number];
}

export interface Rng {
  /** A float in [0, 1) with 32 random bits. */
  next(): number;
  /** An integer in [0, n), unbiased; n from 1 to 2^32. */
  nextInt(n: number): number;
  getState(): RngState;
  setState(state: RngState): void;
}

/**
 * The seeded random numbers of a run (xoshiro128**, seeded through splitmix32), small and fast,
 * whose whole state can be saved and restored so that a resumed run draws the same batches.
 */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) {
    throw new FerryError('invalid_seed', `seed ${seed} is not a number`, { hint: 'Give a whole number as the seed.' });
  }
  const s = new Uint32Array(4);
  let mix = (Math.trunc(seed) >>> 0) ^ Math.imul(Math.floor(Math.trunc(seed) / 2 ** 32) >>> 0, 0x9e3779b9);
  for (let i = 0; i < 4; i++) {
    mix = (mix + 0x9e3779b9) >>> 0;
    let z = mix;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    s[i] = z ^ (z >>> 16);
  }

  function nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  function next(): number {
    return nextUint32() / 2 ** 32;
  }

  function nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`nextInt(${n}): n must be a whole number from 1 to 2^32`);
    // Rejection sampling: draws at or above the last multiple of n would favour small results.
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const draw = nextUint32();
      if (draw < limit) return draw % n;
    }
  }

  function getState(): RngState {
    return { algorithm: 'xoshiro128**', s: [s[0]!, s[1]!, s[2]!, s[3]!] };
  }

  function setState(state: RngState): void {
    const words = (state as { s?: unknown } | null)?.s;
    const valid =
      (state as { algorithm?: unknown } | null)?.algorithm === 'xoshiro128**' &&
      Array.isArray(words) &&
      words.length === 4 &&
      words.every((word) => Number.isInteger(word) && word >= 0 && word < 2 ** 32) &&
      words.some((word) => word !== 0);
    if (!valid) {
      throw new FerryError('invalid_rng_state', `the saved random-number state ${JSON.stringify(state)} is not a xoshiro128** state`, {
        hint: 'The checkpoint state is damaged; start a new run instead of resuming.',
      });
    }
    s.set(words as number[]);
  }

  return { next, nextInt, getState, setState };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
