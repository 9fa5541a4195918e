/**
 * Leak check for training benchmarks: the tfjs tensor count, tfjs bytes and process RSS sampled
 * after steps. A steady training loop holds a fixed set of tensors (weights and optimizer moments),
 * so any growth of the count between the sample after `fromStep` and the last one is a leak.
 */
import * as tf from '@tensorflow/tfjs';

export type MemorySample = { step: number; tensors: number; bytes: number; rssMB: number };

export type LeakReport = {
  from: MemorySample;
  to: MemorySample;
  tensorGrowth: number;
  rssGrowthMB: number;
  leaks: boolean;
};

export function createLeakProbe(fromStep = 10) {
  const samples: MemorySample[] = [];
  return {
    /** Call after each step. */
    sample(step: number): void {
      const { numTensors, numBytes } = tf.memory();
      samples.push({ step, tensors: numTensors, bytes: numBytes, rssMB: Math.round(process.memoryUsage.rss() / 2 ** 20) });
    },
    /** Growth from the first sample at or after `fromStep` (or the first sample) to the last; null with fewer than two samples. */
    report(): LeakReport | null {
      if (samples.length < 2) return null;
      const from = samples.find((sample) => sample.step >= fromStep && sample !== samples.at(-1)) ?? samples[0]!;
      const to = samples.at(-1)!;
      const tensorGrowth = to.tensors - from.tensors;
      return { from, to, tensorGrowth, rssGrowthMB: to.rssMB - from.rssMB, leaks: tensorGrowth > 0 };
    },
  };
}
