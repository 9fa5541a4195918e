/**
 * Smaller files from an fp32 graph.
 *
 * int8: MatMul weights become 7-bit signed integers (-63..63) with one scale per output column,
 * run as DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul (the form of ORT's
 * quantize_dynamic with reduce_range; ORT CPU fuses it into DynamicQuantizeMatMul, and the WASM
 * build has the same kernels). Seven bits keep every integer product exact on every CPU: AVX2
 * without VNNI adds pairs of u8 x s8 products in int16 (vpmaddubsw), which saturates with full
 * 8-bit weights (2 x 255 x 127 > 32767) but not with 7-bit ones (2 x 255 x 63 = 32130), so an
 * AVX2 server, an AVX-512/VNNI server and onnxruntime-web compute the same integers
 * (docs/FORMATS.md). Embedding tables become int8 with one scale per row, gathered and rescaled.
 * LSTM weights are stored as int8 with one scale per gate row and turned back into float32 by a
 * Cast and a Mul of initializers, which ORT folds when the session opens: the LSTM itself runs
 * in float32, because ORT's DynamicQuantizeLSTM gives different logits in onnxruntime-web than
 * in onnxruntime-node. GRU/RNN weights stay float32.
 *
 * fp16: every weight is stored as float16 and cast to float32 at load (ORT folds the Cast), so
 * the file halves and every runtime runs it, including CPU LSTM, which has no fp16 kernel.
 */
import { toHalfBits } from '../float16.ts';
import { attr, type Graph, type GraphNode, type Initializer } from './graph.ts';

/** Weights smaller than this stay as they are (biases, norms, scalars). */
const MIN_WEIGHT_ELEMENTS = 256;

/** A graph and the graphs around it whose tensors it may read (an If branch's), innermost first. */
interface Scope {
  graph: Graph;
  outer: Graph[];
}

/** `g` and every subgraph under it (If branches), each with its enclosing graphs. */
function scopesOf(g: Graph, outer: Graph[] = []): Scope[] {
  const inner = g.nodes.flatMap((n) => Object.values(n.attributes).flatMap((a) => (a.kind === 'graph' ? scopesOf(a.value, [g, ...outer]) : [])));
  return [{ graph: g, outer }, ...inner];
}

/** What a node of one graph can see: its own graph's tensors and those of the graphs around it. */
interface Visible {
  initializer(name: string): Initializer | undefined;
  /** The graph that holds initializer `name`. */
  owner(name: string): Graph | undefined;
  producer(name: string): GraphNode | undefined;
}

/**
 * Rebuilds the node list of `root` and of each subgraph in order; `rewrite` may emit replacement
 * nodes into `g`, the node's own graph (via g.node), and return true. Weights may live in the
 * graph of the node or in one around it (a branch reads the outer graph's initializers).
 */
function rewriteNodes(root: Graph, rewrite: (g: Graph, node: GraphNode, visible: Visible) => boolean): void {
  const scopes = scopesOf(root);
  const initializers = new Map(scopes.map(({ graph }) => [graph, new Map(graph.initializers.map((i) => [i.name, i]))]));
  for (const { graph, outer } of scopes) {
    const chain = [graph, ...outer];
    const visible: Visible = {
      initializer: (name) => chain.map((s) => initializers.get(s)!.get(name)).find((i) => i !== undefined),
      owner: (name) => chain.find((s) => initializers.get(s)!.has(name)),
      producer: (name) => chain.map((s) => s.producerOf(name)).find((n) => n !== undefined),
    };
    const original = graph.nodes.splice(0);
    for (const node of original) {
      if (!graph.inScope(node.name, () => rewrite(graph, node, visible))) graph.nodes.push(node);
    }
  }
  prune(scopes.map((s) => s.graph));
}

/**
 * Drops what a rewrite left without consumers (e.g. the Transpose of a tied table, an fp32 weight
 * now stored as int8) from every graph. Names are unique across a model and its subgraphs
 * (Graph.branch), so one set of consumed names covers a weight only a branch reads.
 */
