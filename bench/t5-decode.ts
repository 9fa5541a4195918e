/**
 * T5 decoding against a decoder-only Transformer of the same width and depth (issue #17's
 * targets): ms per token per stream of greedy decoding with both caches (at most 1.3x the
 * Transformer's), and the T5 serving scheduler's throughput at 32 concurrent requests against one
 * (at least 5x).
 *
 * Models: t5-small-char (width 256, 4 heads of 64, 4 + 4 layers, d_ff 1024, untied head) and a
 * Transformer of width 256, 4 heads, 4 layers (MLP 1024, untied head, learned positions, context
 * 256), both at their training initialisation (seeded), both with character tokenizers of the
 * same text, exported to a temp dir. Decoding: the seq2seq decoder (encoder once, then one merged
 * decoder run per token with the self- and cross-attention caches) and the Transformer as `ferry
 * serve` decodes it (its slab cache), each after a source / prompt of --source tokens, one ORT
 * thread each, batch 1 and --batch rows. The step times of each run are reduced to their median;
 * rounds alternate the models so that the shared machine's noise falls on both, and the report
 * gives the median over rounds and the median of the per-round ratios. Throughput: the T5 (and,
 * for reference, the Transformer) served model's scheduler with its session in a worker thread
 * (as bench/serve-scheduler.ts), --tokens tokens per request with eos ignored.
 *
 *   node --import tsx bench/t5-decode.ts [--tokens 64] [--source 32] [--batch 32] [--rounds 5] [--threads 1] [--precision fp32]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { exportModel } from '../src/export/index.ts';
import { writePackageDir } from '../src/export/package.ts';
import { t5PackageFiles } from '../src/export/t5/package.ts';
import { buildT5Variants } from '../src/export/t5/variants.ts';
import { createDecoder, type SequenceState } from '../src/package/decoder.ts';
import { modelFileOf, parseLanguageModelManifest, type Precision } from '../src/package/index.ts';
import { createSeq2SeqDecoder } from '../src/package/seq2seq.ts';
import { slideModeOf } from '../src/package/sliding-window.ts';
import { openModel, type ServedModel } from '../src/serve/model.ts';
import { readManifest } from '../src/serve/package.ts';
import { openRuntime } from '../src/serve/runtime/index.ts';
import type { Runtime } from '../src/serve/runtime/types.ts';
import { openT5Model } from '../src/serve/t5-model.ts';
import { trainTokenizer } from '../src/tokenizer/index.ts';
import { trainT5Tokenizer } from '../src/tokenizer/t5.ts';
import { saveCheckpoint } from '../src/train/checkpoint.ts';
import { createModel, type TransformerConfig } from '../src/train/models/index.ts';
import { createT5, disposeT5, t5Weights } from '../src/train/models/t5.ts';
import { resolveT5Config } from '../src/train/models/t5-config.ts';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '64' },
    source: { type: 'string', default: '32' },
    batch: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1' },
    precision: { type: 'string', default: 'fp32' },
  },
});
const TOKENS = Number(values.tokens);
const SOURCE = Number(values.source);
const BATCH = Number(values.batch);
const ROUNDS = Number(values.rounds);
const THREADS = Number(values.threads);
const PRECISION = values.precision as Precision;

const TEXT = 'First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. First Citizen: You are all resolved rather to die than to famish? ' +
  'All: Resolved. resolved. First Citizen: First, you know Caius Marcius is chief enemy to the people. We know it, we know it.';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** `n` characters of the text from `offset` on: the sources and prompts. */
const slice = (offset: number, n: number) => Array.from({ length: n }, (_, i) => TEXT[(offset * 7 + i) % TEXT.length]!).join('');
const argmax = (row: Float32Array) => row.reduce((best, x, i) => (x > row[best]! ? i : best), 0);

