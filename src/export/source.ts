/**
 * What `ferry export` reads: a ferry checkpoint, through train/checkpoint.ts (a run dir's best/,
 * else last/; ferry.json's format and version checked; model, tokenizer and config agreeing), or
 * a foreign tfjs `model.json`. The topology is checked against the converters before tfjs loads
 * it, and weights are checked for NaN/Inf.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { readTokenizerFile } from '../tokenizer/node.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { checkConsistency, inspectDir, readCheckpointManifest, resolveCheckpointDir, TOKENIZER_JSON, type CheckpointManifest } from '../train/checkpoint.ts';
import type { ModelConfig } from '../train/models/index.ts';
import { fileSystemIO, MODEL_JSON, readModelJson } from '../train/tfjs-io.ts';
import { converterFor, hasConverter, unknownCustomLayer } from './converters/registry.ts';
import { withResetAfterGrus } from './reset-after-gru.ts';
import { isGraphModelJson } from './graph-model/format.ts';

export interface ExportSource {
  /** The checkpoint dir actually read (a run dir's best/ or last/), or the dir of a foreign model.json. */
  dir: string;
  modelJsonPath: string;
  model: tf.LayersModel;
  /** What the user should know about how the model was read (layers tfjs cannot run itself). */
  notes: string[];
  /** Set for ferry checkpoints (from ferry.json). */
  config?: ModelConfig;
  checkpoint?: CheckpointManifest;
  tokenizer?: Tokenizer;
}

/** A ferry checkpoint (a run dir resolves to best/, else last/), or a tfjs model.json of any origin. */
async function locate(source: string): Promise<{ dir: string; modelJsonPath: string; checkpoint: boolean }> {
  const kind = await inspectDir(source);
  if (kind === 'missing') {
    throw new FerryError('export_source_not_found', `${source} does not exist`, {
      hint: 'Give a checkpoint dir (model.json, weights.bin, ferry.json), a training run dir, or a tfjs model.json.',
      status: 404,
    });
  }
  if (kind === 'file') {
    const dir = path.dirname(source);
    const besideCheckpoint = path.basename(source) === MODEL_JSON && (await inspectDir(dir)) === 'checkpoint';
    return { dir, modelJsonPath: source, checkpoint: besideCheckpoint };
  }
  if (kind === 'checkpoint' || kind === 'run') {
    const dir = await resolveCheckpointDir(source);
    return { dir, modelJsonPath: path.join(dir, MODEL_JSON), checkpoint: true };
  }
  return { dir: source, modelJsonPath: path.join(source, MODEL_JSON), checkpoint: false };
}

interface LayerJson {
  name?: string;
  class_name?: string;
  className?: string;
  config?: { name?: string; layer?: LayerJson; layers?: LayerJson[] } & Record<string, unknown>;
}

/** Every layer call of a topology, nested models walked into (wrappers are their own converters). */
export function layersOf(topology: unknown): { name: string; className: string }[] {
  const root = (topology as { model_config?: LayerJson }).model_config ?? (topology as LayerJson);
  const layers: { name: string; className: string }[] = [];
  // A damaged file may hold anything where a layer or its list is: refused by name, not a TypeError.
  const damaged = (what: string) => new FerryError('invalid_model_json', `model.json's layer graph is damaged: ${what}`, {
    hint: 'Save or convert the model again: model.json must come whole from tfjs or the tfjs converter.',
  });
  const visit = (layer: LayerJson) => {
    if (typeof layer !== 'object' || layer === null) throw damaged(`a layer is ${JSON.stringify(layer) ?? String(layer)}`);
    const className = layer.class_name ?? layer.className ?? '?';
    const config = layer.config ?? {};
    if (NESTED_MODELS.has(className)) {
      if (className !== 'Sequential') checkLayerGraph(config);
      const inner = Array.isArray(config) ? (config as LayerJson[]) : config.layers ?? [];
      if (!Array.isArray(inner)) throw damaged(`the layers of ${String(config.name ?? className)} are ${JSON.stringify(inner).slice(0, 40)}, not a list`);
      inner.forEach(visit);
      return;
    }
    layers.push({ name: String(config.name ?? layer.name ?? '?'), className });
  };
  visit(root);
  return layers;
}

/** Every layer of a topology must have a converter. */
function checkTopology(topology: unknown): void {
  for (const call of layersOf(topology)) {
    if (!hasConverter(call.className) && !(call.className in tf.serialization.SerializationMap.getMap().classNameMap)) throw unknownCustomLayer(call);
    converterFor(call);
  }
}

/**
 * A functional model's layer graph must name only layers it has: tfjs waits forever for a layer
 * an inbound node names but the model lacks (or whose name is not a string).
 */
const NESTED_MODELS = new Set(['Sequential', 'Model', 'Functional']);

