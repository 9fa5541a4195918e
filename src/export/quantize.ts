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

function initializerMap(g: Graph): Map<string, Initializer> {
  return new Map(g.initializers.map((i) => [i.name, i]));
}

/** Rebuilds the node list in order; `rewrite` may emit replacement nodes (via g.node) and return true. */
function rewriteNodes(g: Graph, rewrite: (node: GraphNode) => boolean): void {
  const original = g.nodes.splice(0);
  for (const node of original) {
    if (!g.inScope(node.name, () => rewrite(node))) g.nodes.push(node);
  }
  // Drop what the rewrite left without consumers (e.g. the Transpose of a tied table).
  for (let changed = true; changed;) {
    const consumed = new Set([...g.nodes.flatMap((n) => n.inputs), ...g.outputs.map((o) => o.name)]);
    const live = g.nodes.filter((n) => n.outputs.some((o) => consumed.has(o)));
    changed = live.length !== g.nodes.length;
    g.nodes.splice(0, g.nodes.length, ...live);
  }
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  const kept = g.initializers.filter((i) => used.has(i.name) || g.outputs.some((o) => o.name === i.name));
  g.initializers.splice(0, g.initializers.length, ...kept);
}

/** A 2-D float weight behind `name`: an initializer, or an initializer through Transpose(perm 1,0). */
function matrixWeight(g: Graph, inits: Map<string, Initializer>, name: string): { data: Float32Array; rows: number; cols: number } | undefined {
  const direct = inits.get(name);
  if (direct) {
    if (direct.dtype !== 'float32' || direct.dims.length !== 2) return undefined;
    return { data: direct.data as Float32Array, rows: direct.dims[0]!, cols: direct.dims[1]! };
  }
  const producer = g.producerOf(name);
  const source = producer?.opType === 'Transpose' ? inits.get(producer.inputs[0]!) : undefined;
  if (!source || source.dtype !== 'float32' || source.dims.length !== 2) return undefined;
  const [rows, cols] = [source.dims[1]!, source.dims[0]!];
  const data = new Float32Array(rows * cols);
  const src = source.data as Float32Array;
  for (let r = 0; r < cols; r++) for (let c = 0; c < rows; c++) data[c * cols + r] = src[r * rows + c]!;
  return { data, rows, cols };
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
  const g = fp32.clone();
  const inits = initializerMap(g);
  rewriteNodes(g, (node) => {
    if (node.opType === 'LSTM') {
      const [w, r] = [inits.get(node.inputs[1]!), inits.get(node.inputs[2]!)];
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
      const w = matrixWeight(g, inits, node.inputs[1]!);
      if (!w || w.rows * w.cols < MIN_WEIGHT_ELEMENTS) return false;
      const { q, scales } = quantizeSymmetric(w.data, w.rows, w.cols, 1, MATMUL_WEIGHT_LIMIT);
      const [xq, xScale, xZero] = g.node('DynamicQuantizeLinear', [node.inputs[0]!], {}, { outputs: 3 });
      const product = g.op('MatMulInteger', [xq!, g.addInitializer('weight_int8', 'int8', [w.rows, w.cols], q), xZero!]);
      const scale = g.op('Mul', [xScale!, g.float('weight_scale', [w.cols], scales)]);
      g.node('Mul', [g.op('Cast', [product], { to: attr.dtype('float32') }), scale], {}, { outputs: node.outputs });
      return true;
    }
    if (node.opType === 'Gather') {
      const table = inits.get(node.inputs[0]!);
      if (!table || table.dtype !== 'float32' || table.dims.length !== 2 || table.data.length < MIN_WEIGHT_ELEMENTS) return false;
      const [rows, cols] = table.dims as [number, number];
      const { q, scales } = quantizeSymmetric(table.data as Float32Array, rows, cols, 0, STORED_WEIGHT_LIMIT);
      const ids = node.inputs[1]!;
      const rowsQ = g.op('Gather', [g.addInitializer('table_int8', 'int8', [rows, cols], q), ids]);
      const rowScales = g.unsqueeze(g.op('Gather', [g.float('table_scale', [rows], scales), ids]), [-1]);
      g.node('Mul', [g.op('Cast', [rowsQ], { to: attr.dtype('float32') }), rowScales], {}, { outputs: node.outputs });
      return true;
    }
    return false;
  });
  return g;
}

export function weightsToFp16(fp32: Graph): Graph {
  const g = fp32.clone();
  const casts = new Map<string, string>();
  for (const init of [...g.initializers]) {
    if (init.dtype !== 'float32' || init.data.length < MIN_WEIGHT_ELEMENTS) continue;
    const half = new Uint16Array(init.data.length);
    const src = init.data as Float32Array;
    for (let i = 0; i < src.length; i++) half[i] = toHalfBits(src[i]!);
    init.dtype = 'float16';
    init.data = half;
    casts.set(init.name, '');
  }
  rewriteNodes(g, (node) => {
    if (!node.inputs.some((name) => casts.has(name))) return false;
    node.inputs = node.inputs.map((name) => {
      if (!casts.has(name)) return name;
      if (casts.get(name) === '') casts.set(name, g.inScope(name, () => g.op('Cast', [name], { to: attr.dtype('float32') })));
      return casts.get(name)!;
    });
    g.nodes.push(node);
    return true;
  });
  return g;
}
