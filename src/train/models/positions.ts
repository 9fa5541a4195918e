/**
 * The tables of the two relative position schemes a Transformer block can apply itself
 * (docs/FORMATS.md): rotary embeddings (RoPE, GPT-NeoX / Llama "rotate half" layout) and ALiBi
 * slopes. Training and export read the same float32 values, so the two graphs agree bit for bit
 * on them.
 */

/** Position schemes applied inside the attention of each block rather than added to the input. */
export type BlockPositional = 'rope' | 'alibi';

export const ROPE_BASE = 10000;

/**
 * cos and sin of p * base^(-2i/hd) for positions p < maxLength, row-major [maxLength, hd], each
 * frequency i < hd/2 written at columns i and i + hd/2 (the halves rotate_half pairs).
 */
export function ropeTables(maxLength: number, headDim: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(maxLength * headDim);
  const sin = new Float32Array(maxLength * headDim);
  for (let p = 0; p < maxLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(ROPE_BASE, (-2 * i) / headDim);
      for (const column of [i, i + half]) {
        cos[p * headDim + column] = Math.cos(angle);
        sin[p * headDim + column] = Math.sin(angle);
      }
    }
  }
  return { cos, sin };
}

/**
 * ALiBi's per-head slopes (Press et al.): 2^(-8(h+1)/n) for n heads a power of two; otherwise
 * those of the power of two below n, then every other slope of twice that many.
 */
export function alibiSlopes(heads: number): number[] {
  const geometric = (n: number) => Array.from({ length: n }, (_, h) => Math.pow(2, (-8 * (h + 1)) / n));
  const below = Math.pow(2, Math.floor(Math.log2(heads)));
  if (below === heads) return geometric(heads);
  return [...geometric(below), ...geometric(2 * below).filter((_, i) => i % 2 === 0).slice(0, heads - below)];
}
