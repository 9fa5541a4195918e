/**
 * `exportModel`: a tfjs checkpoint (or foreign model.json: Layers, or a graph model handed to graph-model/) in, a verified ONNX package dir out
 * (docs/FORMATS.md): onnx/model.onnx (+ int8 / fp16 variants), ferry.json, tokenizer files and,
 * for Transformers, GPT-2 style config.json / generation_config.json for transformers.js.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FerryError } from '../errors.ts';
import { manifestSchema, PACKAGE_FORMAT, PACKAGE_VERSION, stateSpecOf, type ManifestInput, type PackageArch, type ParityEntry, type PrecisionFiles } from '../package/index.ts';
import { tokenizerConfigJson } from '../tokenizer/index.ts';
import type { ModelConfig } from '../train/models/index.ts';
import { convertModel, modelNamedIO, type GraphIO } from './convert.ts';
import type { AttentionForm, Target } from './converters/types.ts';
import type { Graph } from './graph.ts';
import { lstmLanguageModelIO } from './lm/lstm.ts';
import { languageModelSpec } from './lm/spec.ts';
import { transformerLanguageModelIO } from './lm/transformer.ts';
import { writePackageDir, type PackageFiles } from './package.ts';
import { exportGraphModel, refuseLanguageModelOptions } from './graph-model/export.ts';
import { exportT5Checkpoint, t5CheckpointOf, t5OptionProblems, t5OptionsError } from './t5/export.ts';
import { loadPlugins } from './plugins.ts';
import { graphModelSource, readExportSource, type ExportSource } from './source.ts';
import { buildVariants, variantText } from './variants.ts';
import { verifyForeignModel, verifyLanguageModel, type ParityReport } from './verify.ts';
import { FERRY_VERSION, serializeModel, serializeModelChunks } from './writer.ts';

export const TARGETS: readonly Target[] = ['cpu', 'wasm', 'webgpu'];
export const ATTENTION_FORMS: readonly AttentionForm[] = ['decomposed', 'mha', 'gqa', 'attention23'];
export const DEFAULT_OPSET = 17;
export const MAX_OPSET = 23;

export interface ExportOptions {
  /** A checkpoint dir, a training run dir (its best/ is used) or a tfjs model.json. */
  source: string;
  outDir: string;
  target?: Target;
  attention?: AttentionForm;
  quantize?: 'int8';
  fp16?: boolean;
  opset?: number;
  /** Compare with tfjs (default true). */
  verify?: boolean;
  /** The manifest's name, which serving uses as the model's id (default: the package dir's name). */
  name?: string;
  /** Converter modules for layer classes ferry does not know (plugins.ts). */
  plugins?: string[];
  log?: (line: string) => void;
}

export interface ExportReport {
  outDir: string;
  arch: PackageArch;
  files: PrecisionFiles;
  sizes: Record<string, number>;
  parity: Record<string, ParityEntry>;
  manifest: ManifestInput;
  seconds: number;
}

interface ResolvedOptions {
  target: Target;
  attention: AttentionForm;
  opset: number;
}

function badOption(message: string, hint: string): FerryError {
  return new FerryError('export_bad_options', message, { hint });
}

