/**
 * Tensors for `ferry infer` from files and back: `.npy` (src/npy.ts), or JSON, either a tensor as
 * the protocol writes one (`{"datatype", "shape", "data"}`) or a bare nested array, which takes
 * the model input's datatype.
 */
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../../errors.ts';
import { decodeNpy, encodeNpy } from '../../npy.ts';
import { ApiError } from '../openai-error.ts';
import type { NamedTensors, Tensor } from '../../package/session.ts';
import { isV2Datatype, V2_DATATYPES } from './datatypes.ts';
import { decodeJsonTensor } from './json-tensors.ts';
import type { TensorSignature } from './model.ts';

/** `name=file` pairs of `--input`, read against the model's inputs. */
export async function readInputs(pairs: readonly string[], inputs: readonly TensorSignature[]): Promise<NamedTensors> {
  const feeds: NamedTensors = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new FerryError('bad_input_flag', `--input ${pair}: expected NAME=FILE`, { hint: `name one of the model's inputs: ${inputs.map((i) => i.name).join(', ')}` });
    const name = pair.slice(0, at);
    const file = pair.slice(at + 1);
    const signature = inputs.find((i) => i.name === name);
    if (!signature) throw new FerryError('unknown_input', `--input ${pair}: the model has no input "${name}"`, { hint: `its inputs: ${inputs.map((i) => i.name).join(', ')}` });
    feeds[name] = await readTensorFile(file, signature);
  }
  const missing = inputs.filter((i) => !feeds[i.name]);
  if (missing.length) throw new FerryError('missing_input', `no --input for ${missing.map((i) => i.name).join(', ')}`, { hint: 'pass --input NAME=FILE.npy or NAME=FILE.json for each model input' });
  return feeds;
}

async function readTensorFile(file: string, signature: TensorSignature): Promise<Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (cause) {
    throw new FerryError('missing_file', `--input ${signature.name}=${file}: cannot read the file (${(cause as NodeJS.ErrnoException).code ?? cause})`, { hint: 'check the path', cause });
  }
  if (file.toLowerCase().endsWith('.npy')) return decodeNpy(bytes, file);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new FerryError('bad_json', `${file} is not valid JSON: ${(cause as Error).message}`, { hint: 'pass a .npy file, or JSON: a nested array or {"datatype", "shape", "data"}', cause });
  }
  try {
    if (Array.isArray(json)) return decodeJsonTensor(signature.name, signature.datatype, shapeOfNested(json, file), json);
    const tensor = json as { datatype?: unknown; shape?: unknown; data?: unknown };
    if (typeof tensor.datatype !== 'string' || !isV2Datatype(tensor.datatype) || !Array.isArray(tensor.shape) || !tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FerryError('bad_json', `${file}: expected a nested array or {"datatype", "shape", "data"} with a datatype of ${Object.keys(V2_DATATYPES).join(', ')}`);
    }
    return decodeJsonTensor(signature.name, tensor.datatype, tensor.shape as number[], tensor.data);
  } catch (error) {
    if (error instanceof ApiError) throw new FerryError('bad_json', `${file}: ${error.message}`);
    throw error;
  }
}

/** The shape of a nested array, refusing ragged ones. */
function shapeOfNested(value: unknown[], file: string): number[] {
  const shape: number[] = [];
  for (let level: unknown = value; Array.isArray(level); level = level[0]) shape.push(level.length);
  const check = (node: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw new FerryError('bad_json', `${file}: the array is ragged (nested deeper in places)`);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) throw new FerryError('bad_json', `${file}: the array is ragged: a row at depth ${depth} does not have ${shape[depth]} entries`);
    for (const child of node) check(child, depth + 1);
  };
  check(value, 0);
  return shape;
}

/** Writes each output as DIR/<name>.npy (temp file, then rename); returns the paths. */
export async function writeOutputs(outputs: NamedTensors, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, tensor] of Object.entries(outputs)) {
    const file = path.join(dir, `${name.replace(/[^\w.-]/g, '_')}.npy`);
    await writeFile(`${file}.tmp`, encodeNpy(tensor));
    await rename(`${file}.tmp`, file);
    written.push(file);
  }
  return written;
}
