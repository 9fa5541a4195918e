/**
 * A structural check of a graph model's model.json before any converter or tfjs sees it. A damaged
 * file (a bad copy, a hand edit, another tool's bug) can hold anything where a GraphDef holds a
 * node: the converters and tfjs then fail deep inside with a TypeError or a message about a tensor
 * the user never named, or tfjs walks a cycle. This check names the node (or the weight) and says
 * what is wrong with it: a name, an op, an input reference that resolves to nothing or to an output
 * the op does not have, the number of inputs an op takes, an attribute of the wrong kind, a cycle,
 * a weight manifest entry with a bad shape or dtype.
 */
import { FerryError } from '../../errors.ts';
import type { GraphModelJson, TfAttrValue, TfNode } from './format.ts';

const HINT = 'model.json looks damaged: convert the model again with tensorflowjs_converter, or copy it again.';

function damaged(file: string, what: string): FerryError {
  return new FerryError('export_bad_graph', `${file}: ${what}`, { hint: HINT, status: 422 });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const short = (v: unknown) => { const s = JSON.stringify(v) ?? String(v); return s.length > 40 ? `${s.slice(0, 37)}...` : s; };

// Protobuf's JSON form: int64 as a decimal string (or a number), bytes as base64, floats as numbers or NaN/Infinity strings.
const isInt = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && /^-?\d{1,15}$/.test(v));
const isFloat = (v: unknown) => typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity';
const isBase64 = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v);

function checkShape(shape: unknown): string | undefined {
  if (!isObject(shape)) return `a shape that is ${short(shape)}`;
  if (shape.unknownRank !== undefined && typeof shape.unknownRank !== 'boolean') return `unknownRank ${short(shape.unknownRank)}`;
  if (shape.dim === undefined) return undefined;
  if (!Array.isArray(shape.dim)) return `shape dims ${short(shape.dim)} (not a list)`;
  for (const d of shape.dim) {
    if (!isObject(d) || (d.size !== undefined && !isInt(d.size))) return `shape dim ${short(d)} (not {size: a whole number})`;
    if (d.size !== undefined && Number(d.size) < -1) return `shape dim ${d.size} (dims are sizes, or -1 for unknown)`;
  }
  return undefined;
}

const LIST_FIELDS: Record<string, (v: unknown) => boolean> = {
  s: isBase64, i: isInt, f: isFloat, b: (v) => typeof v === 'boolean', type: (v) => typeof v === 'string', shape: (v) => checkShape(v) === undefined,
};

/** What is wrong with an attribute value as JSON protobuf (whatever its name), or undefined. */
function checkAttrValue(value: unknown): string | undefined {
  if (!isObject(value)) return `is ${short(value)}, not an attribute value`;
  if (value.s !== undefined && !isBase64(value.s)) return `holds s ${short(value.s)}, which is not base64 text`;
  if (value.i !== undefined && !isInt(value.i)) return `holds i ${short(value.i)}, which is not a whole number`;
  if (value.f !== undefined && !isFloat(value.f)) return `holds f ${short(value.f)}, which is not a number`;
  if (value.b !== undefined && typeof value.b !== 'boolean') return `holds b ${short(value.b)}, which is not true or false`;
  if (value.type !== undefined && typeof value.type !== 'string') return `holds type ${short(value.type)}, which is not a dtype name`;
  if (value.shape !== undefined) { const why = checkShape(value.shape); if (why) return `holds ${why}`; }
  if (value.tensor !== undefined && !isObject(value.tensor)) return `holds tensor ${short(value.tensor)}`;
  if (value.list !== undefined) {
    if (!isObject(value.list)) return `holds list ${short(value.list)}, which is not a list value`;
    for (const [field, ok] of Object.entries(LIST_FIELDS)) {
      const items = value.list[field];
      if (items === undefined) continue;
      if (!Array.isArray(items)) return `holds list.${field} ${short(items)}, which is not a list`;
      const bad = items.find((item) => !ok(item));
      if (bad !== undefined) return `holds list.${field} entry ${short(bad)}`;
    }
  }
  return undefined;
}

type Kind = 'int' | 'ints' | 'float' | 'bool' | 'string' | 'strings' | 'type' | 'shape' | 'tensor';

