/**
 * Export benchmark (issue: exporter). For a ~10M-parameter Transformer (6 layers, width 384,
 * 6 heads, context 256, char vocabulary) and the lstm-char LSTM:
 * - export time without verification and peak RSS, in a child process that does only the export
 *   (bench/export-child.ts), against the fp32 weight bytes;
 * - per-token decode time at batch 1: onnxruntime-node with the state/KV cache vs tfjs (the
 *   Layers model has no cache, so each token re-runs the prefix), for the same checkpoint;
 * - per-token decode time of the fp32, int8 and fp16 files in onnxruntime-node and
 *   onnxruntime-web (WASM, one thread), timed side by side in interleaved rounds (medians), with
 *   their sizes and perplexity change.
 *
 *   node --import tsx bench/export.ts [--tokens 32] [--rounds 7] [--backend auto|wasm|cpu]
 *
 * Prints one JSON line with the figures for BENCHMARKS.md.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ATTENTION_MASK, INPUT_IDS, lstmNames, POSITION_IDS, transformerNames } from '../src/package/index.ts';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import * as ortWeb from 'onnxruntime-web';
import { exportModel } from '../src/export/index.ts';
import { createSession, initialState, runStep } from '../src/export/runner.ts';
import { languageModelSpec, type LanguageModelSpec } from '../src/export/lm/spec.ts';
import { trainTokenizer } from '../src/tokenizer/index.ts';
import { selectBackend } from '../src/train/backend.ts';
import { countParameters, createModel, PRESETS, type ModelConfig } from '../src/train/models/index.ts';
import { fileSystemIO } from '../src/train/tfjs-io.ts';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '32' }, rounds: { type: 'string', default: '7' }, backend: { type: 'string', default: 'auto' } } });
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const backend = await selectBackend(values.backend);

const CORPUS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?\'-\n0123456789&$3';

async function checkpoint(config: ModelConfig): Promise<{ dir: string; model: tf.LayersModel }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-bench-export-'));
  const tokenizer = await trainTokenizer('char', [CORPUS], { byteFallback: false });
  const full = { ...config, vocabSize: tokenizer.vocabSize } as ModelConfig;
  const model = createModel(full);
  await model.save(fileSystemIO(dir));
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  await writeFile(path.join(dir, 'ferry.json'), JSON.stringify({ format: 'ferry-checkpoint', version: 1, model: full, tokenizer: { kind: 'char' },
    training: { step: 0, corpusHash: 'sha256:bench', backend: 'untrained', seed: 1, valLoss: null, seconds: 0, hyperparameters: {} },
  }));
  return { dir, model };
}

async function exportInChild(dir: string) {
  const out = path.join(dir, 'onnx-package');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'export-child.ts'), dir, out], { maxBuffer: 1 << 20 });
  return { out, ...(JSON.parse(stdout.trim().split('\n').pop()!) as { seconds: number; peakRssMB: number; baselineRssMB: number }) };
}

/** ms per token over `tokens` single-token steps after a 4-token prompt, through the cache. */
async function onnxDecodeMs(run: (ids: number[], past: number, state: Record<string, unknown>) => Promise<Record<string, unknown>>, spec: LanguageModelSpec): Promise<number> {
  let state = await run([1, 2, 3, 4], 0, {});
  const started = performance.now();
  for (let i = 0; i < tokens; i++) state = await run([(i * 7) % spec.vocabSize], 4 + i, state);
  return (performance.now() - started) / tokens;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/**
 * The fp32, int8 and fp16 files side by side: every session opened first, then rounds that time
 * each file in turn (node, then WASM), so that load on the machine falls on all of them alike;
 * medians over the rounds after the first (V8 compiles WASM in tiers).
 */
async function variantTimes(dir: string, spec: LanguageModelSpec) {
  const out = path.join(dir, 'onnx-variants');
  const report = await exportModel({ source: dir, outDir: out, verify: false, quantize: 'int8', fp16: true });
  ortWeb.env.wasm.numThreads = 1;
  const runners: { key: string; file: string; node: (ids: number[], past: number, state: Record<string, unknown>) => Promise<Record<string, unknown>>; web: (ids: number[], past: number, state: Record<string, unknown>) => Promise<Record<string, unknown>> }[] = [];
  const releases: (() => Promise<void>)[] = [];
  for (const [key, file] of Object.entries(report.files)) {
    if (!file) continue;
    const bytes = await readFile(path.join(out, file));
    const node = await createSession(bytes);
    const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    releases.push(() => node.release(), () => web.release());
    runners.push({
      key,
      file,
      node: async (ids, _past, state) => (await runStep(node, spec, [ids], Object.keys(state).length ? state as never : initialState(spec, 1))).state,
      web: async (ids, past, state) => {
        const feeds: Record<string, ortWeb.Tensor> = { [INPUT_IDS]: new ortWeb.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) };
        const names = spec.arch === 'lstm' ? lstmNames(spec.layers) : transformerNames(spec.layers);
        names.past.forEach((name, i) => {
          const empty = spec.arch === 'lstm'
            ? new ortWeb.Tensor('float32', new Float32Array(spec.hiddenSize), [1, spec.hiddenSize])
            : new ortWeb.Tensor('float32', new Float32Array(0), [1, spec.heads, 0, spec.headDim]);
          feeds[name] = (state[names.present[i]!] as ortWeb.Tensor | undefined) ?? empty;
        });
        if (spec.arch === 'transformer') {
          feeds[ATTENTION_MASK] = new ortWeb.Tensor('int64', new BigInt64Array(past + ids.length).fill(1n), [1, past + ids.length]);
          feeds[POSITION_IDS] = new ortWeb.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(past + i)), [1, ids.length]);
        }
        return web.run(feeds);
      },
    });
  }
  const times = runners.map(() => ({ node: [] as number[], web: [] as number[] }));
  for (let round = 0; round < rounds + 1; round++) {
    for (const [i, runner] of runners.entries()) {
      const [node, web] = [await onnxDecodeMs(runner.node, spec), await onnxDecodeMs(runner.web, spec)];
      if (round > 0) times[i]!.node.push(node), times[i]!.web.push(web);
    }
  }
  await Promise.all(releases.map((release) => release()));
  const result: Record<string, unknown> = {};
  for (const [i, { key, file }] of runners.entries()) {
    result[key] = { MB: +(report.sizes[file]! / 2 ** 20).toFixed(1), nodeMsPerToken: +median(times[i]!.node).toFixed(3), wasmMsPerToken: +median(times[i]!.web).toFixed(3) };
  }
  for (const key of ['int8', 'fp16']) {
    const parity = report.parity[key] as { perplexityChange: number } | undefined;
    if (parity) (result[key] as Record<string, unknown>).perplexityChange = +parity.perplexityChange.toFixed(5);
  }
  return result;
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
  const spec = languageModelSpec(c);
  const weightsMB = (params * 4) / 2 ** 20;
  results[name] = {
    params,
    weightsMB: +weightsMB.toFixed(1),
    exportSeconds: +exported.seconds.toFixed(2),
    peakRssMB: +exported.peakRssMB.toFixed(0),
    baselineRssMB: +exported.baselineRssMB.toFixed(0),
    rssOverWeights: +((exported.peakRssMB - exported.baselineRssMB) / weightsMB).toFixed(2),
    ...(await decodeTimes(model, exported.out, spec)),
    files: await variantTimes(dir, spec),
  };
  console.error(name, JSON.stringify(results[name]));
  await rm(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(results));
