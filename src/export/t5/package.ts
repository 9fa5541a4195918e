/**
 * The files of a T5 package in Hugging Face Optimum's layout, which transformers.js's
 * `pipeline('text2text-generation', dir)` loads: the two graphs under onnx/, config.json,
 * generation_config.json and the tokenizer files. Written with writePackageDir (all or nothing).
 */
import { t5TokenizerFiles } from '../../tokenizer/t5.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import type { T5Config } from '../../train/models/t5-config.ts';
import type { PackageFiles } from '../package.ts';
import { serializeModelChunks } from '../writer.ts';
import { t5DecoderGraph, t5EncoderGraph, type T5WeightMap } from './graph.ts';
import { t5GenerationConfig, t5HfConfig } from './hf-config.ts';

export const T5_ENCODER_FILE = 'onnx/encoder_model.onnx';
export const T5_DECODER_FILE = 'onnx/decoder_model_merged.onnx';

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export function t5PackageFiles(config: T5Config, weights: T5WeightMap, tokenizer: Tokenizer, opset: number): PackageFiles {
  return {
    [T5_ENCODER_FILE]: serializeModelChunks(t5EncoderGraph(config, weights, opset)),
    [T5_DECODER_FILE]: serializeModelChunks(t5DecoderGraph(config, weights, opset)),
    'config.json': json(t5HfConfig(config)),
    'generation_config.json': json(t5GenerationConfig(config)),
    ...t5TokenizerFiles(tokenizer, { modelMaxLength: config.maxSourceLength }),
  };
}