/** The kind of every attribute a converter reads: present with another kind, the converter would misread it. */
const ATTR_KINDS: Record<string, Kind> = {
  strides: 'ints', dilations: 'ints', ksize: 'ints', explicit_paddings: 'ints', squeeze_dims: 'ints',
  padding: 'string', data_format: 'string', mode: 'string', equation: 'string', fused_ops: 'strings',
  num_args: 'int', num_split: 'int', num: 'int', block_size: 'int', batch_dims: 'int', N: 'int',
  begin_mask: 'int', end_mask: 'int', ellipsis_mask: 'int', new_axis_mask: 'int', shrink_axis_mask: 'int',
  alpha: 'float', epsilon: 'float', leakyrelu_alpha: 'float',
  transpose_a: 'bool', transpose_b: 'bool', adj_x: 'bool', adj_y: 'bool', keep_dims: 'bool', align_corners: 'bool',
  half_pixel_centers: 'bool', is_training: 'bool', sorted: 'bool',
  T: 'type', dtype: 'type', DstT: 'type', SrcT: 'type', out_type: 'type', output_type: 'type', Tidx: 'type', Tshape: 'type',
  Tparams: 'type', Tindices: 'type', Taxis: 'type', Tpaddings: 'type',
  shape: 'shape', value: 'tensor',
};

function hasKind(value: TfAttrValue, kind: Kind): boolean {
  switch (kind) {
    case 'int': return value.i !== undefined || Object.keys(value).length === 0;
    case 'float': return value.f !== undefined || Object.keys(value).length === 0;
    case 'bool': return value.b !== undefined || Object.keys(value).length === 0;
    case 'string': return value.s !== undefined;
    case 'type': return value.type !== undefined;
    case 'shape': return value.shape !== undefined;
    case 'tensor': return value.tensor !== undefined;
    // An empty list is written as {list: {}}.
    case 'ints': return value.list !== undefined && value.list.s === undefined && value.list.f === undefined;
    case 'strings': return value.list !== undefined && value.list.i === undefined && value.list.f === undefined;
  }
}

const KIND_WORDS: Record<Kind, string> = {
  int: 'a whole number (i)', ints: 'a list of whole numbers (list.i)', float: 'a number (f)', bool: 'true or false (b)', string: 'a string (s)',
  strings: 'a list of strings (list.s)', type: 'a dtype (type)', shape: 'a shape', tensor: 'a tensor',
};

/** Windows and steps: a 0 or negative entry has no meaning (and tfjs or onnxruntime would divide by it). */
const POSITIVE_INTS = new Set(['strides', 'dilations', 'ksize']);

// Data inputs per op: [least, most]. Ops not listed are not checked (a converter may still refuse them).
const UNARY = ['Relu', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'Softplus', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Inv', 'Neg', 'Abs', 'Floor', 'Ceil', 'Round',
  'Sign', 'Sin', 'Cos', 'Erf', 'LogicalNot', 'Relu6', 'Rsqrt', 'Square', 'LeakyRelu', 'Softmax', 'LogSoftmax', 'MaxPool', 'AvgPool', 'Identity',
  'StopGradient', 'Snapshot', 'Shape', 'Size', 'Cast', 'ZerosLike', 'DepthToSpace', 'SpaceToDepth', 'Squeeze', 'Unpack', 'PlaceholderWithDefault'];
const BINARY = ['AddV2', 'Add', 'Sub', 'Mul', 'RealDiv', 'Div', 'Maximum', 'Minimum', 'Pow', 'FloorDiv', 'FloorMod', 'SquaredDifference', 'Atan2',
  'NotEqual', 'Equal', 'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'LogicalAnd', 'LogicalOr', 'BiasAdd', 'Prelu', 'MatMul', 'BatchMatMul',
  'BatchMatMulV2', 'BatchMatMulV3', 'Conv2D', 'DepthwiseConv2dNative', 'Reshape', 'ExpandDims', 'Transpose', 'Fill', 'Tile', 'BroadcastTo', 'Pad',
  'MirrorPad', 'TopKV2', 'ResizeBilinear', 'ResizeNearestNeighbor', 'Mean', 'Sum', 'Max', 'Min', 'Prod', 'ArgMax', 'ArgMin', 'Gather', 'GatherNd', 'Split'];
const ARITY: Record<string, [number, number]> = {
  Const: [0, 0], Placeholder: [0, 0],
  ...Object.fromEntries(UNARY.map((op) => [op, [1, 1]])),
  ...Object.fromEntries(BINARY.map((op) => [op, [2, 2]])),
  Conv2DBackpropInput: [3, 3], Select: [3, 3], SelectV2: [3, 3], Range: [3, 3], PadV2: [3, 3], Slice: [3, 3], GatherV2: [3, 3], SplitV: [3, 3],
  StridedSlice: [4, 4], FusedBatchNorm: [5, 5], FusedBatchNormV3: [5, 5], SparseToDense: [4, 4], Where: [1, 3],
};

