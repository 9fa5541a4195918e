/**
 * Scoring of `ferry probe`: accuracy at the answer positions only, teacher-forced. The model reads
 * the true text; at each answer its prediction is the answer token it ranks highest (its logits
 * compared over the task's answer alphabet alone, so that chance is 1 / that alphabet's size and
 * a model is not marked wrong for thinking noise might continue). Every other position is ignored.
 */

export interface AnswerSlot {
  /** Row of the batch. */
  row: number;
  /** Input position whose logits predict the answer (the answer's index - 1). */
  position: number;
  /** The answer's token id. */
  target: number;
}

export interface LogitsShape {
  rows: number;
  length: number;
  vocab: number;
}

/** How many answers the model gets right: `logits` is [rows, length, vocab], row-major. */
export function countCorrect(logits: Float32Array, shape: LogitsShape, answers: readonly AnswerSlot[], candidates: readonly number[]): number {
  const { rows, length, vocab } = shape;
  if (logits.length !== rows * length * vocab) throw new RangeError(`logits hold ${logits.length} values, not ${rows} x ${length} x ${vocab}`);
  let correct = 0;
  for (const { row, position, target } of answers) {
    const base = (row * length + position) * vocab;
    let best = candidates[0]!;
    for (const candidate of candidates) if (logits[base + candidate]! > logits[base + best]!) best = candidate;
    if (best === target) correct += 1;
  }
  return correct;
}
