/**
 * `ferry inspect model.json`: what a tfjs model is (format, inputs, outputs, ops or layer classes)
 * and what ferry cannot convert yet, read from model.json alone, before anyone waits for an export.
 */
import { readModelJson } from '../train/tfjs-io.ts';
import { CONVERTERS } from './converters/registry.ts';
import { checkGraphModelJson } from './graph-model/check.ts';
import { isGraphModelJson } from './graph-model/format.ts';
import { summarizeGraphModel, type ModelSummary, type TensorSummary } from './graph-model/inspect.ts';
import { layersOf } from './source.ts';

interface LayerJson { class_name?: string; className?: string; name?: string; config?: Record<string, unknown> }

function layersModelInputs(topology: unknown): TensorSummary[] {
  const root = ((topology as { model_config?: LayerJson }).model_config ?? topology) as LayerJson;
  const layers = (Array.isArray(root.config) ? root.config : (root.config?.layers as LayerJson[] | undefined)) ?? [];
  // Only a list is a shape; anything else a damaged file holds there shows as unknown.
  const shapeOf = (config: Record<string, unknown> | undefined) => {
    const shape = config?.batch_input_shape ?? config?.batchInputShape;
    return Array.isArray(shape) ? (shape as (number | null)[]) : undefined;
  };
  const inputs = layers.filter((l) => (l.class_name ?? l.className) === 'InputLayer');
  const sources = inputs.length ? inputs : layers.slice(0, 1).filter((l) => shapeOf(l.config));
  return sources.map((l) => ({ name: String(l.config?.name ?? l.name ?? '?'), dtype: String(l.config?.dtype ?? 'float32'), shape: shapeOf(l.config) ?? null }));
}

function layersModelOutputs(topology: unknown): TensorSummary[] {
  const root = ((topology as { model_config?: LayerJson }).model_config ?? topology) as LayerJson;
  const outputs = (root.config?.output_layers as [string, number, number][] | undefined) ?? [];
  return outputs.map(([name]) => ({ name, dtype: '?', shape: null }));
}

export async function inspectModel(modelJsonPath: string): Promise<ModelSummary> {
  const json = await readModelJson(modelJsonPath);
  if (isGraphModelJson(json)) {
    // The summary walks the graph as the exporter does: a damaged one is refused by the same check, by name.
    checkGraphModelJson(json, modelJsonPath);
    return summarizeGraphModel(json);
  }
  const layers = layersOf(json.modelTopology);
  const counts: Record<string, number> = {};
  for (const l of layers) counts[l.className] = (counts[l.className] ?? 0) + 1;
  return {
    format: 'layers-model',
    inputs: layersModelInputs(json.modelTopology),
    outputs: layersModelOutputs(json.modelTopology),
    counts,
    unsupported: Object.keys(counts).filter((c) => !CONVERTERS[c]).sort(),
    notes: [],
  };
}

const shapeText = (shape: (number | null)[] | null) => (shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : '[?]');

export function formatSummary(path: string, s: ModelSummary): string {
  const kind = s.format === 'graph-model' ? 'op' : 'layer class';
  const lines = [
    `${path}: tfjs ${s.format}`,
    'inputs:',
    ...s.inputs.map((t) => `  ${t.name}  ${t.dtype}  ${shapeText(t.shape)}`),
    'outputs:',
    ...s.outputs.map((t) => `  ${t.name}  ${t.dtype}  ${shapeText(t.shape)}`),
    `${kind} counts (${Object.values(s.counts).reduce((a, b) => a + b, 0)} in all):`,
    ...Object.entries(s.counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `  ${String(n).padStart(5)}  ${k}${s.unsupported.includes(k) ? '  (no converter)' : ''}`),
    ...s.notes.map((n) => `note: ${n}`),
    s.unsupported.length ? `ferry cannot convert yet: ${s.unsupported.join(', ')}` : 'ferry can convert every ' + kind + ' this model uses',
  ];
  return lines.join('\n');
}
