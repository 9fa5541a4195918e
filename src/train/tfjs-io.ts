/**
 * A file-system IOHandler for tfjs: @tensorflow/tfjs has none in Node without tfjs-node.
 * Saves `model.json` + one `weights.bin`; loads any tfjs Layers model.json with the weight files
 * its manifest lists (several shards, as tensorflowjs_converter writes them), checking sizes.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

type ModelJSON = tf.io.ModelJSON;
type WeightsManifestEntry = tf.io.WeightsManifestEntry;

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2,
};

/** `target` is a directory (holding model.json) or the path of a model.json. */
export function fileSystemIO(target: string): tf.io.IOHandler {
  const isJsonPath = target.endsWith('.json');
  const dir = isJsonPath ? path.dirname(target) : target;
  const modelJsonPath = isJsonPath ? target : path.join(dir, MODEL_JSON);

  async function save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    if (!(artifacts.modelTopology instanceof Object) || artifacts.modelTopology instanceof ArrayBuffer) {
      throw new FerryError('unsupported_model', 'Only tfjs Layers models (JSON topology) can be saved to files.');
    }
    const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
    const modelJson: ModelJSON = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      ...(artifacts.trainingConfig === undefined ? {} : { trainingConfig: artifacts.trainingConfig }),
      ...(artifacts.signature === undefined ? {} : { signature: artifacts.signature }),
      ...(artifacts.userDefinedMetadata === undefined ? {} : { userDefinedMetadata: artifacts.userDefinedMetadata }),
    };
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, WEIGHTS_BIN), new Uint8Array(weightData));
    await writeFileAtomic(modelJsonPath, JSON.stringify(modelJson));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: 'JSON',
        modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
        weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
        weightDataBytes: weightData.byteLength,
      },
    };
  }

  async function load(): Promise<tf.io.ModelArtifacts> {
    const modelJson = await readModelJson(modelJsonPath);
    return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
      const specs: WeightsManifestEntry[] = [];
      const buffers: ArrayBuffer[] = [];
      for (const group of manifest) {
        const files = await Promise.all(group.paths.map((file) => readWeightFile(weightFilePath(dir, file))));
        checkGroupSize(group, files.map((bytes) => bytes.byteLength), dir);
        specs.push(...group.weights);
        for (const bytes of files) buffers.push(toArrayBuffer(bytes));
      }
      return [specs, tf.io.concatenateArrayBuffers(buffers)];
    });
  }

  return { save, load };
}

/** Reads and checks a model.json: present, JSON, with a topology and a weights manifest. */
export async function readModelJson(modelJsonPath: string): Promise<ModelJSON> {
  let text: string;
  try {
    text = await readFile(modelJsonPath, 'utf8');
  } catch (error) {
    throw new FerryError('model_not_found', `Cannot read ${modelJsonPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: 'Point at a tfjs Layers model: a directory holding model.json and its weight files, or the model.json itself.',
      status: 404, cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FerryError('invalid_model_json', `${modelJsonPath} is not valid JSON: ${(error as Error).message}.`, {
      hint: 'The file is cut short or is not JSON: copy or convert the model again.',
      cause: error,
    });
  }
  const record = json as Partial<ModelJSON> | null;
  if (typeof record !== 'object' || record === null || typeof record.modelTopology !== 'object' || record.modelTopology === null) {
    throw new FerryError('invalid_model_json', `${modelJsonPath} has no modelTopology: it is not a tfjs model.json.`, {
      hint: 'Point at the model.json that tensorflowjs_converter or model.save() wrote.',
    });
  }
  const bad = badManifestEntry(record.weightsManifest);
  if (bad) {
    throw new FerryError('invalid_model_json', `${modelJsonPath} has no valid weightsManifest (groups of {paths, weights}): ${bad}.`, {
      hint: 'model.json looks damaged: convert or copy the model again.',
    });
  }
  return record as ModelJSON;
}

/** The first part of a weights manifest that is not [{paths: [string], weights: [{name, shape, dtype}]}], in words. */
function badManifestEntry(manifest: unknown): string | undefined {
  const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 40);
  if (!Array.isArray(manifest)) return `weightsManifest is ${show(manifest)}`;
  for (const [g, group] of manifest.entries()) {
    const at = `weightsManifest[${g}]`;
    if (typeof group !== 'object' || group === null) return `${at} is ${show(group)}`;
    if (!Array.isArray(group.paths) || !group.paths.every((p: unknown) => typeof p === 'string')) return `${at}.paths is ${show(group.paths)}`;
    if (!Array.isArray(group.weights)) return `${at}.weights is ${show(group.weights)}`;
    for (const [i, w] of (group.weights as unknown[]).entries()) {
      const weight = w as { name?: unknown; shape?: unknown; dtype?: unknown } | null;
      if (typeof weight?.name !== 'string') return `${at}.weights[${i}] has the name ${show(weight?.name)}`;
      if (!Array.isArray(weight.shape)) return `weight ${weight.name} has the shape ${show(weight.shape)}`;
      if (typeof weight.dtype !== 'string') return `weight ${weight.name} has the dtype ${show(weight.dtype)}`;
    }
  }
  return undefined;
}

/** A manifest path resolved inside the model's directory (a model.json cannot point elsewhere). */
export function weightFilePath(dir: string, file: string): string {
  const resolved = path.resolve(dir, file);
  const relative = path.relative(path.resolve(dir), resolved);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new FerryError('invalid_model_json', `model.json lists the weight file "${file}", which is outside ${dir}.`, {
      hint: 'Weight files must sit in the directory of model.json (or below it).',
    });
  }
  return resolved;
}

export async function readWeightFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new FerryError('weights_not_found', `Cannot read the weight file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: 'Keep the weight files listed in model.json next to it.', status: 404, cause: error,
    });
  }
}

function checkGroupSize(group: tf.io.WeightsManifestConfig[number], sizes: number[], dir: string): void {
  let expected = 0;
  for (const spec of group.weights) {
    const elementBytes = BYTES_PER_ELEMENT[spec.quantization?.dtype ?? spec.dtype];
    if (elementBytes === undefined) return; // strings have no fixed size: tfjs checks them as it decodes
    expected += spec.shape.reduce((a, b) => a * b, 1) * elementBytes;
  }
  const actual = sizes.reduce((a, b) => a + b, 0);
  if (actual !== expected) {
    const files = group.paths.map((file, i) => `${path.join(dir, file)} (${sizes[i]} bytes)`).join(', ');
    throw new FerryError('weights_size_mismatch',
      `The weight file${group.paths.length > 1 ? 's' : ''} ${files} hold${group.paths.length > 1 ? '' : 's'} ${actual} bytes, `
      + `but model.json's manifest describes ${expected} bytes (${group.weights.length} weights).`, {
        hint: actual < expected ? 'The file looks truncated: copy or convert the model again.' : 'The weight files do not belong to this model.json.',
      });
  }
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // A file read on its own owns its whole buffer: hand it over rather than copy the weights.
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Writes a file under a temporary name and renames it into place, so readers never see half a file. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const temp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(temp, data);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