/** Checks that need no model: names, opset range, combinations. */
function resolveOptions(options: ExportOptions): ResolvedOptions {
  const target = options.target ?? 'cpu';
  if (!TARGETS.includes(target)) throw badOption(`unknown target ${JSON.stringify(target)}`, `Targets: ${TARGETS.join(', ')}.`);
  const attention = options.attention ?? 'decomposed';
  if (!ATTENTION_FORMS.includes(attention)) throw badOption(`unknown attention form ${JSON.stringify(attention)}`, `Forms: ${ATTENTION_FORMS.join(', ')}.`);
  const opset = options.opset ?? (attention === 'attention23' ? 23 : DEFAULT_OPSET);
  if (!Number.isInteger(opset) || opset < DEFAULT_OPSET || opset > MAX_OPSET) {
    throw badOption(`opset ${opset} is not supported`, `Choose an opset from ${DEFAULT_OPSET} to ${MAX_OPSET}.`);
  }
  if (attention === 'attention23' && opset < 23) throw badOption(`--attention attention23 needs opset 23, not ${opset}`, 'Pass --opset 23 or leave --opset out.');
  if (attention === 'gqa' && target === 'webgpu') throw badOption('--attention gqa is not verified on webgpu', 'Use --attention decomposed (or mha) for --target webgpu.');
  if (options.quantize !== undefined && options.quantize !== 'int8') throw badOption(`unknown quantization ${JSON.stringify(options.quantize)}`, 'Use --quantize int8.');
  if (options.quantize === 'int8' && target === 'webgpu') {
    throw badOption('--quantize int8 with --target webgpu: the WebGPU EP has no integer MatMul kernel, so those nodes would fall back to CPU', 'Use --fp16 for webgpu, or --target wasm for int8.');
  }
  return { target, attention, opset };
}

/** Checks that depend on the model being exported. */
function checkModelOptions(options: ExportOptions, resolved: ResolvedOptions, config: ModelConfig | undefined): void {
  if (resolved.attention !== 'decomposed' && config?.arch !== 'transformer') {
    throw badOption(`--attention ${resolved.attention} applies only to ferry Transformer checkpoints`, 'Leave --attention out for this model.');
  }
  if (resolved.attention === 'gqa' && config?.arch === 'transformer' && (config.nEmbd / config.nHead) % 8 !== 0) {
    throw badOption(`--attention gqa needs a head size that is a multiple of 8 (this model's is ${config.nEmbd / config.nHead})`, 'Use --attention decomposed or mha.');
  }
  if ((options.quantize || options.fp16) && !config) {
    throw badOption('--quantize and --fp16 need a ferry checkpoint (their perplexity is measured with its tokenizer)', 'Export a checkpoint dir, or leave the option out.');
  }
}

function graphIO(config: ModelConfig | undefined, attention: AttentionForm, target: Target): GraphIO {
  if (!config) return modelNamedIO;
  if (config.arch === 'lstm') return lstmLanguageModelIO(config.vocabSize);
  // ORT's WebGPU EP crashes on the empty past of a first step when the past is read on its own.
  const newKeyValues = attention === 'decomposed' && target !== 'webgpu';
  return transformerLanguageModelIO({ vocabSize: config.vocabSize, layers: config.nLayer, heads: config.nHead, headDim: config.nEmbd / config.nHead }, attention, { newKeyValues });
}

function gpt2Config(config: Extract<ModelConfig, { arch: 'transformer' }>, eosId: number | undefined) {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_embd: config.nEmbd,
    n_positions: config.blockSize,
    n_ctx: config.blockSize,
    vocab_size: config.vocabSize,
    bos_token_id: eosId ?? null,
    eos_token_id: eosId ?? null,
    use_cache: true,
    layer_norm_epsilon: 1e-5,
  };
}

const GENERATION_DEFAULTS = { temperature: 0.8, topK: 40, maxTokens: 200 };

