/** Mean, Sum, Max, Min, Prod over constant axes; ArgMax, ArgMin. */
import { attr } from '../../graph.ts';
import { attrBool, attrType } from '../attributes.ts';
import { castTo, type OpConverter } from '../context.ts';
import { normalizeAxis } from '../shapes.ts';

function reduce(onnx: 'ReduceMean' | 'ReduceSum' | 'ReduceMax' | 'ReduceMin' | 'ReduceProd'): OpConverter {
  return (op) => {
    const x = op.input(0);
    const listed = op.constantNumbers(1, 'axes');
    const keep = attrBool(op.node, 'keep_dims', false);
    const rank = x.shape?.length;
    const axes = rank === undefined ? listed : listed.map((a) => normalizeAxis(a, rank));
    if (axes.length === 0) return [x];
    const g = op.graph;
    const keepdims = { keepdims: attr.int(keep ? 1 : 0) };
    // ReduceSum takes its axes as an input from opset 13, the others from opset 18.
    const name = onnx === 'ReduceSum' || g.opset >= 18
      ? g.op(onnx, [op.name(0), g.int64('axes', axes)], keepdims)
      : g.op(onnx, [op.name(0)], { ...keepdims, axes: attr.ints(axes) });
    const shape = x.shape?.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    return [{ name, dtype: x.dtype, shape }];
  };
}

function argReduce(onnx: 'ArgMax' | 'ArgMin'): OpConverter {
  return (op) => {
    const x = op.input(0);
    const [axisValue] = op.constantNumbers(1, 'dimension');
    const rank = x.shape?.length;
    const axis = rank === undefined ? axisValue! : normalizeAxis(axisValue!, rank);
    const dtype = attrType(op.node, 'output_type').dtype ?? 'int64';
    const index = op.graph.op(onnx, [op.name(0)], { axis: attr.int(axis), keepdims: attr.int(0) });
    return [{ name: dtype === 'int64' ? index : castTo(op.graph, index, dtype), dtype, shape: x.shape?.filter((_, i) => i !== axis) }];
  };
}

export const reduceOps: Record<string, OpConverter> = {
  Mean: reduce('ReduceMean'),
  Sum: reduce('ReduceSum'),
  Max: reduce('ReduceMax'),
  Min: reduce('ReduceMin'),
  Prod: reduce('ReduceProd'),
  ArgMax: argReduce('ArgMax'),
  ArgMin: argReduce('ArgMin'),
};
