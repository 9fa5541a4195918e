/**
 * One teacher-forced batch of (source, target) pairs, as the pairs reader/batcher produces it and
 * the T5 model trains on. Row-major [batch, length]; padding is T5_SPECIAL_IDS.pad with mask 0.
 * - sourceIds / sourceMask: [batch, sourceLength], the source tokens then eos, right-padded;
 * - decoderInputIds: [batch, targetLength], the target shifted right: pad (the start token), t0, t1...
 * - labels / labelMask: [batch, targetLength], the target tokens then eos; the loss counts only
 *   positions with labelMask 1.
 */
export interface PairBatch {
  batch: number;
  sourceLength: number;
  targetLength: number;
  sourceIds: Int32Array;
  sourceMask: Float32Array;
  decoderInputIds: Int32Array;
  labels: Int32Array;
  labelMask: Float32Array;
}
