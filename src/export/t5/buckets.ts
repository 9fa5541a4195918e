/**
 * The relative position bias as the ONNX graphs gather it. The buckets themselves
 * (relativePositionBucket) live with the T5 math in src/train/models/t5-config.ts, which the tfjs
 * model uses too.
 *
 * Every distance at or beyond `maxDistance` shares the last bucket, so the bias of any pair of
 * positions is a row of a table over the relative positions -maxDistance..maxDistance: the graph
 * clamps the relative position into that range and gathers (src/export/t5/graph.ts).
 */
import { relativePositionBucket } from '../../train/models/t5-config.ts';

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
