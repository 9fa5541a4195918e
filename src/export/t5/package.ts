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

export const T5_ENCODER_FILE = 'onnx/encoder_model.onnx';
export const T5_DECODER_FILE = 'onnx/decoder_model_merged.onnx';

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export const T5_HF_CONFIG_FILE = 'config.json';

/** `name`: the model id the package is served under. */
export function t5PackageFiles(config: T5Config, weights: T5WeightMap, tokenizer: Tokenizer, opset: number, name: string): PackageFiles {
  return {
    [MANIFEST_FILE]: t5ManifestFile(config, opset, name),
    [T5_ENCODER_FILE]: serializeModelChunks(t5EncoderGraph(config, weights, opset)),
    [T5_DECODER_FILE]: serializeModelChunks(t5DecoderGraph(config, weights, opset)),
    [T5_HF_CONFIG_FILE]: json(t5HfConfig(config)),
    'generation_config.json': json(t5GenerationConfig(config)),
    ...t5TokenizerFiles(tokenizer, { modelMaxLength: config.maxSourceLength }),
  };
}

/** What an export adds to ferry.json once known: the parity it measured and the checkpoint's training record. */
export interface T5ManifestRecord {
  parity?: Record<string, ParityEntry>;
  training?: Record<string, unknown> | null;
}

/** The package's ferry.json text, checked against the schema its readers use. */
export function t5ManifestFile(config: T5Config, opset: number, name: string, record: T5ManifestRecord = {}): string {
  return json(t5Manifest(config, opset, name, record));
}

function t5Manifest(config: T5Config, opset: number, name: string, record: T5ManifestRecord): ManifestInput {
  const manifest: ManifestInput = {
    format: PACKAGE_FORMAT, version: PACKAGE_VERSION, name, arch: 't5',
    files: { fp32: T5_DECODER_FILE, int8: null, fp16: null },
    encoderFiles: { fp32: T5_ENCODER_FILE, int8: null, fp16: null },
    hfConfig: T5_HF_CONFIG_FILE,
    model: config,
    opset,
    ...record,
    producer: `ferry ${FERRY_VERSION}`,
    exportedAt: new Date().toISOString(),
  };
  const checked = manifestSchema.safeParse(manifest);
  if (!checked.success) throw new Error(`T5 export built a ferry.json its readers refuse: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return manifest;
}
