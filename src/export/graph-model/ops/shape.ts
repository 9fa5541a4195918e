/** Ops that move, reshape, join, split, pad, cast or create tensors. Shape arithmetic folds where it can. */
import { attr } from '../../graph.ts';
import { attrInt, attrInts, attrString, attrType } from '../attributes.ts';
import { castTo, constantValue, int64Input, materialize, type OpContext, type OpConverter, type Value } from '../context.ts';
import { numbers, permuteTensor, tensorOf } from '../fold.ts';
import { elementCount, normalizeAxis, type Shape } from '../shapes.ts';

const alias: OpConverter = (op) => [op.input(0)];

function reshapeShape(input: Shape | undefined, target: number[]): Shape {
  const known = input && input.every((d) => d !== null) ? elementCount(input as number[]) : undefined;
  return target.map((d) => (d >= 0 ? d : known === undefined ? null : known / elementCount(target.filter((t) => t >= 0))));
}

const reshape: OpConverter = (op) => {
  const x = op.input(0);
  const target = op.constant(1) ? op.constantNumbers(1, 'shape') : undefined;
  if (target && x.constant) return [constantValue({ ...x.constant, dims: reshapeShape(x.shape, target) as number[] })];
  const shape = target ? reshapeShape(x.shape, target) : op.input(1).shape?.[0] != null ? new Array<null>(op.input(1).shape![0]!).fill(null) : undefined;
  // TF reads 0 as a dim of size 0; ONNX's default reads it as "copy the input's dim".
  return [{ name: op.graph.op('Reshape', [op.name(0), int64Input(op, 1)], { allowzero: attr.int(1) }), dtype: x.dtype, shape }];
};

const squeeze: OpConverter = (op) => {
  const x = op.input(0);
  const listed = attrInts(op.node, 'squeeze_dims') ?? attrInts(op.node, 'axis') ?? [];
  let axes = listed;
  if (axes.length === 0) {
    // Which dims have size 1 is known only at run time: ONNX's Squeeze without axes decides there too, as TF does.
    if (!x.shape || x.shape.some((d) => d === null)) return [{ name: op.graph.op('Squeeze', [op.name(0)]), dtype: x.dtype }];
    axes = x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  }
  const rank = x.shape?.length;
  const normalized = rank === undefined ? axes : axes.map((a) => normalizeAxis(a, rank));
  const shape = x.shape?.filter((_, i) => !normalized.includes(i));
  if (x.constant && shape) return [constantValue({ ...x.constant, dims: shape as number[] })];
  return [{ name: op.graph.squeeze(op.name(0), normalized), dtype: x.dtype, shape }];
};

const expandDims: OpConverter = (op) => {
  const x = op.input(0);
  const [axis] = op.constantNumbers(1, 'axis');
  const rank = x.shape ? x.shape.length + 1 : undefined;
  const at = rank === undefined ? axis! : normalizeAxis(axis!, rank);
  const shape = x.shape ? [...x.shape.slice(0, at), 1, ...x.shape.slice(at)] : undefined;
  if (x.constant && shape) return [constantValue({ ...x.constant, dims: shape as number[] })];
  return [{ name: op.graph.unsqueeze(op.name(0), [at]), dtype: x.dtype, shape }];
};

const transpose: OpConverter = (op) => {
  const x = op.input(0);
  const perm = op.constantNumbers(1, 'perm');
  if (x.constant) return [constantValue(permuteTensor(x.constant, perm))];
  return [{ name: op.graph.transpose(op.name(0), perm), dtype: x.dtype, shape: x.shape ? perm.map((p) => x.shape![p]!) : undefined }];
};

function outType(op: OpContext) {
  return attrType(op.node, 'out_type').dtype ?? 'int32';
}

const shapeOp: OpConverter = (op) => {
  const x = op.input(0);
  const dtype = outType(op);
  if (x.shape && x.shape.every((d) => d !== null)) return [constantValue(tensorOf(dtype, [x.shape.length], x.shape as number[]))];
  const shape = op.graph.op('Shape', [op.name(0)]);
  return [{ name: dtype === 'int64' ? shape : castTo(op.graph, shape, dtype), dtype, shape: [x.shape?.length ?? null] }];
};

const size: OpConverter = (op) => {
  const x = op.input(0);
  const dtype = outType(op);
  if (x.shape && x.shape.every((d) => d !== null)) return [constantValue(tensorOf(dtype, [], [elementCount(x.shape as number[])]))];
  const n = op.graph.op('Size', [op.name(0)]);
  return [{ name: dtype === 'int64' ? n : castTo(op.graph, n, dtype), dtype, shape: [] }];
};