/** [least, most] data inputs of `node`, or undefined when ferry does not know. */
function arity(node: TfNode): [number, number] | undefined {
  const int = (key: string) => (node.attr?.[key]?.i === undefined ? undefined : Number(node.attr[key]!.i));
  if (node.op.startsWith('_Fused') || node.op === 'FusedDepthwiseConv2dNative') {
    const args = int('num_args');
    return args === undefined ? undefined : [2 + args, 2 + args + (int('num_host_args') ?? 0)];
  }
  const n = int('N');
  if (node.op === 'AddN' || node.op === 'Pack') return n === undefined ? undefined : [n, n];
  if (node.op === 'ConcatV2') return n === undefined ? undefined : [n + 1, n + 1];
  return ARITY[node.op];
}

/** How many outputs `node` has, or undefined when ferry does not know (an op it has no row for). */
function outputCount(node: TfNode): number | undefined {
  const int = (key: string) => (node.attr?.[key]?.i === undefined ? undefined : Number(node.attr[key]!.i));
  switch (node.op) {
    case 'Split': case 'SplitV': return int('num_split');
    case 'Unpack': return int('num');
    case 'TopKV2': return 2;
    case 'FusedBatchNorm': return 5;
    case 'FusedBatchNormV3': return 6;
    default: return arity(node) === undefined ? undefined : 1;
  }
}

const REF = /^(\^)?([^:^]+)(?::(\d{1,9}))?$/;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function checkNodes(file: string, nodes: unknown[]): TfNode[] {
  const byName = new Map<string, TfNode>();
  nodes.forEach((raw, i) => {
    if (!isObject(raw)) throw damaged(file, `node ${i} of modelTopology.node is ${short(raw)}, not a node`);
    const { name, op } = raw;
    if (typeof name !== 'string' || name === '' || name.includes(':') || name.startsWith('^')) throw damaged(file, `node ${i} has the name ${short(name)}, which is not a node name`);
    if (typeof op !== 'string' || op === '') throw damaged(file, `node ${name} has the op ${short(op)}, which is not an op name`);
    if (byName.has(name)) throw damaged(file, `two nodes are named ${name} (${byName.get(name)!.op} and ${op})`);
    if (raw.input !== undefined && (!Array.isArray(raw.input) || raw.input.some((r) => typeof r !== 'string'))) throw damaged(file, `node ${name} (${op}) has the inputs ${short(raw.input)}, which are not a list of node names`);
    if (raw.attr !== undefined && !isObject(raw.attr)) throw damaged(file, `node ${name} (${op}) has the attributes ${short(raw.attr)}, which are not a map`);
    byName.set(name, raw as unknown as TfNode);
  });
  for (const node of byName.values()) {
    const where = `node ${node.name} (${node.op})`;
    for (const [key, value] of Object.entries(node.attr ?? {})) {
      const why = checkAttrValue(value);
      if (why) throw damaged(file, `${where}: attribute ${key} ${why}`);
      const kind = ATTR_KINDS[key];
      if (kind && !hasKind(value, kind)) throw damaged(file, `${where}: attribute ${key} is ${short(value)}; ${key} is ${KIND_WORDS[kind]}`);
      if (POSITIVE_INTS.has(key)) {
        const bad = (value.list?.i ?? []).find((n) => Number(n) < 1);
        if (bad !== undefined) throw damaged(file, `${where}: attribute ${key} holds ${bad}; each entry of ${key} is at least 1`);
      }
    }
    let data = 0;
    for (const ref of node.input ?? []) {
      const match = REF.exec(ref);
      if (!match) throw damaged(file, `${where} reads ${short(ref)}, which is not a tensor name (node, node:1 or ^node)`);
      const source = byName.get(match[2]!);
      if (!source) throw damaged(file, `${where} reads ${ref}, but model.json has no node ${match[2]}`);
      if (match[1]) continue;
      data++;
      const index = Number(match[3] ?? 0);
      const outputs = outputCount(source);
      if (outputs !== undefined && index >= outputs) throw damaged(file, `${where} reads ${ref}, but ${source.name} (${source.op}) has ${plural(outputs, 'output')}`);
    }
    const range = arity(node);
    if (range && (data < range[0] || data > range[1])) {
      const takes = range[0] === range[1] ? plural(range[0], 'input') : `${range[0]} to ${range[1]} inputs`;
      throw damaged(file, `${where} has ${plural(data, 'input')}; ${node.op}${node.op.startsWith('_Fused') ? ` with num_args ${node.attr?.num_args?.i}` : ''} takes ${takes}`);
    }
  }
  checkCycles(file, byName);
  return [...byName.values()];
}