export async function exportModel(options: ExportOptions): Promise<ExportReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const resolved = resolveOptions(options);
  const t5Checkpoint = await t5CheckpointOf(options.source);
  if (t5Checkpoint) {
    const problems = t5OptionProblems(options);
    if (problems.length > 0) throw t5OptionsError(problems);
    return exportT5Checkpoint(t5Checkpoint, { outDir: options.outDir, opset: resolved.opset, verify: options.verify, name: options.name, log });
  }
  const graphModelJson = await graphModelSource(options.source);
  if (graphModelJson) {
    refuseLanguageModelOptions(options);
    return exportGraphModel({ ...options, modelJsonPath: graphModelJson, opset: resolved.opset, target: resolved.target });
  }
  await loadPlugins(options.plugins ?? []);
  const source = await readExportSource(options.source);
  log(source.checkpoint ? `checkpoint ${source.dir} (step ${source.checkpoint.training.step})` : `tfjs model ${source.modelJsonPath}`);
  source.notes.forEach(log);
  const config = source.config;
  checkModelOptions(options, resolved, config);
  const arch: PackageArch = config?.arch ?? 'model';
  // The package dir's name by default: `ferry serve models/my-lstm` then serves `my-lstm`.
  const name = options.name ?? path.basename(path.resolve(options.outDir));

  const { graph, cpuOnlyNodes } = convertModel(source.model, {
    opset: resolved.opset,
    target: resolved.target,
    io: graphIO(config, resolved.attention, resolved.target),
    name,
  });
  log(`converted ${source.model.layers.length} layers into ${graph.nodes.length} ONNX nodes (opset ${resolved.opset}, target ${resolved.target}${config?.arch === 'transformer' ? `, attention ${resolved.attention}` : ''})`);
  const parity: Record<string, ParityEntry> = {};
  if (options.verify !== false) {
    log('verifying fp32 against tfjs:');
    parity.fp32 = await verifySource(source, serializeModel(graph), resolved.attention, log);
  }

  const variants = options.quantize || options.fp16
    ? await buildVariants(graph, languageModelSpec(config!), variantText(source.tokenizer, config!.vocabSize), { int8: options.quantize === 'int8', fp16: options.fp16 === true }, log)
    : { parity: {} };
  Object.assign(parity, variants.parity);

  const files: PrecisionFiles = { fp32: 'onnx/model.onnx', int8: variants.int8 ? 'onnx/model_quantized.onnx' : null, fp16: variants.fp16 ? 'onnx/model_fp16.onnx' : null };
  const manifest = packageManifest({ name, config, graph, files, resolved, cpuOnlyNodes, parity, training: source.checkpoint?.training ?? null });
  const metadata = (doc: string) => ({ docString: doc, properties: { ferry: manifest } });
  const what = arch === 'model' ? 'a tfjs Layers model' : `${arch} language model`;
  const packageFiles: PackageFiles = {
    'onnx/model.onnx': serializeModelChunks(graph, metadata(`${name}: ${what} exported by ferry (fp32)`)),
    'ferry.json': `${JSON.stringify(manifest, null, 2)}\n`,
  };
  if (variants.int8) packageFiles['onnx/model_quantized.onnx'] = serializeModelChunks(variants.int8, metadata(`${name} (int8 weights)`));
  if (variants.fp16) packageFiles['onnx/model_fp16.onnx'] = serializeModelChunks(variants.fp16, metadata(`${name} (fp16 weights)`));
  if (source.tokenizer) {
    packageFiles['tokenizer.json'] = JSON.stringify(source.tokenizer.toJSON());
    packageFiles['tokenizer_config.json'] = `${JSON.stringify(tokenizerConfigJson(source.tokenizer, config?.arch === 'transformer' ? { modelMaxLength: config.blockSize } : {}), null, 2)}\n`;
  }
  // The training curve travels with the model, so the playground can show how it was trained.
  const metrics = source.checkpoint ? await readFile(path.join(source.dir, 'metrics.jsonl'), 'utf8').catch(() => undefined) : undefined;
  if (metrics !== undefined) packageFiles['metrics.jsonl'] = metrics;
  // transformers.js has no model type with ferry's RoPE (LayerNorm, GELU, unrotated cache) or
  // ALiBi blocks: a gpt2 config.json would have it add learned positions that are not there.
  if (config?.arch === 'transformer' && (config.positional === 'learned' || config.positional === 'sinusoidal')) {
    const eos = source.tokenizer?.eosId;
    packageFiles['config.json'] = `${JSON.stringify(gpt2Config(config, eos), null, 2)}\n`;
    // max_length caps prompt + new tokens at the context: transformers.js itself never stops at
    // the position limit (docs/ARCHITECTURE.md, "Runtime facts") and would fail in the position Gather.
    packageFiles['generation_config.json'] = `${JSON.stringify({ bos_token_id: eos ?? null, eos_token_id: eos ?? null, do_sample: true, temperature: GENERATION_DEFAULTS.temperature, top_k: GENERATION_DEFAULTS.topK, max_length: config.blockSize }, null, 2)}\n`;
  }
  await writePackageDir(options.outDir, packageFiles);
  const sizes = Object.fromEntries(Object.entries(packageFiles).filter(([k]) => k.startsWith('onnx/')).map(([k, v]) => [k, (v as Uint8Array[]).reduce((n, c) => n + c.byteLength, 0)]));
  const seconds = (performance.now() - started) / 1000;
  log(`wrote ${options.outDir} in ${seconds.toFixed(2)} s (${Object.entries(sizes).map(([k, v]) => `${k} ${(v / 1e6).toFixed(2)} MB`).join(', ')})`);
  return { outDir: options.outDir, arch, files, sizes, parity, manifest, seconds };
}

