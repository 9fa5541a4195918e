/** Slice, StridedSlice (every mask), GatherV2, GatherNd. */
import { attr } from '../../graph.ts';
import { attrInt } from '../attributes.ts';
import { castTo, constantValue, int64Input, type OpConverter } from '../context.ts';
import { numbers, tensorOf } from '../fold.ts';
import { normalizeAxis } from '../shapes.ts';

const INT64_MAX = 2 ** 62;

/** The length of `start:end:step` over a dim of `size` (Python slice rules). */
function sliceLength(size: number, start: number, end: number, step: number): number {
  const clamp = (v: number, low: number, high: number) => Math.min(Math.max(v < 0 ? v + size : v, low), high);
  const [s, e] = step > 0 ? [clamp(start, 0, size), clamp(end, 0, size)] : [clamp(start, -1, size - 1), clamp(end, -1, size - 1)];
  return Math.max(0, Math.ceil((e - s) / step));
}

const slice: OpConverter = (op) => {
  const x = op.input(0);
  const begin = op.constantNumbers(1, 'begin');
  const size = op.constantNumbers(2, 'size');
  const ends = begin.map((b, i) => (size[i] === -1 ? INT64_MAX : b + size[i]!));
  const g = op.graph;
  const axes = begin.map((_, i) => i);
  const name = g.op('Slice', [op.name(0), g.int64('starts', begin), g.int64('ends', ends), g.int64('axes', axes)]);
  const shape = x.shape?.map((d, i) => (i >= begin.length ? d : size[i] !== -1 ? size[i]! : d === null ? null : d - begin[i]!));
  return [{ name, dtype: x.dtype, shape }];
};

interface SliceAxis { axis: number; start: number; end: number; step: number }

/** StridedSlice as Slice, then Squeeze (shrink_axis_mask), then Unsqueeze (new_axis_mask). */
const stridedSlice: OpConverter = (op) => {
  const x = op.input(0);
  const begin = op.constantNumbers(1, 'begin');
  const end = op.constantNumbers(2, 'end');
  const strides = op.constantNumbers(3, 'strides');
  const mask = (key: string) => attrInt(op.node, key, 0);
  const [beginMask, endMask, ellipsisMask, newAxisMask, shrinkMask] = ['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'].map(mask) as [number, number, number, number, number];
  const bit = (m: number, i: number) => (m >> i) & 1;
  const spec = begin.length;
  const rank = ellipsisMask ? op.rank(0) : x.shape?.length;
  const consumed = Array.from({ length: spec }, (_, i) => i).filter((i) => !bit(newAxisMask, i) && !bit(ellipsisMask, i)).length;

  const slices: SliceAxis[] = [];
  const shrink: number[] = [];
  const newAxes: number[] = [];
  let axis = 0;
  let out = 0;
  for (let i = 0; i < spec; i++) {
    if (bit(ellipsisMask, i)) {
      const covered = rank! - consumed;
      axis += covered;
      out += covered;
      continue;
    }
    if (bit(newAxisMask, i)) {
      newAxes.push(out++);
      continue;
    }
    const step = strides[i]!;
    if (step === 0) throw op.refuse('a stride of 0');
    if (bit(shrinkMask, i)) {
      const b = begin[i]!;
      slices.push({ axis, start: b, end: b === -1 ? INT64_MAX : b + 1, step: 1 });
      shrink.push(axis++);
      continue;
    }
    const start = bit(beginMask, i) ? (step > 0 ? 0 : INT64_MAX) : begin[i]!;
    const stop = bit(endMask, i) ? (step > 0 ? INT64_MAX : -INT64_MAX) : end[i]!;
    slices.push({ axis: axis++, start, end: stop, step });
    out++;
  }
  const full = (s: SliceAxis) => s.step === 1 && s.start === 0 && s.end >= INT64_MAX;
  const active = slices.filter((s) => !full(s));
  const sliced = x.shape?.map((d, i) => {
    const s = active.find((a) => a.axis === i);
    return !s ? d : d === null ? null : sliceLength(d, s.start, s.end, s.step);
  });
  const shape = sliced ? (() => {
    const kept = sliced.filter((_, i) => !shrink.includes(i));
    for (const at of newAxes) kept.splice(at, 0, 1);
    return kept;
  })() : undefined;

  if (x.constant && x.shape?.length === 1 && newAxes.length === 0 && shape) {
    const values = numbers(x.constant);
    const s = slices[0] ?? { start: 0, end: INT64_MAX, step: 1 };
    const n = values.length;
    const from = s.start < 0 ? s.start + n : Math.min(s.start, s.step > 0 ? n : n - 1);
    const picked = Array.from({ length: sliceLength(n, s.start, s.end, s.step) }, (_, k) => values[from + k * s.step]!);
    return [constantValue(tensorOf(x.dtype, shape as number[], picked))];
  }

  const g = op.graph;
  let y = op.name(0);
  if (active.length) {
    y = g.op('Slice', [y, g.int64('starts', active.map((s) => s.start)), g.int64('ends', active.map((s) => s.end)), g.int64('axes', active.map((s) => s.axis)), g.int64('steps', active.map((s) => s.step))]);
  }
  if (shrink.length) y = g.squeeze(y, shrink);
  if (newAxes.length) y = g.unsqueeze(y, newAxes);
  if (y === op.name(0)) return [x];
  return [{ name: y, dtype: x.dtype, shape }];
};