function checkLayerGraph(config: Record<string, unknown>): void {
  const refuse = (what: string) => new FerryError('invalid_model_json', `model.json's layer graph is damaged: ${what}`, {
    hint: 'Save or convert the model again: model.json must come whole from tfjs or the tfjs converter.',
  });
  const layers = config.layers;
  if (!Array.isArray(layers)) throw refuse('config.layers is not a list of layers');
  // Each layer's node count: an InputLayer makes its one node itself, the others one per inbound
  // node; a model used as a layer also has the node it made when it was built (its node 0).
  const nodeCounts = new Map<string, number>();
  for (const [i, layer] of layers.entries()) {
    const { name, class_name: className, inbound_nodes: inbound } = (layer ?? {}) as { name?: unknown; class_name?: unknown; inbound_nodes?: unknown };
    if (typeof name !== 'string' || nodeCounts.has(name)) throw refuse(`layer ${i} has ${typeof name === 'string' ? `the name "${name}" of an earlier layer` : 'no name'}`);
    const calls = Array.isArray(inbound) ? inbound.length : 0;
    nodeCounts.set(name, className === 'InputLayer' ? 1 : NESTED_MODELS.has(String(className)) ? calls + 1 : calls);
  }
  // A reference names a node of a layer: "layer#index" (a shared layer has one node per call).
  const checkRef = (ref: unknown, where: string): string => {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string' || !Number.isInteger(ref[1]) || !Number.isInteger(ref[2])) throw refuse(`${where} is not [layer name, node index, tensor index]`);
    const count = nodeCounts.get(ref[0]);
    if (count === undefined) throw refuse(`${where} names the layer "${ref[0]}", which the model does not have`);
    if (ref[1] < 0 || ref[1] >= count) throw refuse(`${where} names node ${ref[1]} of layer "${ref[0]}", which has ${count}`);
    return `${ref[0]}#${ref[1]}`;
  };
  for (const key of ['input_layers', 'output_layers'] as const) {
    const refs = config[key];
    if (!Array.isArray(refs)) throw refuse(`config.${key} is not a list`);
    refs.forEach((ref, i) => checkRef(ref, `config.${key}[${i}]`));
  }
  const inputsOf = new Map<string, string[]>();
  for (const layer of layers as { name: string; class_name?: unknown; inbound_nodes?: unknown }[]) {
    const nodes = layer.inbound_nodes ?? [];
    if (!Array.isArray(nodes)) throw refuse(`the inbound_nodes of layer "${layer.name}" are not a list`);
    const first = NESTED_MODELS.has(String(layer.class_name)) ? 1 : 0;
    nodes.forEach((node, n) => {
      if (!Array.isArray(node)) throw refuse(`inbound node ${n} of layer "${layer.name}" is not a list`);
      // tfjs skips a node with no inputs without making it, so whatever reads it waits forever.
      if (node.length === 0) throw refuse(`inbound node ${n} of layer "${layer.name}" has no inputs`);
      inputsOf.set(`${layer.name}#${first + n}`, node.map((ref, r) => checkRef(ref, `inbound node ${n}[${r}] of layer "${layer.name}"`)));
    });
  }
  // A cycle would have tfjs wait forever too.
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (node: string): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'visiting') throw refuse(`layer "${node.slice(0, node.lastIndexOf('#'))}" depends on itself`);
    state.set(node, 'visiting');
    for (const input of inputsOf.get(node) ?? []) visit(input);
    state.set(node, 'done');
  };
  for (const node of inputsOf.keys()) visit(node);
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
    // tfjs's messages may span lines; a FerryError is one.
    throw new FerryError('export_model_unreadable', `tfjs cannot load ${modelJsonPath}: ${String((error as Error).message).replace(/\s*\n\s*/g, ' ')}`, {
      hint: 'Check that model.json and its weight files come from the same tfjs Layers model.',
      cause: error,
    });
  }
  for (const v of model.weights) {
    const data = v.read().dataSync();
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new FerryError('export_nonfinite_weights', `weight ${v.originalName} holds ${data[bad]} at index ${bad}`, {
        hint: 'The checkpoint diverged or is damaged: export an earlier checkpoint (e.g. best/), or retrain with a lower learning rate.',
      });
    }
  }
  const notes = resetAfterGrus.map((name) => `layer ${name}: a GRU with reset_after (Keras 2's default), which tfjs cannot run; verified against ferry's own tfjs version of it`);
  return { model, notes };
}

/** The model.json a source names and whether it is a tfjs graph model (exported by src/export/graph-model). */
export async function graphModelSource(source: string): Promise<string | undefined> {
  const { modelJsonPath } = await locate(source);
  return isGraphModelJson(await readModelJson(modelJsonPath)) ? modelJsonPath : undefined;
}

export async function readExportSource(source: string): Promise<ExportSource> {
  const { dir, modelJsonPath, checkpoint: isCheckpoint } = await locate(source);
  // The manifest first: a checkpoint of another format or version is refused before tfjs loads anything.
  const checkpoint = isCheckpoint ? await readCheckpointManifest(dir) : undefined;
  const { model, notes } = await loadModel(modelJsonPath);
  if (!checkpoint) return { dir, modelJsonPath, model, notes };
  const tokenizerPath = path.join(dir, TOKENIZER_JSON);
  if (!(await stat(tokenizerPath).then(() => true, () => false))) {
    throw new FerryError('export_bad_checkpoint', `${dir} has a ferry.json but no tokenizer.json`, {
      hint: 'A language-model package needs its tokenizer: copy tokenizer.json from the training run, or export model.json alone as a plain graph.',
    });
  }
  const tokenizer = await readTokenizerFile(tokenizerPath);
  checkConsistency(dir, checkpoint, model, tokenizer);
  return { dir, modelJsonPath, model, notes, config: checkpoint.model, checkpoint, tokenizer };
}