/**
 * A data edge path that returns to its start: tfjs would wait on it forever and ferry could not
 * order it. TF1 while loops close their cycle through a Merge; those are refused by name later.
 */
function checkCycles(file: string, byName: Map<string, TfNode>): void {
  const state = new Map<string, 'open' | 'done'>();
  for (const start of byName.keys()) {
    if (state.has(start)) continue;
    const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
    state.set(start, 'open');
    while (stack.length) {
      const top = stack.at(-1)!;
      const node = byName.get(top.name)!;
      const inputs = node.op === 'Merge' ? [] : node.input ?? [];
      if (top.next >= inputs.length) {
        state.set(top.name, 'done');
        stack.pop();
        continue;
      }
      const ref = REF.exec(inputs[top.next++]!)!;
      const next = ref[2]!;
      if (state.get(next) === 'open') {
        const path = [...stack.slice(stack.findIndex((s) => s.name === next)).map((s) => s.name), next];
        throw damaged(file, `node ${next} (${byName.get(next)!.op}) depends on itself: ${path.reverse().join(' -> ')}`);
      }
      if (!state.has(next)) {
        state.set(next, 'open');
        stack.push({ name: next, next: 0 });
      }
    }
  }
}

function checkManifest(file: string, manifest: GraphModelJson['weightsManifest']): void {
  const seen = new Set<string>();
  for (const group of manifest) {
    for (const spec of group.weights) {
      const where = `weight ${spec.name} of the weights manifest`;
      if (seen.has(spec.name)) throw damaged(file, `the weights manifest lists ${spec.name} twice`);
      seen.add(spec.name);
      const bad = spec.shape.find((d) => !Number.isSafeInteger(d) || d < 0);
      if (bad !== undefined) throw damaged(file, `${where} has the shape ${short(spec.shape)}: ${short(bad)} is not a size`);
      const q = spec.quantization as unknown;
      if (q === undefined) continue;
      if (!isObject(q) || typeof q.dtype !== 'string') throw damaged(file, `${where} has the quantization ${short(q)}, which names no dtype`);
      for (const key of ['scale', 'min'] as const) {
        if (q[key] !== undefined && !(typeof q[key] === 'number' && Number.isFinite(q[key]))) throw damaged(file, `${where} has the quantization ${key} ${short(q[key])}, which is not a number`);
      }
    }
  }
}

function checkSignature(file: string, signature: unknown, byName: Set<string>): void {
  if (signature === undefined) return;
  if (!isObject(signature)) throw damaged(file, `its signature is ${short(signature)}`);
  for (const side of ['inputs', 'outputs'] as const) {
    const entries = signature[side];
    if (entries === undefined) continue;
    if (!isObject(entries)) throw damaged(file, `its signature's ${side} are ${short(entries)}, not a map`);
    for (const [key, entry] of Object.entries(entries)) {
      if (!isObject(entry) || typeof entry.name !== 'string') throw damaged(file, `signature ${side.slice(0, -1)} ${key} is ${short(entry)}, which names no tensor`);
      const match = REF.exec(entry.name);
      if (!match || match[1] || !byName.has(match[2]!)) throw damaged(file, `signature ${side.slice(0, -1)} ${key} names the tensor ${short(entry.name)}, but model.json has no such node`);
      if (entry.tensorShape !== undefined) { const why = checkShape(entry.tensorShape); if (why) throw damaged(file, `signature ${side.slice(0, -1)} ${key} has ${why}`); }
    }
  }
}

/** Refuses a damaged graph model.json with one FerryError naming the node or weight (`file` is how the user named it). */
export function checkGraphModelJson(json: GraphModelJson, file: string): void {
  const topology = json.modelTopology as unknown as Record<string, unknown>;
  // tfjs reads versions.producer before anything else and fails with a TypeError without it.
  if (!isObject(topology.versions)) throw damaged(file, `modelTopology.versions is ${short(topology.versions)} (tensorflowjs_converter writes {"producer": N})`);
  if (topology.node !== undefined && !Array.isArray(topology.node)) throw damaged(file, `modelTopology.node is ${short(topology.node)}, not a list of nodes`);
  const nodes = checkNodes(file, (topology.node as unknown[] | undefined) ?? []);
  if (nodes.length === 0) throw damaged(file, 'modelTopology has no nodes');
  checkSignature(file, json.signature, new Set(nodes.map((n) => n.name)));
  checkManifest(file, json.weightsManifest);
}
