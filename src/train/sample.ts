/**
 * Text generation with tfjs straight from a checkpoint: a quick look at what a run has learned,
 * before exporting it. Each new token reruns the model over the last `blockSize` tokens (no
 * KV cache or carried LSTM state; the exported ONNX model is the fast path).
 */
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { createRng } from './data/index.ts';
import type { ModelConfig } from './models/index.ts';

export interface SamplingOptions {
  maxTokens: number;
  /** 0 is greedy (argmax); higher flattens the distribution. */
  temperature: number;
  /** Keep only the k most likely tokens before sampling; null keeps all. */
  topK: number | null;
  seed: number;
  /** Stop at the end-of-text token when the vocabulary has one. */
  stopAtEos: boolean;
}

export const DEFAULT_SAMPLING: SamplingOptions = { maxTokens: 200, temperature: 0.8, topK: 40, seed: 1, stopAtEos: true };

export interface GenerationResult {
  promptIds: number[];
  ids: number[];
  text: string;
}

/**
 * Continues `promptIds`; `onText` receives the decoded text as it grows (held back while the
 * last token ends inside a UTF-8 sequence).
 */
export async function generate(
  model: tf.LayersModel,
  config: ModelConfig,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  options: SamplingOptions,
  onText?: (piece: string) => void,
): Promise<GenerationResult> {
  const rng = createRng(options.seed);
  const ids = [...promptIds];
  let emitted = '';
  for (let produced = 0; produced < options.maxTokens; produced += 1) {
    const window = ids.slice(-config.blockSize);
    const logits = tf.tidy(() => {
      const output = model.predict(tf.tensor2d([window], [1, window.length], 'int32')) as tf.Tensor;
      return tf.squeeze(tf.slice(output, [0, window.length - 1, 0], [1, 1, -1]));
    });
    const next = pickToken((await logits.data()) as Float32Array, options, () => rng.next());
    logits.dispose();
    if (options.stopAtEos && next === tokenizer.eosId) break;
    ids.push(next);
    if (onText) {
      const text = tokenizer.decode(ids.slice(promptIds.length));
      if (!text.endsWith('\uFFFD') && text.startsWith(emitted)) {
        onText(text.slice(emitted.length));
        emitted = text;
      }
    }
  }
  const text = tokenizer.decode(ids.slice(promptIds.length));
  if (onText && text !== emitted && text.startsWith(emitted)) onText(text.slice(emitted.length));
  return { promptIds: [...promptIds], ids: ids.slice(promptIds.length), text };
}

/** Greedy, or temperature + top-k sampling, from one position's logits. */
export function pickToken(logits: Float32Array, { temperature, topK }: Pick<SamplingOptions, 'temperature' | 'topK'>, random: () => number): number {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i += 1) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let candidates = Array.from(logits.keys());
  if (topK !== null && topK < logits.length) {
    candidates.sort((a, b) => logits[b]! - logits[a]! || a - b);
    candidates = candidates.slice(0, topK);
  }
  const max = Math.max(...candidates.map((id) => logits[id]!));
  const weights = candidates.map((id) => Math.exp((logits[id]! - max) / temperature));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let threshold = random() * total;
  for (let i = 0; i < candidates.length; i += 1) {
    threshold -= weights[i]!;
    if (threshold < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}

/** `ferry sample`: loads a checkpoint (or a run dir's best/) and continues a prompt. */
export async function sampleFromCheckpoint(
  path: string,
  prompt: string,
  options: SamplingOptions,
  onText?: (piece: string) => void,
): Promise<GenerationResult & { checkpointDir: string }> {
  const { dir: checkpointDir, model, tokenizer, manifest } = await loadCheckpoint(path);
  try {
    const promptIds = tokenizer.encode(prompt);
    if (promptIds.length === 0) {
      if (tokenizer.eosId === undefined) {
        throw new FerryError('empty_prompt', 'The prompt is empty and this tokenizer has no end-of-text token to start from.', {
          hint: 'Pass --prompt TEXT with at least one character.',
        });
      }
      promptIds.push(tokenizer.eosId);
    }
    return { checkpointDir, ...(await generate(model, manifest.model, tokenizer, promptIds, options, onText)) };
  } finally {
    model.dispose();
  }
}
