/**
 * mulberry32: a small, fast, well-mixed 32-bit generator, uniform in [0, 1). Shared by every
 * stage that needs reproducible randomness (initialisation, dropout, verification inputs,
 * sampling seeds); it imports nothing, so serving may use it as well as training.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