function prune(graphs: Graph[]): void {
  const consumed = () => new Set(graphs.flatMap((g) => [...g.nodes.flatMap((n) => n.inputs), ...g.outputs.map((o) => o.name)]));
  for (let changed = true; changed;) {
    changed = false;
    const used = consumed();
    for (const g of graphs) {
      const live = g.nodes.filter((n) => n.outputs.some((o) => used.has(o)));
      if (live.length === g.nodes.length) continue;
      changed = true;
      g.nodes.splice(0, g.nodes.length, ...live);
    }
  }
  const used = consumed();
  for (const g of graphs) {
    const kept = g.initializers.filter((i) => used.has(i.name));
    g.initializers.splice(0, g.initializers.length, ...kept);
  }
}

/**
 * A 2-D float weight behind `name`: an initializer, or an initializer through Transpose(perm 1,0);
 * `key` names it (the same for every node that reads it) and `owner` holds the initializer.
 */
function matrixWeight(visible: Visible, name: string): { data: Float32Array; rows: number; cols: number; key: string; owner: Graph } | undefined {
  const direct = visible.initializer(name);
  if (direct) {
    if (direct.dtype !== 'float32' || direct.dims.length !== 2) return undefined;
    return { data: direct.data as Float32Array, rows: direct.dims[0]!, cols: direct.dims[1]!, key: direct.name, owner: visible.owner(name)! };
  }
  const producer = visible.producer(name);
  const source = producer?.opType === 'Transpose' ? visible.initializer(producer.inputs[0]!) : undefined;
  if (!source || source.dtype !== 'float32' || source.dims.length !== 2) return undefined;
  const [rows, cols] = [source.dims[1]!, source.dims[0]!];
  const data = new Float32Array(rows * cols);
  const src = source.data as Float32Array;
  for (let r = 0; r < cols; r++) for (let c = 0; c < rows; c++) data[c * cols + r] = src[r * rows + c]!;
  return { data, rows, cols, key: `${source.name}^T`, owner: visible.owner(source.name)! };
}

/** The largest magnitude of a MatMulInteger weight: 7 bits, so that no CPU's int16 pair sums saturate. */
export const MATMUL_WEIGHT_LIMIT = 63;
/** The largest magnitude of a weight that is only stored as int8 and computed in float. */
export const STORED_WEIGHT_LIMIT = 127;

/**
 * Symmetric integers of a [rows, cols] matrix in -limit..limit, with one scale per column
 * (axis 1) or per row (axis 0).
 */
export function quantizeSymmetric(data: Float32Array, rows: number, cols: number, axis: 0 | 1, limit: number): { q: Int8Array; scales: Float32Array } {
  const n = axis === 1 ? cols : rows;
  const scales = new Float32Array(n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = axis === 1 ? c : r;
      scales[k] = Math.max(scales[k]!, Math.abs(data[r * cols + c]!));
    }
  }
  for (let k = 0; k < n; k++) scales[k] = scales[k]! > 0 ? scales[k]! / limit : 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) q[r * cols + c] = Math.round(data[r * cols + c]! / scales[axis === 1 ? c : r]!);
  }
  return { q, scales };
}

/** [dirs, rows, cols] float -> the same layout in int8, with one scale per (dir, row): a gate row of W or R. */
function quantizeRecurrent(init: Initializer): { q: Int8Array; scales: Float32Array } {
  const [dirs, rows, cols] = init.dims as [number, number, number];
  return quantizeSymmetric(init.data as Float32Array, dirs * rows, cols, 0, STORED_WEIGHT_LIMIT);
}

