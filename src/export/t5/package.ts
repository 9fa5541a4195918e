/**
 * The files of a T5 package in Hugging Face Optimum's layout, which transformers.js's
 * `pipeline('text2text-generation', dir)` loads: the two graphs under onnx/, config.json,
 * generation_config.json and the tokenizer files; and ferry.json (arch "t5"), which `ferry serve`
 * and `ferry generate` read. Written with writePackageDir (all or nothing).
 */
import { t5TokenizerFiles } from '../../tokenizer/t5.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import type { T5Config } from '../../train/models/t5-config.ts';
import type { PackageFiles } from '../package.ts';
import { FERRY_VERSION, serializeModelChunks } from '../writer.ts';
import { MANIFEST_FILE, manifestSchema, PACKAGE_FORMAT, PACKAGE_VERSION, type ManifestInput, type ParityEntry } from '../../package/index.ts';
import { t5DecoderGraph, t5EncoderGraph, type T5WeightMap } from './graph.ts';
import { t5GenerationConfig, t5HfConfig } from './hf-config.ts';
import type { T5Variants } from './variants.ts';

export const T5_ENCODER_FILE = 'onnx/encoder_model.onnx';
export const T5_DECODER_FILE = 'onnx/decoder_model_merged.onnx';

/** Optimum's names of the smaller copies (what transformers.js loads for dtype q8 and fp16). */
export const T5_VARIANT_FILES = {
  int8: { encoder: 'onnx/encoder_model_quantized.onnx', decoder: 'onnx/decoder_model_merged_quantized.onnx' },
  fp16: { encoder: 'onnx/encoder_model_fp16.onnx', decoder: 'onnx/decoder_model_merged_fp16.onnx' },
} as const;
const WEIGHTS_IN = { int8: 'int8 weights', fp16: 'fp16 weights' } as const;

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export const T5_HF_CONFIG_FILE = 'config.json';

/**
 * `name`: the model id the package is served under. `variants` (buildT5Variants, built from the
 * same config and weights): the int8 / fp16 copies to write beside the fp32 graphs, listed in
 * ferry.json's `files` / `encoderFiles` with what their checks measured under `parity`.
 */
export function t5PackageFiles(config: T5Config, weights: T5WeightMap, tokenizer: Tokenizer, opset: number, name: string, variants?: T5Variants): PackageFiles {
  const files: PackageFiles = {
    [MANIFEST_FILE]: t5ManifestFile(config, opset, name, { variants }),
    [T5_ENCODER_FILE]: serializeModelChunks(t5EncoderGraph(config, weights, opset)),
    [T5_DECODER_FILE]: serializeModelChunks(t5DecoderGraph(config, weights, opset)),
    [T5_HF_CONFIG_FILE]: json(t5HfConfig(config)),
    'generation_config.json': json(t5GenerationConfig(config)),
    ...t5TokenizerFiles(tokenizer, { modelMaxLength: config.maxSourceLength }),
  };
  for (const key of ['int8', 'fp16'] as const) {
    const [encoder, decoder] = [variants?.encoder[key], variants?.decoder[key]];
    if (!encoder || !decoder) continue;
    files[T5_VARIANT_FILES[key].encoder] = serializeModelChunks(encoder, { docString: `${name} encoder (${WEIGHTS_IN[key]})` });
    files[T5_VARIANT_FILES[key].decoder] = serializeModelChunks(decoder, { docString: `${name} merged decoder (${WEIGHTS_IN[key]})` });
  }
  return files;
}

/** What ferry.json records beyond the config: the copies written, the parity measured, the checkpoint's training record. */
export interface T5ManifestRecord {
  variants?: T5Variants;
  parity?: Record<string, ParityEntry>;
  training?: Record<string, unknown> | null;
}

/** The package's ferry.json text, checked against the schema its readers use. */
export function t5ManifestFile(config: T5Config, opset: number, name: string, record: T5ManifestRecord = {}): string {
  return json(t5Manifest(config, opset, name, record));
}

function t5Manifest(config: T5Config, opset: number, name: string, record: T5ManifestRecord): ManifestInput {
  const { variants } = record;
  const has = (key: 'int8' | 'fp16') => variants?.encoder[key] !== undefined && variants.decoder[key] !== undefined;
  const fileOf = (key: 'int8' | 'fp16', graph: 'encoder' | 'decoder') => (has(key) ? T5_VARIANT_FILES[key][graph] : null);
  const parity = { ...record.parity, ...variants?.parity };
  const manifest: ManifestInput = {
    format: PACKAGE_FORMAT, version: PACKAGE_VERSION, name, arch: 't5',
    files: { fp32: T5_DECODER_FILE, int8: fileOf('int8', 'decoder'), fp16: fileOf('fp16', 'decoder') },
    encoderFiles: { fp32: T5_ENCODER_FILE, int8: fileOf('int8', 'encoder'), fp16: fileOf('fp16', 'encoder') },
    hfConfig: T5_HF_CONFIG_FILE,
    model: config,
    ...(Object.keys(parity).length ? { parity } : {}),
    opset,
    ...(record.training === undefined ? {} : { training: record.training }),
    producer: `ferry ${FERRY_VERSION}`,
    exportedAt: new Date().toISOString(),
  };
  const checked = manifestSchema.safeParse(manifest);
  if (!checked.success) throw new Error(`T5 export built a ferry.json its readers refuse: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return manifest;
}
