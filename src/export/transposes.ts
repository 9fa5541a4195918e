/**
 * Removes the Transposes that the layer-by-layer conversion leaves between channels-first ops
 * (each Conv sits between NHWC->NCHW and NCHW->NHWC). A Transpose is moved below the elementwise
 * ops and Concats it feeds (all of whose inputs it, or the same permutation, produces), two
 * Transposes in a row become one (none when they cancel), the same Transpose of one tensor is
 * kept once, and nodes nothing reads are dropped.
 */
import { attr, type Graph, type GraphNode } from './graph.ts';

const UNARY = new Set(['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'Softplus', 'Softsign', 'HardSigmoid', 'Identity', 'Neg', 'Abs', 'Exp', 'Erf']);
const VARIADIC = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sum', 'Max', 'Min', 'Mean', 'PRelu']);

const permOf = (node: GraphNode) => (node.attributes.perm as { value: number[] }).value;
const samePerm = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

export function cancelTransposes(graph: Graph): void {
  for (let changed = true; changed;) {
    changed = pushBelow(graph) || mergePairs(graph) || shareTransposes(graph);
  }
  dropUnread(graph);
}

function producers(graph: Graph): Map<string, GraphNode> {
  const map = new Map<string, GraphNode>();
  for (const node of graph.nodes) for (const output of node.outputs) map.set(output, node);
  return map;
}

/** op(Transpose_p(a), Transpose_p(b)) -> Transpose_p(op(a, b)) for layout-free ops. */
function pushBelow(graph: Graph): boolean {
  const producedBy = producers(graph);
  for (let index = 0; index < graph.nodes.length; index++) {
    const node = graph.nodes[index]!;
    const operands = UNARY.has(node.opType) ? node.inputs.slice(0, 1) : VARIADIC.has(node.opType) || node.opType === 'Concat' ? node.inputs : [];
    const sources = operands.map((name) => producedBy.get(name));
    const transposed = sources.filter((s) => s?.opType === 'Transpose');
    if (transposed.length === 0) continue;
    const perm = permOf(transposed[0]!);
    if (!transposed.every((s) => samePerm(permOf(s!), perm))) continue;
    // Other operands of an elementwise op may be constants along one axis (a per-channel scale).
    const constants = sources.map((s, i) => (s?.opType === 'Transpose' ? undefined : laidOut(graph, operands[i]!, perm)));
    if (sources.some((s, i) => s?.opType !== 'Transpose' && (node.opType === 'Concat' || constants[i] === undefined))) continue;
    if (node.opType === 'Concat') {
      const axis = (node.attributes.axis as { value: number }).value;
      node.attributes = { ...node.attributes, axis: attr.int(perm[axis < 0 ? axis + perm.length : axis]!) };
    }
    sources.forEach((s, i) => (node.inputs[i] = s?.opType === 'Transpose' ? s.inputs[0]! : constants[i]!));
    const output = node.outputs[0]!;
    const inner = graph.uniqueName(`${output}/channels_first`);
    node.outputs[0] = inner;
    graph.nodes.splice(index + 1, 0, { name: graph.uniqueName(`${node.name}/Transpose`), opType: 'Transpose', domain: '', inputs: [inner], outputs: [output], attributes: { perm: attr.ints(perm) } });
    return true;
  }
  return false;
}

/**
 * An initializer broadcast against Transpose_p(y) as one broadcast against y: possible when at
 * most one of its axes is longer than 1, so that only its dims move, not its data.
 */
function laidOut(graph: Graph, name: string, perm: number[]): string | undefined {
  const constant = graph.initializers.find((i) => i.name === name);
  if (!constant || constant.dims.length > perm.length || constant.dims.filter((d) => d > 1).length > 1) return undefined;
  if (constant.dims.every((d) => d === 1)) return name;
  const full = [...new Array<number>(perm.length - constant.dims.length).fill(1), ...constant.dims];
  const dims = new Array<number>(perm.length).fill(1);
  perm.forEach((axis, i) => (dims[axis] = full[i]!));
  return graph.addInitializer(`${name}/channels_first`, constant.dtype, dims, constant.data.slice());
}

/** Transpose_q(Transpose_p(x)) -> Transpose_{p∘q}(x), or Identity(x) when that is no permutation at all. */
function mergePairs(graph: Graph): boolean {
  const producedBy = producers(graph);
  for (const node of graph.nodes) {
    if (node.opType !== 'Transpose') continue;
    const first = producedBy.get(node.inputs[0]!);
    if (first?.opType !== 'Transpose') continue;
    const p = permOf(first);
    const composed = permOf(node).map((axis) => p[axis]!);
    node.inputs[0] = first.inputs[0]!;
    if (composed.every((axis, i) => axis === i)) {
      node.opType = 'Identity';
      node.attributes = {};
    } else {
      node.attributes = { perm: attr.ints(composed) };
    }
    return true;
  }
  return bypassIdentities(graph);
}

/** The same Transpose of one tensor twice (an input read by two convs): readers of the second read the first. */
function shareTransposes(graph: Graph): boolean {
  const outputs = new Set(graph.outputs.map((v) => v.name));
  const first = new Map<string, string>();
  const replaced = new Map<string, string>();
  for (const node of graph.nodes) {
    if (node.opType !== 'Transpose' || outputs.has(node.outputs[0]!)) continue;
    const key = `${node.inputs[0]}\u0000${permOf(node).join()}`;
    const known = first.get(key);
    if (known === undefined) first.set(key, node.outputs[0]!);
    else replaced.set(node.outputs[0]!, known);
  }
  let changed = false;
  for (const reader of graph.nodes) {
    reader.inputs.forEach((name, i) => {
      const to = replaced.get(name);
      if (to !== undefined) {
        reader.inputs[i] = to;
        changed = true;
      }
    });
  }
  return changed;
}

/** Readers of an Identity's output read its input instead (graph outputs keep their Identity). */
function bypassIdentities(graph: Graph): boolean {
  const outputs = new Set(graph.outputs.map((v) => v.name));
  let changed = false;
  for (const node of graph.nodes) {
    if (node.opType !== 'Identity' || outputs.has(node.outputs[0]!)) continue;
    const [from, to] = [node.outputs[0]!, node.inputs[0]!];
    for (const reader of graph.nodes) {
      reader.inputs.forEach((name, i) => {
        if (name === from) {
          reader.inputs[i] = to;
          changed = true;
        }
      });
    }
  }
  return changed;
}

function dropUnread(graph: Graph): void {
  for (let removed = true; removed;) {
    const read = new Set([...graph.nodes.flatMap((n) => n.inputs), ...graph.outputs.map((v) => v.name)]);
    const before = graph.nodes.length;
    const kept = graph.nodes.filter((n) => n.outputs.some((o) => read.has(o)));
    graph.nodes.splice(0, graph.nodes.length, ...kept);
    removed = kept.length < before;
  }
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  const used = graph.initializers.filter((i) => read.has(i.name));
  graph.initializers.splice(0, graph.initializers.length, ...used);
}
