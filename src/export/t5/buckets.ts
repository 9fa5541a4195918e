/**
 * T5's relative position buckets (HF's `_relative_position_bucket`), computed in float32 as
 * PyTorch does: near the powers where the log term lands on a whole number (distance 16, 32, 64
 * with 32 buckets) float64 would round to the next bucket.
 *
 * Every distance at or beyond `maxDistance` shares the last bucket, so the bias of any pair of
 * positions is a row of a table over the relative positions -maxDistance..maxDistance: the graph
 * clamps the relative position into that range and gathers (src/export/t5/graph.ts).
 */
const f = Math.fround;

/** The bucket of `relative` = key position - query position. */
export function relativePositionBucket(relative: number, bidirectional: boolean, buckets: number, maxDistance: number): number {
  let bucket = 0;
  let distance: number;
  let n = buckets;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (relative > 0) bucket += n;
    distance = Math.abs(relative);
  } else {
    distance = Math.max(-relative, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (distance < maxExact) return bucket + distance;
  const scaled = f(f(f(Math.log(f(distance / maxExact))) / f(Math.log(maxDistance / maxExact))) * (n - maxExact));
  return bucket + Math.min(maxExact + Math.trunc(scaled), n - 1);
}

/**
 * The bias of every relative position -maxDistance..maxDistance, [2 * maxDistance + 1, heads]:
 * row r is `table[bucket(r - maxDistance)]` of the trained [buckets, heads] table.
 */
export function relativeBiasByDistance(table: Float32Array, heads: number, bidirectional: boolean, buckets: number, maxDistance: number): Float32Array {
  const rows = 2 * maxDistance + 1;
  const out = new Float32Array(rows * heads);
  for (let r = 0; r < rows; r++) {
    const bucket = relativePositionBucket(r - maxDistance, bidirectional, buckets, maxDistance);
    out.set(table.subarray(bucket * heads, (bucket + 1) * heads), r * heads);
  }
  return out;
}
