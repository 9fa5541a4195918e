/**
 * Learning-rate schedule as nanoGPT's train.py: linear warmup to `lr`, then cosine decay to
 * `minLr` at `decaySteps`, then flat at `minLr`. Steps count optimizer updates from 0.
 */
export interface ScheduleOptions {
  lr: number;
  minLr: number;
  warmupSteps: number;
  decaySteps: number;
}

export type LearningRateSchedule = (step: number) => number;

export function createCosineSchedule({ lr, minLr, warmupSteps, decaySteps }: ScheduleOptions): LearningRateSchedule {
  return function learningRateAt(step: number): number {
    // (step + 1) so that the very first update already moves; nanoGPT does the same.
    if (step < warmupSteps) return (lr * (step + 1)) / (warmupSteps + 1);
    if (step >= decaySteps) return minLr;
    const progress = (step - warmupSteps) / (decaySteps - warmupSteps);
    const coefficient = 0.5 * (1 + Math.cos(Math.PI * progress));
    return minLr + coefficient * (lr - minLr);
  };
}
