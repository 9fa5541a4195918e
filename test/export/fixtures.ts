/** Tiny ferry checkpoints written to temp dirs, for the export tests. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { trainTokenizer } from '../../src/tokenizer/index.ts';
import { createModel, type LstmShape, type ModelConfig, type TransformerShape } from '../../src/train/models/index.ts';
import { fileSystemIO } from '../../src/train/tfjs-io.ts';
import { crossEntropy } from '../../src/train/models/index.ts';

export const CORPUS = 'the quick brown fox jumps over the lazy dog. ' +
  'First Citizen: Before we proceed any further, hear me speak! All: Speak, speak; resolved? ' +
  "we know't, let us kill him, and we'll have corn at our own price. Is it a verdict? away, away:";

const created: string[] = [];
after(() => Promise.all(created.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A fresh temp dir, removed when the test file ends. */
export async function tempDir(prefix = 'ferry-export-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

type Shape = LstmShape | TransformerShape;

export const TINY_LSTM: LstmShape = { arch: 'lstm', embeddingDim: 8, hiddenSize: 12, numLayers: 2, dropout: 0, tieWeights: false, blockSize: 16 };
export const TINY_TRANSFORMER: TransformerShape = {
  arch: 'transformer', blockSize: 24, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, positional: 'learned', tieWeights: false,
};

/**
 * A checkpoint dir like `ferry train` writes (model.json, weights.bin, ferry.json,
 * tokenizer.json). `weightScale` multiplies the random weights so that the model's predictions
 * are far from uniform (a stand-in for training).
 */
export async function makeCheckpoint(shape: Shape, options: { dir?: string; weightScale?: number; trainSteps?: number; seed?: number } = {}): Promise<{ dir: string; model: tf.LayersModel; config: ModelConfig }> {
  const dir = options.dir ?? (await tempDir());
  await mkdir(dir, { recursive: true });
  const tokenizer = await trainTokenizer('char', [CORPUS], { byteFallback: false });
  const config = { ...shape, vocabSize: tokenizer.vocabSize } as ModelConfig;
  // Seeded, so that every run tests the same weights (an unseeded fixture made int8 bounds flaky).
  const model = createModel(config, { seed: options.seed ?? 1 });
  if (options.weightScale !== undefined) {
    const scale = options.weightScale;
    model.setWeights(model.getWeights().map((w) => tf.tidy(() => w.mul(scale))));
  }
  if (options.trainSteps) fit(model, tokenizer.encode(CORPUS), options.trainSteps, Math.min(config.blockSize, 16));
  await model.save(fileSystemIO(dir));
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  await writeFile(path.join(dir, 'ferry.json'), JSON.stringify({
    format: 'ferry-checkpoint', version: 1, model: config, tokenizer: { kind: 'char' },
    training: { step: 0, corpusHash: 'sha256:test', backend: 'cpu', seed: 1, valLoss: null, seconds: 0, hyperparameters: {} },
  }));
  return { dir, model, config };
}

/** A few Adam steps on the corpus, so that the model predicts far better than uniform. */
function fit(model: tf.LayersModel, ids: number[], steps: number, seq: number): void {
  const optimizer = tf.train.adam(0.02);
  const batch = 8;
  for (let step = 0; step < steps; step++) {
    const starts = Array.from({ length: batch }, (_, b) => ((step * batch + b) * 7) % (ids.length - seq - 1));
    const x = tf.tensor2d(starts.map((s) => ids.slice(s, s + seq)), [batch, seq], 'int32');
    const y = tf.tensor2d(starts.map((s) => ids.slice(s + 1, s + seq + 1)), [batch, seq], 'int32');
    optimizer.minimize(() => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y));
    tf.dispose([x, y]);
  }
  optimizer.dispose();
}
