/**
 * `ferry eval PACKAGE --by-position`: the loss by position (src/train/position-loss.ts) of an
 * exported package, scored by onnxruntime-node through the package's own graph and tokenizer,
 * each window from the initial state (zero LSTM state, empty past).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';
import { readTokenizerFile } from '../tokenizer/node.ts';
import { prepareTokens } from '../train/data/index.ts';
import type { PositionLossOptions } from '../train/evaluate.ts';
import { validateModelConfig } from '../train/models/index.ts';
import { checkWindow, positionLosses, type PositionLossReport, windowStarts } from '../train/position-loss.ts';
import { languageModelSpec } from './lm/spec.ts';
import { createSession, initialState, negativeLogLikelihood, runStep } from './runner.ts';

/** Whether `dir` holds an exported package (ferry.json with format ferry-onnx) rather than a checkpoint. */
export async function isOnnxPackage(dir: string): Promise<boolean> {
  const text = await readFile(path.join(dir, 'ferry.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  try {
    return (JSON.parse(text) as { format?: unknown }).format === 'ferry-onnx';
  } catch {
    return false;
  }
}

export async function positionLossOfPackage(dir: string, corpusPath: string, options: PositionLossOptions & { cacheDir: string }): Promise<PositionLossReport> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8')) as { name: string; model: unknown; files: { fp32: string } };
  if (manifest.model === null) {
    throw new FerryError('eval_not_a_language_model', `${dir} holds a foreign model, not a ferry language model.`, { hint: 'Loss by position needs an LSTM or Transformer package.' });
  }
  const config = validateModelConfig(manifest.model);
  const spec = languageModelSpec(config);
  const tokenizer = await readTokenizerFile(path.join(dir, 'tokenizer.json'));
  const prepared = await prepareTokens({ corpusPath, tokenizer, cacheDir: options.cacheDir });
  const window = checkWindow(config, options.window ?? config.blockSize);
  const starts = windowStarts(prepared.tokens.length, window);
  const session = await createSession(await readFile(path.join(dir, manifest.files.fp32)));
  const v = spec.vocabSize;
  const sums = new Float64Array(window);
  try {
    for (let first = 0; first < starts.length; first += options.batchSize) {
      const rows = starts.slice(first, first + options.batchSize).map((start) => Array.from(prepared.tokens.slice(start, start + window + 1)));
      const { logits } = await runStep(session, spec, rows.map((ids) => ids.slice(0, window)), initialState(spec, rows.length));
      rows.forEach((ids, row) => {
        for (let t = 0; t < window; t++) {
          const scores = logits.subarray((row * window + t) * v, (row * window + t + 1) * v);
          sums[t]! += negativeLogLikelihood(scores, ids[t + 1]!);
        }
      });
    }
  } finally {
    await session.release();
  }
  const positions = positionLosses(sums, starts.length);
  return { model: manifest.name, arch: config.arch, window, windows: starts.length, loss: positions.reduce((total, p) => total + p.loss, 0) / window, positions };
}