const cast: OpConverter = (op) => {
  const x = op.input(0);
  const { dtype, tfName } = attrType(op.node, 'DstT');
  if (!dtype) throw op.refuse(`cast to ${tfName} is not supported`);
  if (x.constant) return [constantValue(tensorOf(dtype, x.constant.dims, numbers(x.constant).map((v) => (dtype === 'bool' ? Number(v !== 0) : dtype === 'float32' ? v : Math.trunc(v)))))];
  if (x.dtype === dtype) return [x];
  return [{ name: castTo(op.graph, op.name(0), dtype), dtype, shape: x.shape }];
};

const fill: OpConverter = (op) => {
  const value = op.input(1);
  const dims = op.constant(0) ? op.constantNumbers(0, 'dims') : undefined;
  if (dims && value.constant && elementCount(dims) <= 4096) return [constantValue(tensorOf(value.dtype, dims, new Array(elementCount(dims)).fill(numbers(value.constant)[0])))];
  return [{ name: op.graph.op('Expand', [op.name(1), int64Input(op, 0)]), dtype: value.dtype, shape: dims ?? (op.input(0).shape?.[0] != null ? new Array<null>(op.input(0).shape![0]!).fill(null) : undefined) }];
};

const zerosLike: OpConverter = (op) => {
  const x = op.input(0);
  const zero = materialize(op.graph, constantValue(tensorOf(x.dtype, [], [0])));
  return [{ name: op.graph.op('Mul', [op.name(0), zero]), dtype: x.dtype, shape: x.shape }];
};

const range: OpConverter = (op) => {
  const [start, limit, delta] = [op.constant(0), op.constant(1), op.constant(2)];
  const dtype = op.input(0).dtype;
  if (start && limit && delta) {
    const [a, b, d] = [numbers(start)[0]!, numbers(limit)[0]!, numbers(delta)[0]!];
    const count = Math.max(Math.ceil((b - a) / d), 0);
    return [constantValue(tensorOf(dtype, [count], Array.from({ length: count }, (_, i) => a + i * d)))];
  }
  return [{ name: op.graph.op('Range', [op.name(0), op.name(1), op.name(2)]), dtype, shape: [null] }];
};

/** Pack (stack): every input gains the new axis, then one Concat. */
const pack: OpConverter = (op) => {
  const first = op.input(0);
  const rank = (first.shape?.length ?? 0) + 1;
  const axis = normalizeAxis(attrInt(op.node, 'axis', 0), rank);
  const shape = first.shape ? [...first.shape.slice(0, axis), op.inputs.length, ...first.shape.slice(axis)] : undefined;
  if (op.inputs.every((v) => v.constant) && first.shape && elementCount(shape as number[]) <= 4096) {
    const parts = op.inputs.map((v) => numbers(v.constant!));
    const inner = elementCount(first.shape.slice(axis) as number[]);
    const outer = elementCount(first.shape.slice(0, axis) as number[]);
    const values: number[] = [];
    for (let o = 0; o < outer; o++) for (const p of parts) values.push(...p.slice(o * inner, (o + 1) * inner));
    return [constantValue(tensorOf(first.dtype, shape as number[], values))];
  }
  const g = op.graph;
  const parts = op.inputs.map((_, i) => g.unsqueeze(op.name(i), [axis]));
  return [{ name: parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: attr.int(axis) }), dtype: first.dtype, shape }];
};

const concat: OpConverter = (op) => {
  const parts = op.inputs.slice(0, -1);
  const [axisValue] = op.constantNumbers(op.inputs.length - 1, 'axis');
  const rank = parts.find((p) => p.shape)?.shape?.length;
  const axis = rank === undefined ? axisValue! : normalizeAxis(axisValue!, rank);
  const shape = rank === undefined || parts.some((p) => !p.shape) ? undefined : parts[0]!.shape!.map((d, i) => {
    if (i !== axis) return parts.map((p) => p.shape![i]).find((n) => n !== null) ?? d;
    return parts.every((p) => p.shape![i] !== null) ? parts.reduce((n, p) => n + (p.shape![i] as number), 0) : null;
  });
  if (parts.every((p) => p.constant) && rank === 1) {
    return [constantValue(tensorOf(parts[0]!.dtype, [shape![0] as number], parts.flatMap((p) => numbers(p.constant!))))];
  }
  const kept = parts.map((p, i) => ({ p, i })).filter(({ p }) => !(p.shape && p.shape[axis] === 0));
  if (kept.length === 1) return [kept[0]!.p];
  return [{ name: op.graph.op('Concat', kept.map(({ i }) => op.name(i)), { axis: attr.int(axis) }), dtype: parts[0]!.dtype, shape }];
};

