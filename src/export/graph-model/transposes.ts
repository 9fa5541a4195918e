/**
 * Removes the transposes that NHWC-in-NCHW conversion leaves: a Transpose of a Transpose becomes one
 * (or none, when they cancel), and a Transpose moves below the elementwise ops and Concats it feeds,
 * so that a chain conv -> activation -> add -> conv stays in NCHW and only the model's edges transpose.
 */
import { attr, type Graph, type GraphNode } from '../graph.ts';

/** Ops whose first input may be transposed before or after with the same result (other inputs scalar). */
const UNARY = new Set(['Relu', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'LeakyRelu', 'Clip', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Cast', 'Softplus', 'Erf', 'Sin', 'Cos', 'Round', 'Sign']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Pow', 'PRelu', 'Sum']);

const permOf = (n: GraphNode) => (n.attributes.perm as { value: number[] }).value;
const isIdentity = (perm: number[]) => perm.every((p, i) => p === i);

export function removeRedundantTransposes(graph: Graph): void {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const scalars = new Set(graph.initializers.filter((i) => i.dims.every((d) => d === 1) && i.dims.length <= 1).map((i) => i.name));
  for (let changed = true; changed;) {
    changed = false;
    const producer = new Map<string, GraphNode>();
    const uses = new Map<string, number>();
    for (const n of graph.nodes) {
      n.outputs.forEach((o) => producer.set(o, n));
      n.inputs.forEach((i) => uses.set(i, (uses.get(i) ?? 0) + 1));
    }
    const transposeFeeding = (tensor: string) => {
      const p = producer.get(tensor);
      return p?.opType === 'Transpose' && uses.get(tensor) === 1 && !outputs.has(tensor) ? p : undefined;
    };
    for (const n of graph.nodes) {
      if (n.opType === 'Transpose') {
        const p = producer.get(n.inputs[0]!);
        if (p?.opType !== 'Transpose') continue;
        const composed = permOf(n).map((i) => permOf(p)[i]!);
        n.inputs = [p.inputs[0]!];
        if (isIdentity(composed)) {
          n.opType = 'Identity';
          n.attributes = {};
        } else n.attributes = { perm: attr.ints(composed) };
        changed = true;
        continue;
      }
      if (outputs.has(n.outputs[0]!) || n.outputs.length !== 1) continue;
      // Move a Transpose from the inputs of n to its output.
      let moved: GraphNode[] | undefined;
      if (UNARY.has(n.opType)) {
        const t = transposeFeeding(n.inputs[0]!);
        if (t && n.inputs.slice(1).every((i) => i === '' || scalars.has(i))) moved = [t];
      } else if (BINARY.has(n.opType)) {
        const ts = n.inputs.map((i) => transposeFeeding(i));
        const perms = ts.filter((t) => t).map((t) => permOf(t!).join());
        if (perms.length && new Set(perms).size === 1 && n.inputs.every((i, k) => ts[k] || scalars.has(i))) moved = ts.filter((t): t is GraphNode => !!t);
      } else if (n.opType === 'Concat') {
        const ts = n.inputs.map((i) => transposeFeeding(i));
        if (ts.every((t) => t) && new Set(ts.map((t) => permOf(t!).join())).size === 1) {
          const perm = permOf(ts[0]!);
          const axis = (n.attributes.axis as { value: number }).value;
          n.attributes = { ...n.attributes, axis: attr.int(perm[axis < 0 ? axis + perm.length : axis]!) };
          moved = ts as GraphNode[];
        }
      }
      if (!moved) continue;
      const [first, ...rest] = moved;
      n.inputs = n.inputs.map((i) => moved!.find((t) => t.outputs[0] === i)?.inputs[0] ?? i);
      for (const t of rest) {
        t.opType = 'Identity';
        t.attributes = {};
      }
      // `first` now transposes n's result: n writes a fresh tensor, `first` gives n's old output.
      const result = n.outputs[0]!;
      const fresh = graph.uniqueName(`${result}/nchw`);
      n.outputs = [fresh];
      first!.inputs = [fresh];
      first!.outputs = [result];
      changed = true;
      break;
    }
  }
  pruneAndSort(graph);
}

/** Drops nodes nothing reads (and Identity between internal tensors), then orders nodes after their inputs. */
function pruneAndSort(graph: Graph): void {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const rename = new Map<string, string>();
  const resolve = (t: string): string => (rename.has(t) ? resolve(rename.get(t)!) : t);
  graph.nodes.splice(0, graph.nodes.length, ...graph.nodes.filter((n) => {
    if (n.opType === 'Identity' && !outputs.has(n.outputs[0]!)) {
      rename.set(n.outputs[0]!, n.inputs[0]!);
      return false;
    }
    return true;
  }));
  for (const n of graph.nodes) n.inputs = n.inputs.map((i) => (i === '' ? i : resolve(i)));
  const producer = new Map<string, GraphNode>();
  for (const n of graph.nodes) n.outputs.forEach((o) => producer.set(o, n));
  const live = new Set<GraphNode>();
  const work = [...outputs];
  while (work.length) {
    const n = producer.get(work.pop()!);
    if (!n || live.has(n)) continue;
    live.add(n);
    work.push(...n.inputs);
  }
  const produced = new Set([...graph.inputs.map((v) => v.name), ...graph.initializers.map((v) => v.name), '']);
  const ordered: GraphNode[] = [];
  let pending = graph.nodes.filter((n) => live.has(n));
  while (pending.length) {
    const next: GraphNode[] = [];
    for (const n of pending) {
      if (n.inputs.every((x) => produced.has(x))) {
        ordered.push(n);
        n.outputs.forEach((o) => produced.add(o));
      } else next.push(n);
    }
    if (next.length === pending.length) throw new Error(`graph has a cycle at ${next[0]!.name}`);
    pending = next;
  }
  graph.nodes.splice(0, graph.nodes.length, ...ordered);
  const used = new Set(graph.nodes.flatMap((n) => n.inputs));
  graph.initializers.splice(0, graph.initializers.length, ...graph.initializers.filter((i) => used.has(i.name) || outputs.has(i.name)));
}
