/**
 * Random-weight packages of the shipped models' shapes (lstm-char and nanogpt-cpu presets with a
 * char vocabulary of 65), for bench/serve.ts when models/ is empty. Runs in its own process so
 * that the benchmarked server never loads tfjs.
 *
 *   node --import tsx bench/serve-random-models.ts OUT_DIR
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { exportModel } from '../src/export/index.ts';
import { trainTokenizer } from '../src/tokenizer/index.ts';
import { saveCheckpoint } from '../src/train/checkpoint.ts';
import { createModel, PRESETS, type ModelConfig } from '../src/train/models/index.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: bench/serve-random-models.ts OUT_DIR');
const alphabet = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const tokenizer = await trainTokenizer('char', [alphabet], { byteFallback: false });
for (const [preset, arch] of [['lstm-char', 'lstm'], ['nanogpt-cpu', 'transformer']] as const) {
  const config = { ...PRESETS[preset]![arch]!, vocabSize: tokenizer.vocabSize } as ModelConfig;
  const model = createModel(config);
  const checkpoint = path.join(out, 'checkpoints', preset);
  await saveCheckpoint(checkpoint, {
    model, tokenizer,
    manifest: { model: config, training: { step: 0, corpusHash: 'sha256:none', backend: tf.getBackend(), seed: 0, valLoss: null, seconds: 0, hyperparameters: {} } },
  });
  await exportModel({ source: checkpoint, outDir: path.join(out, 'models', `random-${preset}`), name: `random-${preset}`, verify: false });
  console.log(`wrote ${path.join(out, 'models', `random-${preset}`)}`);
}