const gather: OpConverter = (op) => {
  if (attrInt(op.node, 'batch_dims', 0) !== 0) throw op.refuse(`attribute batch_dims ${attrInt(op.node, 'batch_dims', 0)} is not supported`);
  const [params, indices] = [op.input(0), op.input(1)];
  const axisValue = op.inputs.length > 2 ? op.constantNumbers(2, 'axis')[0]! : 0;
  const rank = params.shape?.length;
  const axis = rank === undefined ? axisValue : normalizeAxis(axisValue, rank);
  const shape = params.shape && indices.shape ? [...params.shape.slice(0, axis), ...indices.shape, ...params.shape.slice(axis + 1)] : undefined;
  if (params.constant && indices.constant && rank === 1) {
    const values = numbers(params.constant);
    return [constantValue(tensorOf(params.dtype, indices.constant.dims, numbers(indices.constant).map((i) => values[i < 0 ? i + values.length : i]!)))];
  }
  return [{ name: op.graph.op('Gather', [op.name(0), int64Input(op, 1)], { axis: attr.int(axis) }), dtype: params.dtype, shape }];
};

const gatherNd: OpConverter = (op) => {
  const [params, indices] = [op.input(0), op.input(1)];
  const depth = indices.shape?.[indices.shape.length - 1];
  const shape = params.shape && indices.shape && typeof depth === 'number' ? [...indices.shape.slice(0, -1), ...params.shape.slice(depth)] : undefined;
  const idx = indices.dtype === 'int64' ? op.name(1) : castTo(op.graph, op.name(1), 'int64');
  return [{ name: op.graph.op('GatherND', [op.name(0), idx]), dtype: params.dtype, shape }];
};

/** Where(condition) alone: the coordinates of the true elements, [count, rank] int64. */
const whereIndices: OpConverter = (op) => {
  if (op.inputs.length !== 1) return [{ name: op.graph.op('Where', [op.name(0), op.name(1), op.name(2)]), dtype: op.input(1).dtype, shape: op.input(1).shape }];
  const rank = op.input(0).shape?.length ?? null;
  return [{ name: op.graph.transpose(op.graph.op('NonZero', [op.name(0)]), [1, 0]), dtype: 'int64', shape: [null, rank] }];
};

/** SparseToDense(indices, output_shape, values, default): ScatterND into a tensor filled with the default. */
const sparseToDense: OpConverter = (op) => {
  const g = op.graph;
  const values = op.input(2);
  const dense = g.op('Expand', [op.name(3), int64Input(op, 1)]);
  let indices = int64Input(op, 0);
  if (op.input(0).shape?.length === 1) indices = g.unsqueeze(indices, [1]);
  let updates = op.name(2);
  if (values.shape?.length === 0) updates = g.op('Expand', [updates, g.op('Slice', [g.op('Shape', [indices]), g.int64('starts', [0]), g.int64('ends', [1])])]);
  const target = op.constant(1) ? op.constantNumbers(1, 'output_shape') : undefined;
  return [{ name: g.op('ScatterND', [dense, indices, updates]), dtype: values.dtype, shape: target ?? (op.input(1).shape?.[0] != null ? new Array<null>(op.input(1).shape![0]!).fill(null) : undefined) }];
};

export const sliceOps: Record<string, OpConverter> = {
  Slice: slice,
  StridedSlice: stridedSlice,
  GatherV2: gather,
  Gather: gather,
  GatherNd: gatherNd,
  Where: whereIndices,
  SparseToDense: sparseToDense,
};