const root = await mkdtemp(path.join(tmpdir(), 'ferry-t5-decode-'));
try {
  // T5: t5-small-char at its initialisation.
  const t5Tokenizer = await trainT5Tokenizer('char', [TEXT]);
  const t5Config = resolveT5Config({ preset: 't5-small-char', vocabSize: t5Tokenizer.vocabSize, overrides: { dropout: 0 } });
  const t5 = createT5(t5Config, { seed: 1 });
  const weights = await t5Weights(t5);
  disposeT5(t5);
  const t5Dir = path.join(root, 't5');
  const variants = PRECISION === 'fp32' ? undefined : await buildT5Variants(t5Config, weights, 17, { [PRECISION]: true, tokenizer: t5Tokenizer, log: (line) => console.error(`# ${line}`) });
  await writePackageDir(t5Dir, t5PackageFiles(t5Config, weights, t5Tokenizer, 17, 't5-bench', variants));

  // The Transformer: same width, depth, heads and feed-forward width; a context that holds source + tokens.
  const lmTokenizer = await trainTokenizer('char', [TEXT]);
  const lmConfig: TransformerConfig = { arch: 'transformer', vocabSize: lmTokenizer.vocabSize, blockSize: 256, nLayer: 4, nHead: 4, nEmbd: 256, dropout: 0, positional: 'learned', tieWeights: false };
  const checkpoint = path.join(root, 'lm-checkpoint');
  await saveCheckpoint(checkpoint, {
    model: createModel(lmConfig, { seed: 1 }), tokenizer: lmTokenizer,
    manifest: { model: lmConfig, training: { step: 0, corpusHash: 'sha256:none', backend: 'cpu', seed: 1, valLoss: null, seconds: 0, hyperparameters: {} } },
  });
  const lmDir = path.join(root, 'lm');
  await exportModel({ source: checkpoint, outDir: lmDir, verify: PRECISION !== 'fp32', quantize: PRECISION === 'int8' ? 'int8' : undefined, fp16: PRECISION === 'fp16' });

  const runtime = await openRuntime('cpu', () => {}, { worker: false });
  const t5Manifest = await readManifest(t5Dir);
  if (t5Manifest.arch !== 't5') throw new Error('the T5 package reads back as another kind');
  const sessionOptions = { intraOpThreads: THREADS };
  const t5Decoder = createSeq2SeqDecoder(
    await runtime.createSession(path.join(t5Dir, modelFileOf({ ...t5Manifest, files: t5Manifest.encoderFiles }, PRECISION, t5Dir)), sessionOptions),
    await runtime.createSession(path.join(t5Dir, modelFileOf(t5Manifest, PRECISION, t5Dir)), sessionOptions),
    { vocabSize: t5Config.vocabSize, decoderLayers: t5Config.nDecoderLayers, heads: t5Config.nHeads, headDim: t5Config.dKv, startId: 0, eosId: 1, padId: 0 },
  );
  const lmManifest = parseLanguageModelManifest(await readManifest(lmDir), lmDir);
  const lmDecoder = createDecoder(await runtime.createSession(path.join(lmDir, modelFileOf(lmManifest, PRECISION, lmDir)), sessionOptions), lmManifest.state, lmConfig.vocabSize, lmConfig.blockSize, { ownCache: true, slide: slideModeOf(lmConfig) });

  /** Median ms of a decoder step of `rows` streams: T5 after encoding the sources, greedy from the start token. */
  async function t5Steps(rows: number): Promise<number> {
    const sources = Array.from({ length: rows }, (_, r) => [...t5Tokenizer.encode(slice(r, SOURCE - 1)), 1]);
    let batch = await t5Decoder.encode(sources);
    let tokens = sources.map(() => 0);
    const times: number[] = [];
    for (let t = 0; t < TOKENS; t++) {
      const started = performance.now();
      const step = await t5Decoder.step(batch, tokens);
      times.push(performance.now() - started);
      batch = step.batch;
      tokens = tokens.map((_, r) => argmax(step.logits.subarray(r * t5Config.vocabSize, (r + 1) * t5Config.vocabSize)));
    }
    return median(times);
  }

  /** The same for the Transformer, after prefilling prompts of the same length. */
  async function lmSteps(rows: number): Promise<number> {
    const prompts = Array.from({ length: rows }, (_, r) => lmTokenizer.encode(slice(r, SOURCE)));
    const prefilled = await lmDecoder.prefill(prompts);
    let states: SequenceState[] = prefilled.map((p) => p.state);
    let tokens = prefilled.map((p) => argmax(p.logits.subarray(p.logits.length - lmConfig.vocabSize)));
    const times: number[] = [];
    for (let t = 0; t < TOKENS; t++) {
      const started = performance.now();
      const step = await lmDecoder.step(states.map((state, r) => ({ state, token: tokens[r]! })));
      times.push(performance.now() - started);
      states = step.states;
      tokens = tokens.map((_, r) => argmax(step.logits.subarray(r * lmConfig.vocabSize, (r + 1) * lmConfig.vocabSize)));
    }
    return median(times);
  }

  await t5Steps(2);
  await lmSteps(2);
  const perStream: Record<string, { t5: number[]; lm: number[] }> = { 1: { t5: [], lm: [] }, [BATCH]: { t5: [], lm: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const rows of [1, BATCH]) {
      // Alternate which model goes first, so that neither always follows the other's warm caches.
      const order = round % 2 === 0 ? (['t5', 'lm'] as const) : (['lm', 't5'] as const);
      for (const which of order) perStream[rows]![which].push((which === 't5' ? await t5Steps(rows) : await lmSteps(rows)) / rows);
    }
  }

  // Serving: each model's scheduler, its session in a worker thread.
  const workers = await openRuntime('cpu', () => {}, { worker: true });
  const served = async (dir: string, runtimeOf: Runtime): Promise<ServedModel> => {
    const manifest = await readManifest(dir);
    const options = { runtime: runtimeOf, maxBatch: 32, maxQueue: 256, threads: THREADS, precision: PRECISION };
    return manifest.arch === 't5' ? openT5Model(dir, manifest, options) : openModel(dir, options);
  };
  const models = { t5: await served(t5Dir, workers), lm: await served(lmDir, workers) };
  const sampling = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, logitBias: new Map<number, number>() };
  async function request(model: ServedModel, i: number): Promise<number> {
    const text = slice(i, model.arch === 't5' ? SOURCE - 1 : SOURCE);
    let tokens = 0;
    for await (const event of model.scheduler.submit({ prompt: model.tokenizer.encode(text), promptText: text, n: 1, maxTokens: TOKENS, sampling, seed: i, stop: [], logprobs: null, echo: false, ignoreEos: true })) {
      if (event.type === 'text') tokens += event.tokens;
    }
    return tokens;
  }
  async function tokensPerSecond(model: ServedModel, concurrency: number): Promise<number> {
    const started = performance.now();
    const produced = (await Promise.all(Array.from({ length: concurrency }, (_, i) => request(model, i)))).reduce((a, b) => a + b, 0);
    return produced / ((performance.now() - started) / 1000);
  }
  for (const model of Object.values(models)) for (let i = 0; i < 3; i++) await tokensPerSecond(model, 4);
  const throughput: Record<'t5' | 'lm', Record<1 | 32, number[]>> = { t5: { 1: [], 32: [] }, lm: { 1: [], 32: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const which of round % 2 === 0 ? (['t5', 'lm'] as const) : (['lm', 't5'] as const)) {
      for (const concurrency of [1, 32] as const) throughput[which][concurrency].push(await tokensPerSecond(models[which], concurrency));
    }
  }
  for (const model of Object.values(models)) await model.close();

  const ratios = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  const ms = (x: number) => +x.toFixed(3);
  const report = {
    bench: 't5-decode',
    precision: PRECISION,
    threads: THREADS,
    tokens: TOKENS,
    source: SOURCE,
    rounds: ROUNDS,
    t5: { preset: 't5-small-char', vocabSize: t5Config.vocabSize, dModel: t5Config.dModel, layers: `${t5Config.nEncoderLayers}+${t5Config.nDecoderLayers}`, dFf: t5Config.dFf },
    transformer: { vocabSize: lmConfig.vocabSize, nEmbd: lmConfig.nEmbd, nLayer: lmConfig.nLayer, attention: lmManifest.attention },
    msPerTokenPerStream: Object.fromEntries(Object.entries(perStream).map(([rows, { t5, lm }]) => [`batch ${rows}`, {
      t5: ms(median(t5)), transformer: ms(median(lm)), ratio: +(median(t5) / median(lm)).toFixed(2), ratioOfRounds: +ratios(t5, lm).toFixed(2),
      t5Rounds: t5.map(ms), transformerRounds: lm.map(ms),
    }])),
    schedulerTokensPerSecond: Object.fromEntries(Object.entries(throughput).map(([which, byConcurrency]) => [which === 'lm' ? 'transformer' : which, {
      1: Math.round(median(byConcurrency[1])), 32: Math.round(median(byConcurrency[32])),
      speedup32: +(median(byConcurrency[32]) / median(byConcurrency[1])).toFixed(2), speedup32OfRounds: +ratios(byConcurrency[32], byConcurrency[1]).toFixed(2),
    }])),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await rm(root, { recursive: true, force: true });
}