function splitInto(op: OpContext, input: number, axisValue: number, sizes: number[] | number): Value[] {
  const x = op.input(input);
  const rank = x.shape?.length;
  const axis = rank === undefined ? axisValue : normalizeAxis(axisValue, rank);
  let parts = sizes;
  if (typeof parts === 'number') {
    const dim = x.shape?.[axis];
    if (dim == null) throw op.refuse('splitting a dynamic axis is not supported');
    parts = new Array<number>(parts).fill(dim / parts);
  }
  const dim = x.shape?.[axis];
  if (parts.includes(-1)) {
    if (dim == null) throw op.refuse('SplitV with -1 on a dynamic axis is not supported');
    parts = parts.map((p) => (p === -1 ? dim - (parts as number[]).filter((q) => q !== -1).reduce((a, b) => a + b, 0) : p));
  }
  const outputs = op.graph.node('Split', [op.name(input), op.graph.int64('split', parts)], { axis: attr.int(axis) }, { outputs: parts.length });
  return outputs.map((name, i) => ({ name, dtype: x.dtype, shape: x.shape?.map((d, j) => (j === axis ? (parts as number[])[i]! : d)) }));
}

const split: OpConverter = (op) => splitInto(op, 1, op.constantNumbers(0, 'axis')[0]!, attrInt(op.node, 'num_split', 1));
const splitV: OpConverter = (op) => splitInto(op, 0, op.constantNumbers(2, 'axis')[0]!, op.constantNumbers(1, 'size_splits'));

const unpack: OpConverter = (op) => {
  const x = op.input(0);
  const rank = op.rank(0);
  const axis = normalizeAxis(attrInt(op.node, 'axis', 0), rank);
  const parts = splitInto(op, 0, axis, attrInt(op.node, 'num', x.shape?.[axis] ?? 1));
  return parts.map((p) => ({ name: op.graph.squeeze(p.name, [axis]), dtype: p.dtype, shape: p.shape?.filter((_, j) => j !== axis) }));
};

const tile: OpConverter = (op) => {
  const x = op.input(0);
  const multiples = op.constant(1) ? op.constantNumbers(1, 'multiples') : undefined;
  const shape = x.shape && multiples ? x.shape.map((d, i) => (d === null ? null : d * multiples[i]!)) : x.shape?.map(() => null);
  return [{ name: op.graph.op('Tile', [op.name(0), int64Input(op, 1)]), dtype: x.dtype, shape }];
};

const broadcastTo: OpConverter = (op) => {
  const x = op.input(0);
  const target = op.constant(1) ? op.constantNumbers(1, 'shape') : undefined;
  return [{ name: op.graph.op('Expand', [op.name(0), int64Input(op, 1)]), dtype: x.dtype, shape: target ?? undefined }];
};

function pad(mode: 'constant' | 'mirror'): OpConverter {
  return (op) => {
    const x = op.input(0);
    const paddings = op.constantNumbers(1, 'paddings');
    const rank = paddings.length / 2;
    const pads = [...Array.from({ length: rank }, (_, i) => paddings[2 * i]!), ...Array.from({ length: rank }, (_, i) => paddings[2 * i + 1]!)];
    const g = op.graph;
    const inputs = [op.name(0), g.int64('pads', pads)];
    let onnxMode = 'constant';
    if (mode === 'mirror') {
      const tfMode = attrString(op.node, 'mode') ?? 'REFLECT';
      if (tfMode !== 'REFLECT') throw op.refuse(`MirrorPad mode ${tfMode} is not supported (ONNX has reflect only)`);
      onnxMode = 'reflect';
    } else if (op.inputs.length > 2) inputs.push(op.name(2));
    const shape = x.shape?.map((d, i) => (d === null ? null : d + paddings[2 * i]! + paddings[2 * i + 1]!));
    return [{ name: g.op('Pad', inputs, { mode: attr.string(onnxMode) }), dtype: x.dtype, shape }];
  };
}

export const shapeOps: Record<string, OpConverter> = {
  Identity: alias,
  StopGradient: alias,
  Snapshot: alias,
  PlaceholderWithDefault: alias,
  Reshape: reshape,
  Squeeze: squeeze,
  ExpandDims: expandDims,
  Transpose: transpose,
  Shape: shapeOp,
  Size: size,
  Cast: cast,
  Fill: fill,
  ZerosLike: zerosLike,
  Range: range,
  Pack: pack,
  ConcatV2: concat,
  Split: split,
  SplitV: splitV,
  Unpack: unpack,
  Tile: tile,
  BroadcastTo: broadcastTo,
  Pad: pad('constant'),
  PadV2: pad('constant'),
  MirrorPad: pad('mirror'),
};
