// Real ONNX packages for the serving tests: tiny randomly initialised LSTM and Transformer LMs
// built with the training stage's createModel, saved with saveCheckpoint and exported with
// exportModel, exactly the path a user's model takes. tfjs is loaded here only, never by serving.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { exportModel } from '../../src/export/index.ts';
import OpenAI from 'openai';
import { openModel, type ServedModel } from '../../src/serve/model.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { createRandom } from '../../src/serve/sampling.ts';
import { trainTokenizer } from '../../src/tokenizer/index.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';
import { createModel, type ModelConfig } from '../../src/train/models/index.ts';

export const CORPUS = 'to be, or not to be, that is the question. héllo wörld — naïve café: €5 😀 ' +
  'ROMEO: But soft, what light through yonder window breaks? <|endoftext|>';

type Shape = Omit<Extract<ModelConfig, { arch: 'lstm' }>, 'vocabSize'> | Omit<Extract<ModelConfig, { arch: 'transformer' }>, 'vocabSize'>;

export const TINY_LSTM: Shape = { arch: 'lstm', embeddingDim: 16, hiddenSize: 24, numLayers: 2, dropout: 0, tieWeights: false, blockSize: 32 };
export const TINY_TRANSFORMER: Shape = {
  arch: 'transformer', blockSize: 48, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, positional: 'learned', tieWeights: false,
};

export interface TestPackages {
  root: string;
  lstm: string;
  transformer: string;
  remove(): Promise<void>;
}

/**
 * Byte-level BPE, so that multi-byte characters are split across tokens. Matrices are Glorot-
 * uniform times `weightScale` from a seeded PRNG, so every run tests the same models; the gain
 * makes predictions peaked, so greedy text is not a tie-break lottery. FERRY_TEST_SEED picks others.
 */
export async function buildPackages(options: { weightScale?: number; seed?: number } = {}): Promise<TestPackages> {
  const random = createRandom(options.seed ?? Number(process.env.FERRY_TEST_SEED ?? 1));
  const root = await mkdtemp(path.join(tmpdir(), 'ferry-serve-'));
  const tokenizer = await trainTokenizer('bpe', [CORPUS], { vocabSize: 300 });
  const dirs: Record<string, string> = {};
  for (const shape of [TINY_LSTM, TINY_TRANSFORMER]) {
    const config = { ...shape, vocabSize: tokenizer.vocabSize } as ModelConfig;
    const model = createModel(config);
    const gain = options.weightScale ?? 3;
    model.setWeights(model.getWeights().map((w) => {
      if (w.rank < 2) return w;
      const limit = gain * Math.sqrt(6 / (w.shape[0]! + w.shape.at(-1)!));
      return tf.tensor(Float32Array.from({ length: w.size }, () => (random() * 2 - 1) * limit), w.shape);
    }));
    const checkpoint = path.join(root, `${shape.arch}-checkpoint`);
    await saveCheckpoint(checkpoint, {
      model,
      tokenizer,
      manifest: { model: config, training: { step: 0, corpusHash: 'sha256:test', backend: 'cpu', seed: 1, valLoss: null, seconds: 0, hyperparameters: {} } },
    });
    model.dispose();
    dirs[shape.arch] = path.join(root, 'models', `tiny-${shape.arch}`);
    await exportModel({ source: checkpoint, outDir: dirs[shape.arch]!, name: `tiny-${shape.arch}`, verify: false });
  }
  return { root, lstm: dirs.lstm!, transformer: dirs.transformer!, remove: () => rm(root, { recursive: true, force: true }) };
}

/** Both test packages opened on the CPU runtime, as the app tests serve them. */
export async function openTestModels(packages: TestPackages): Promise<ServedModel[]> {
  const runtime = await openRuntime('cpu', () => {});
  return [
    await openModel(packages.lstm, { runtime, maxBatch: 8, maxQueue: 16 }),
    await openModel(packages.transformer, { runtime, maxBatch: 8, maxQueue: 16 }),
  ];
}

/** The openai client talking to a Hono app in-process. */
export const openAIClientFor = (target: { request: (url: string, init?: RequestInit) => Response | Promise<Response> }, apiKey = 'unused') =>
  new OpenAI({ baseURL: 'http://ferry.test/v1', apiKey, maxRetries: 0, fetch: (url, init) => Promise.resolve(target.request(String(url), init as RequestInit)) });
