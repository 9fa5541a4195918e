/**
 * A model with only some of its outputs, and only the nodes those need. onnxruntime computes
 * every node of a graph whatever a run fetches (microsoft/onnxruntime#16483): the server's KV
 * cache decoder fetches the logits and the new K/V only, yet each step also paid for the
 * concatenated K/V outputs, a copy of the whole past per layer. Graphs with subgraphs (If,
 * Loop) or external data are returned unchanged.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export function keepOutputs(model: Uint8Array, outputs: readonly string[]): Uint8Array {
  const proto = onnx.ModelProto.decode(model);
  const graph = proto.graph;
  if (!graph) return model;
  const nodes = graph.node ?? [];
  const hasSubgraph = nodes.some((node) => (node.attribute ?? []).some((attribute) => attribute.g || (attribute.graphs ?? []).length > 0));
  const external = (graph.initializer ?? []).some((tensor) => tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  const kept = (graph.output ?? []).filter((output) => outputs.includes(output.name ?? ''));
  if (hasSubgraph || external || kept.length === (graph.output ?? []).length) return model;

  // Nodes are in topological order: walking back, a node is needed when a needed value comes out of it.
  const needed = new Set(kept.map((output) => output.name!));
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let index = nodes.length - 1; index >= 0; index--) {
    const node = nodes[index]!;
    if (!(node.output ?? []).some((name) => needed.has(name))) continue;
    keep[index] = true;
    for (const name of node.input ?? []) if (name !== '') needed.add(name);
  }
  graph.output = kept;
  graph.node = nodes.filter((_, index) => keep[index]);
  return onnx.ModelProto.encode(proto).finish();
}
