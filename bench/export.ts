/**
 * Export benchmark (issue: exporter). For a ~10M-parameter Transformer (6 layers, width 384,
 * 6 heads, context 256, char vocabulary) and the lstm-char LSTM:
 * - export time without verification and peak RSS, in a child process that does only the export
 *   (bench/export-child.ts), against the fp32 weight bytes;
 * - per-token decode time at batch 1: onnxruntime-node with the state/KV cache vs tfjs (the
 *   Layers model has no cache, so each token re-runs the prefix), for the same checkpoint.
 *
 *   node --import tsx bench/export.ts [--tokens 32] [--backend auto|wasm|cpu]
 *
 * Prints one JSON line with the figures for BENCHMARKS.md.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { createSession, initialState, runStep } from '../src/export/runner.ts';
import type { LanguageModelSpec } from '../src/export/lm/spec.ts';
import { trainTokenizer } from '../src/tokenizer/index.ts';
import { selectBackend } from '../src/train/backend.ts';
import { countParameters, createModel, PRESETS, type ModelConfig } from '../src/train/models/index.ts';
import { fileSystemIO } from '../src/train/tfjs-io.ts';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '32' }, backend: { type: 'string', default: 'auto' } } });
const tokens = Number(values.tokens);
const backend = await selectBackend(values.backend);

const CORPUS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?\'-\n0123456789&$3';

async function checkpoint(config: ModelConfig): Promise<{ dir: string; model: tf.LayersModel }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-bench-export-'));
  const tokenizer = await trainTokenizer('char', [CORPUS], { byteFallback: false });
  const full = { ...config, vocabSize: tokenizer.vocabSize } as ModelConfig;
  const model = createModel(full);
  await model.save(fileSystemIO(dir));
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  await writeFile(path.join(dir, 'ferry.json'), JSON.stringify({ format: 'ferry-checkpoint', version: 1, model: full, tokenizer: { kind: 'char' }, training: {} }));
  return { dir, model };
}

async function exportInChild(dir: string) {
  const out = path.join(dir, 'onnx-package');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'export-child.ts'), dir, out], { maxBuffer: 1 << 20 });
  return { out, ...(JSON.parse(stdout.trim().split('\n').pop()!) as { seconds: number; peakRssMB: number; baselineRssMB: number }) };
}

async function decodeTimes(model: tf.LayersModel, out: string, spec: LanguageModelSpec) {
  const session = await createSession(await readFile(path.join(out, 'onnx/model.onnx')));
  const prompt = [1, 2, 3, 4];
  let step = await runStep(session, spec, [prompt], initialState(spec, 1));
  let started = performance.now();
  for (let i = 0; i < tokens; i++) step = await runStep(session, spec, [[(i * 7) % spec.vocabSize]], step.state);
  const ortMs = (performance.now() - started) / tokens;

  const ids = [...prompt];
  started = performance.now();
  for (let i = 0; i < tokens; i++) {
    const logits = model.predict(tf.tensor2d([ids], [1, ids.length], 'int32')) as tf.Tensor;
    await logits.data();
    logits.dispose();
    ids.push((i * 7) % spec.vocabSize);
  }
  const tfjsMs = (performance.now() - started) / tokens;
  await session.release();
  return { ortMsPerToken: ortMs, tfjsMsPerToken: tfjsMs, speedup: tfjsMs / ortMs };
}

const transformerConfig = { arch: 'transformer', blockSize: 256, nLayer: 6, nHead: 6, nEmbd: 384, dropout: 0, positional: 'learned', tieWeights: false, vocabSize: 0 } as ModelConfig;
const lstmConfig = { ...PRESETS['lstm-char']!.lstm!, vocabSize: 0 } as ModelConfig;
const results: Record<string, unknown> = { backend: backend.name, tokens };
for (const [name, config] of [['transformer', transformerConfig], ['lstm', lstmConfig]] as const) {
  const { dir, model } = await checkpoint(config);
  const params = countParameters({ ...config, vocabSize: model.outputs[0]!.shape[2]! } as ModelConfig);
  const exported = await exportInChild(dir);
  const c = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8')).model as ModelConfig;
  const spec: LanguageModelSpec = c.arch === 'lstm'
    ? { arch: 'lstm', vocabSize: c.vocabSize, layers: c.numLayers, hiddenSize: c.hiddenSize, withCell: true }
    : { arch: 'transformer', vocabSize: c.vocabSize, layers: c.nLayer, heads: c.nHead, headDim: c.nEmbd / c.nHead, contextLength: c.blockSize };
  const weightsMB = (params * 4) / 2 ** 20;
  results[name] = {
    params,
    weightsMB: +weightsMB.toFixed(1),
    exportSeconds: +exported.seconds.toFixed(2),
    peakRssMB: +exported.peakRssMB.toFixed(0),
    baselineRssMB: +exported.baselineRssMB.toFixed(0),
    rssOverWeights: +((exported.peakRssMB - exported.baselineRssMB) / weightsMB).toFixed(2),
    ...(await decodeTimes(model, exported.out, spec)),
  };
  console.error(name, JSON.stringify(results[name]));
}
console.log(JSON.stringify(results));
