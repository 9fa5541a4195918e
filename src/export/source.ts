/**
 * What `ferry export` reads: a checkpoint dir (model.json + weights.bin + ferry.json +
 * tokenizer.json), a run dir (its best/ checkpoint) or a foreign tfjs `model.json`. The topology is
 * checked against the converters before tfjs loads it, and weights are checked for NaN/Inf.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { readTokenizerFile } from '../tokenizer/node.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { validateModelConfig, type ModelConfig } from '../train/models/index.ts';
import { fileSystemIO, readModelJson } from '../train/tfjs-io.ts';
import { converterFor, hasConverter, unknownCustomLayer } from './converters/registry.ts';
import { withResetAfterGrus } from './reset-after-gru.ts';

export interface ExportSource {
  /** The checkpoint dir, or the dir of a foreign model.json. */
  dir: string;
  modelJsonPath: string;
  model: tf.LayersModel;
  /** What the user should know about how the model was read (layers tfjs cannot run itself). */
  notes: string[];
  /** Set for ferry checkpoints (from ferry.json). */
  config?: ModelConfig;
  checkpoint?: Record<string, unknown>;
  tokenizer?: Tokenizer;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

async function locate(source: string): Promise<{ dir: string; modelJsonPath: string }> {
  const info = await stat(source).catch(() => undefined);
  if (!info) {
    throw new FerryError('EXPORT_SOURCE_NOT_FOUND', `${source} does not exist`, {
      hint: 'Give a checkpoint dir (model.json, weights.bin, ferry.json), a training run dir, or a tfjs model.json.',
      status: 404,
    });
  }
  if (info.isFile()) return { dir: path.dirname(source), modelJsonPath: source };
  const best = path.join(source, 'best');
  if (!(await exists(path.join(source, 'model.json'))) && (await exists(path.join(best, 'model.json')))) {
    return { dir: best, modelJsonPath: path.join(best, 'model.json') };
  }
  return { dir: source, modelJsonPath: path.join(source, 'model.json') };
}

interface LayerJson {
  name?: string;
  class_name?: string;
  className?: string;
  config?: { name?: string; layer?: LayerJson; layers?: LayerJson[] } & Record<string, unknown>;
}

/** Every layer of a topology (nested models and wrappers included) must have a converter. */
function checkTopology(topology: unknown): void {
  const root = (topology as { model_config?: LayerJson }).model_config ?? (topology as LayerJson);
  const visit = (layer: LayerJson) => {
    const className = layer.class_name ?? layer.className ?? '?';
    const config = layer.config ?? {};
    if (className === 'Sequential' || className === 'Model' || className === 'Functional') {
      const layers = Array.isArray(config) ? (config as LayerJson[]) : config.layers ?? [];
      layers.forEach(visit);
      return;
    }
    const call = { name: String(config.name ?? layer.name ?? '?'), className };
    if (!hasConverter(className) && !(className in tf.serialization.SerializationMap.getMap().classNameMap)) throw unknownCustomLayer(call);
    converterFor(call);
  };
  visit(root);
}

async function loadModel(modelJsonPath: string): Promise<{ model: tf.LayersModel; notes: string[] }> {
  const json = await readModelJson(modelJsonPath);
  checkTopology(json.modelTopology);
  await import('../train/models/index.ts'); // registers ferry's custom layers with tfjs
  let model: tf.LayersModel;
  const resetAfterGrus: string[] = [];
  try {
    model = await tf.loadLayersModel(withResetAfterGrus(fileSystemIO(modelJsonPath), resetAfterGrus));
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError('EXPORT_MODEL_UNREADABLE', `tfjs cannot load ${modelJsonPath}: ${(error as Error).message}`, {
      hint: 'Check that model.json and its weight files come from the same tfjs Layers model.',
      cause: error,
    });
  }
  for (const v of model.weights) {
    const data = v.read().dataSync();
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new FerryError('EXPORT_NONFINITE_WEIGHTS', `weight ${v.originalName} holds ${data[bad]} at index ${bad}`, {
        hint: 'The checkpoint diverged or is damaged: export an earlier checkpoint (e.g. best/), or retrain with a lower learning rate.',
      });
    }
  }
  const notes = resetAfterGrus.map((name) => `layer ${name}: a GRU with reset_after (Keras 2's default), which tfjs cannot run; verified against ferry's own tfjs version of it`);
  return { model, notes };
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new FerryError('EXPORT_BAD_CHECKPOINT', `cannot read ${file}: ${(error as Error).message}`, {
      hint: 'The checkpoint is damaged: export another one, or remove ferry.json to export the model.json as a plain graph.',
      cause: error,
    });
  }
}

export async function readExportSource(source: string): Promise<ExportSource> {
  const { dir, modelJsonPath } = await locate(source);
  const ferryJson = path.join(dir, 'ferry.json');
  const isCheckpoint = path.basename(modelJsonPath) === 'model.json' && (await exists(ferryJson));
  const { model, notes } = await loadModel(modelJsonPath);
  if (!isCheckpoint) return { dir, modelJsonPath, model, notes };
  const checkpoint = await readJson(ferryJson);
  const config = validateModelConfig(checkpoint.model);
  const tokenizerPath = path.join(dir, 'tokenizer.json');
  if (!(await exists(tokenizerPath))) {
    throw new FerryError('EXPORT_BAD_CHECKPOINT', `${dir} has a ferry.json but no tokenizer.json`, {
      hint: 'A language-model package needs its tokenizer: copy tokenizer.json from the training run, or export model.json alone as a plain graph.',
    });
  }
  const tokenizer = await readTokenizerFile(tokenizerPath);
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new FerryError('EXPORT_BAD_CHECKPOINT', `tokenizer.json has ${tokenizer.vocabSize} tokens but ferry.json says vocabSize ${config.vocabSize}`, {
      hint: 'The files of this checkpoint do not belong together.',
    });
  }
  return { dir, modelJsonPath, model, notes, config, checkpoint, tokenizer };
}
