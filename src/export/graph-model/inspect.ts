/** What a graph model is, for `ferry inspect`: I/O, op counts, weights, and the ops ferry cannot convert. */
import { attrShape, attrType } from './attributes.ts';
import { graphModelIO, unsupportedOps } from './convert.ts';
import { shapeOf, type GraphModelJson } from './format.ts';
import { TF1_CONTROL_FLOW } from './registry.ts';

export interface TensorSummary { name: string; dtype: string; shape: (number | null)[] | null }

export interface ModelSummary {
  format: 'graph-model' | 'layers-model';
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** Op (graph model) or layer class (layers model) -> how many. */
  counts: Record<string, number>;
  unsupported: string[];
  notes: string[];
}

export function summarizeGraphModel(json: GraphModelJson): ModelSummary {
  const nodes = json.modelTopology.node ?? [];
  const io = graphModelIO(json);
  const signatureOutputs = new Map(Object.values(json.signature?.outputs ?? {}).map((e) => [e.name, e]));
  const counts: Record<string, number> = {};
  for (const n of nodes) counts[n.op] = (counts[n.op] ?? 0) + 1;
  const weights = json.weightsManifest.flatMap((g) => g.weights);
  const quantized = [...new Set(weights.map((w) => w.quantization?.dtype).filter(Boolean))];
  const notes = [`${weights.length} weights in ${json.weightsManifest.reduce((n, g) => n + g.paths.length, 0)} shard(s)${quantized.length ? `, quantized as ${quantized.join(', ')}` : ''}`];
  if (nodes.some((n) => TF1_CONTROL_FLOW.includes(n.op))) notes.push('uses TF1 control flow (a while loop or cond), which ferry refuses');
  return {
    format: 'graph-model',
    inputs: io.inputs.map((i) => ({ name: i.name, dtype: attrType(i.node, 'dtype').tfName ?? '?', shape: attrShape(i.node, 'shape') ?? null })),
    outputs: io.outputs.map((o) => {
      const entry = signatureOutputs.get(o.tensor);
      return { name: o.name, dtype: entry?.dtype ?? '?', shape: shapeOf(entry?.tensorShape) ?? null };
    }),
    counts,
    unsupported: unsupportedOps(json),
    notes,
  };
}