export function quantizeInt8(fp32: Graph): Graph {
  const root = fp32.clone();
  // The int8 copy of each weight, made once and kept in the graph that held the float one: the
  // two branches of a merged decoder read the same weights, and must not each get a copy.
  const stored = new Map<string, [string, string]>();
  const storedOnce = (key: string, make: () => [string, string]): [string, string] => {
    if (!stored.has(key)) stored.set(key, make());
    return stored.get(key)!;
  };
  rewriteNodes(root, (g, node, visible) => {
    if (node.opType === 'LSTM') {
      const [w, r] = [visible.initializer(node.inputs[1]!), visible.initializer(node.inputs[2]!)];
      if (!w || !r || w.dtype !== 'float32' || r.dtype !== 'float32') return false;
      const dequantized = (init: Initializer, base: string) => {
        const { q, scales } = quantizeRecurrent(init);
        const [dirs, rows] = init.dims as [number, number, number];
        const stored = g.addInitializer(`${base}_int8`, 'int8', init.dims, q);
        return g.op('Mul', [g.op('Cast', [stored], { to: attr.dtype('float32') }), g.float(`${base}_scale`, [dirs, rows, 1], scales)]);
      };
      const inputs = [...node.inputs];
      inputs[1] = dequantized(w, 'W');
      inputs[2] = dequantized(r, 'R');
      g.node('LSTM', inputs, node.attributes, { outputs: node.outputs });
      return true;
    }
    if (node.opType === 'MatMul') {
      const w = matrixWeight(visible, node.inputs[1]!);
      if (!w || w.rows * w.cols < MIN_WEIGHT_ELEMENTS) return false;
      const [weightQ, weightScale] = storedOnce(w.key, () => {
        const { q, scales } = quantizeSymmetric(w.data, w.rows, w.cols, 1, MATMUL_WEIGHT_LIMIT);
        return [w.owner.addInitializer('weight_int8', 'int8', [w.rows, w.cols], q), w.owner.float('weight_scale', [w.cols], scales)];
      });
      const [xq, xScale, xZero] = g.node('DynamicQuantizeLinear', [node.inputs[0]!], {}, { outputs: 3 });
      const product = g.op('MatMulInteger', [xq!, weightQ, xZero!]);
      const scale = g.op('Mul', [xScale!, weightScale]);
      g.node('Mul', [g.op('Cast', [product], { to: attr.dtype('float32') }), scale], {}, { outputs: node.outputs });
      return true;
    }
    if (node.opType === 'Gather') {
      const table = visible.initializer(node.inputs[0]!);
      if (!table || table.dtype !== 'float32' || table.dims.length !== 2 || table.data.length < MIN_WEIGHT_ELEMENTS) return false;
      const [rows, cols] = table.dims as [number, number];
      const owner = visible.owner(table.name)!;
      const [tableQ, tableScale] = storedOnce(`${table.name}[rows]`, () => {
        const { q, scales } = quantizeSymmetric(table.data as Float32Array, rows, cols, 0, STORED_WEIGHT_LIMIT);
        return [owner.addInitializer('table_int8', 'int8', [rows, cols], q), owner.float('table_scale', [rows], scales)];
      });
      const ids = node.inputs[1]!;
      const rowsQ = g.op('Gather', [tableQ, ids]);
      const rowScales = g.unsqueeze(g.op('Gather', [tableScale, ids]), [-1]);
      g.node('Mul', [g.op('Cast', [rowsQ], { to: attr.dtype('float32') }), rowScales], {}, { outputs: node.outputs });
      return true;
    }
    return false;
  });
  return root;
}

export function weightsToFp16(fp32: Graph): Graph {
  const root = fp32.clone();
  const scopes = scopesOf(root);
  for (const { graph } of scopes) {
    const halves: string[] = [];
    for (const init of graph.initializers) {
      if (init.dtype !== 'float32' || init.data.length < MIN_WEIGHT_ELEMENTS) continue;
      const half = new Uint16Array(init.data.length);
      const src = init.data as Float32Array;
      for (let i = 0; i < src.length; i++) half[i] = toHalfBits(src[i]!);
      init.dtype = 'float16';
      init.data = half;
      halves.push(init.name);
    }
    if (!halves.length) continue;
    // One Cast per weight, first in the graph that holds it, so that its nodes and those of its
    // subgraphs (which may read it) all find the float32 copy defined before them.
    const original = graph.nodes.splice(0);
    const casts = new Map(halves.map((name) => [name, graph.inScope(name, () => graph.op('Cast', [name], { to: attr.dtype('float32') }))]));
    graph.nodes.push(...original);
    for (const { graph: reader } of scopes) {
      for (const node of reader.nodes) {
        if (node.opType === 'Cast' && casts.get(node.inputs[0]!) === node.outputs[0]) continue;
        node.inputs = node.inputs.map((name) => casts.get(name) ?? name);
      }
    }
  }
  prune(scopes.map((s) => s.graph));
  return root;
}
