/**
 * A package as a Triton Inference Server model repository entry: `OUT/<name>/config.pbtxt`
 * (protobuf text of Triton's ModelConfig: platform onnxruntime_onnx, max_batch_size, typed inputs
 * and outputs, dynamic_batching) and `OUT/<name>/1/model.onnx`, with ferry.json beside them so
 * that `ferry serve OUT` serves the same layout. The one owner of config.pbtxt.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';
import { writePackageDir, type PackageFiles } from './package.ts';

/** ONNX element types by their names in ferry.json, as Triton's DataType enum names them. */
const TRITON_TYPES: Record<string, string> = {
  bool: 'TYPE_BOOL', uint8: 'TYPE_UINT8', uint16: 'TYPE_UINT16', uint32: 'TYPE_UINT32', uint64: 'TYPE_UINT64',
  int8: 'TYPE_INT8', int16: 'TYPE_INT16', int32: 'TYPE_INT32', int64: 'TYPE_INT64',
  float16: 'TYPE_FP16', float32: 'TYPE_FP32', float64: 'TYPE_FP64', string: 'TYPE_STRING',
};

export interface TritonTensor {
  name: string;
  dtype: string;
  shape: readonly (string | number)[];
  /** Where the batch dim is (plain packages state it); absent or null: none. */
  batchDim?: number | null;
}

export interface TritonModel {
  name: string;
  inputs: readonly TritonTensor[];
  outputs: readonly TritonTensor[];
}

export interface TritonOptions {
  /** max_batch_size when the model can batch (every tensor's batch dim first; default 32). */
  maxBatchSize?: number;
  /** dynamic_batching's max_queue_delay_microseconds (default 1000). */
  queueDelayMicroseconds?: number;
}

/** Triton batches along a first dim it leaves out of `dims`; it can only when every tensor has one. */
export function canBatch(model: TritonModel): boolean {
  return [...model.inputs, ...model.outputs].every((t) => t.batchDim === 0 && typeof t.shape[0] === 'string');
}

export function tritonConfigText(model: TritonModel, options: TritonOptions = {}): string {
  const batching = canBatch(model);
  const tensors = (field: 'input' | 'output', list: readonly TritonTensor[]) => {
    const entries = list.map((t) => {
      const type = TRITON_TYPES[t.dtype];
      if (!type) throw new FerryError('triton_unsupported_type', `${model.name}: tensor ${t.name} has dtype ${t.dtype}, which Triton has no type for`, { hint: 'Export the model with tensors of standard ONNX types.' });
      const dims = (batching ? t.shape.slice(1) : t.shape).map((d) => (typeof d === 'number' ? d : -1));
      return `  {\n    name: ${JSON.stringify(t.name)}\n    data_type: ${type}\n    dims: [ ${dims.join(', ')} ]\n  }`;
    });
    return `${field} [\n${entries.join(',\n')}\n]\n`;
  };
  let text = `name: ${JSON.stringify(model.name)}\nplatform: "onnxruntime_onnx"\nmax_batch_size: ${batching ? options.maxBatchSize ?? 32 : 0}\n`;
  text += tensors('input', model.inputs) + tensors('output', model.outputs);
  if (batching) text += `dynamic_batching {\n  max_queue_delay_microseconds: ${options.queueDelayMicroseconds ?? 1000}\n}\n`;
  return text;
}

/** Files of a package besides its model files that travel to the repository (tokenizers, configs). */
const SIDE_FILES = ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'generation_config.json'];

/**
 * Lays the fp32 model of the package in `packageDir` out under `repoDir`; returns the model's dir.
 * The ferry.json there names `1/model.onnx` as its only file.
 */
export async function writeTritonRepo(packageDir: string, repoDir: string, options: TritonOptions = {}): Promise<string> {
  const manifestPath = path.join(packageDir, 'ferry.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as TritonModel & { files: { fp32: string } };
  if (!/^[\w.-]+$/.test(manifest.name)) {
    throw new FerryError('triton_bad_name', `${manifestPath}: the model name "${manifest.name}" cannot be a Triton model directory`, { hint: 'Export with --name made of letters, digits, "_", "-" and "."' });
  }
  const files: PackageFiles = {
    'config.pbtxt': tritonConfigText(manifest, options),
    'ferry.json': `${JSON.stringify({ ...manifest, files: { fp32: '1/model.onnx', int8: null, fp16: null } }, null, 2)}\n`,
  };
  for (const name of SIDE_FILES) {
    const file = path.join(packageDir, name);
    if (await stat(file).then(() => true, () => false)) files[name] = await readFile(file);
  }
  const modelDir = path.join(repoDir, manifest.name);
  files['1/model.onnx'] = await readFile(path.join(packageDir, manifest.files.fp32));
  await writePackageDir(modelDir, files);
  return modelDir;
}