interface ManifestParts {
  name: string;
  config: ModelConfig | undefined;
  graph: Graph;
  files: PrecisionFiles;
  resolved: ResolvedOptions;
  cpuOnlyNodes: string[];
  parity: Record<string, ParityEntry>;
  training: Record<string, unknown> | null;
}

/**
 * ferry.json (src/package/manifest.ts), checked against the schema the runtimes read it with:
 * a manifest they would refuse is an exporter bug, caught here rather than at load.
 */
function packageManifest(parts: ManifestParts): ManifestInput {
  const { name, config, graph, files, resolved, cpuOnlyNodes, parity } = parts;
  const tensors = (values: Graph['inputs']) => values.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape }));
  const common = { format: PACKAGE_FORMAT, version: PACKAGE_VERSION, name } as const;
  const producer = { producer: `ferry ${FERRY_VERSION}`, exportedAt: new Date().toISOString() };
  let manifest: ManifestInput;
  if (!config) {
    // A tfjs Layers model's tensors have the batch first.
    const plain = (values: Graph['inputs']) => tensors(values).map((t) => ({ ...t, batchDim: t.shape.length ? 0 : null }));
    manifest = {
      ...common, arch: 'model', source: 'tfjs-layers', files, inputs: plain(graph.inputs), outputs: plain(graph.outputs),
      opset: resolved.opset, target: resolved.target, cpuOnlyNodes, parity, ...producer,
    };
  } else {
    const lm = {
      model: config,
      contextLength: config.arch === 'transformer' ? config.blockSize : null,
      files,
      inputs: tensors(graph.inputs),
      outputs: tensors(graph.outputs),
    };
    const rest = { opset: resolved.opset, target: resolved.target };
    const tail = { cpuOnlyNodes, generation: GENERATION_DEFAULTS, parity, training: parts.training, ...producer };
    manifest = config.arch === 'lstm'
      ? { ...common, arch: 'lstm', ...lm, state: stateSpecOf(config), ...rest, attention: null, ...tail }
      : { ...common, arch: 'transformer', ...lm, state: stateSpecOf(config), ...rest, attention: resolved.attention, ...tail };
  }
  const checked = manifestSchema.safeParse(manifest);
  if (!checked.success) throw new Error(`export built a ferry.json its readers refuse: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return manifest;
}

async function verifySource(source: ExportSource, onnx: Uint8Array, attention: AttentionForm, log: (line: string) => void): Promise<ParityReport> {
  if (!source.config) return verifyForeignModel(source.model, onnx, { log });
  return verifyLanguageModel(source.model, onnx, languageModelSpec(source.config), { tokenizer: source.tokenizer, attention, log });
}

