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
  const initializers = new Map(graph.initializers.map((i) => [i.name, i]));
  // A constant with at most one dim above 1 (a per-channel vector) takes the inner layout by its dims alone.
  const vector = (name: string, rank: number) => {
    const init = initializers.get(name);
    return init !== undefined && init.dims.length <= rank && init.dims.filter((d) => d !== 1).length <= 1;
  };
  const relayout = (name: string, perm: number[]): string => {
    const init = initializers.get(name)!;
    if (scalars.has(name)) return name;
    const padded = [...new Array<number>(perm.length - init.dims.length).fill(1), ...init.dims];
    const dims = perm.map((_, j) => padded[perm.indexOf(j)]!);
    return graph.addInitializer(`${name}/nchw`, init.dtype, dims, init.data.subarray(0));
  };
  for (let changed = true; changed;) {
    changed = false;
    const producer = new Map<string, GraphNode>();
    for (const n of graph.nodes) {
      n.outputs.forEach((o) => producer.set(o, n));
    }
    // A Transpose read elsewhere too stays for those readers (often a Transpose it cancels with).
    const transposeFeeding = (tensor: string) => {
      const p = producer.get(tensor);
      return p?.opType === 'Transpose' ? p : undefined;
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
        const rank = ts.find((t) => t) ? permOf(ts.find((t) => t)!).length : 0;
        if (perms.length && new Set(perms).size === 1 && n.inputs.every((i, k) => ts[k] || scalars.has(i) || vector(i, rank))) {
          moved = ts.filter((t): t is GraphNode => !!t);
          const perm = permOf(moved[0]!);
          n.inputs = n.inputs.map((i, k) => (ts[k] ? i : relayout(i, perm)));
        }
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
      const perm = permOf(moved[0]!);
      n.inputs = n.inputs.map((i) => moved!.find((t) => t.outputs[0] === i)?.inputs[0] ?? i);
      // n now works in the inner layout and writes a fresh tensor; a new Transpose gives n's old output.
      const result = n.outputs[0]!;
      const fresh = graph.uniqueName(`${result}/nchw`);
      n.outputs = [fresh];
      graph.nodes.push({ name: graph.uniqueName(`${n.name}/transpose`), opType: 'Transpose', domain: '', inputs: [fresh], outputs: [result], attributes: { perm: attr.ints(perm) } });
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
  // The same Transpose of the same tensor (an input read by two convs) is kept once.
  const transposes = new Map<string, string>();
  graph.nodes.splice(0, graph.nodes.length, ...graph.nodes.filter((n) => {
    if (n.opType === 'Transpose' && !outputs.has(n.outputs[0]!)) {
      const key = `${n.inputs[0]}\u0000${permOf(n).join()}`;
      const known = transposes.get(key);
      if (known !== undefined) {
        rename.set(n.outputs[0]!, known);
        return false;
      }
      transposes.set(key, n.outputs[0]!);
    }
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
