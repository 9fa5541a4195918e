/** MatMul, tfjs's _FusedMatMul (bias and activation after), BatchMatMulV2 and Einsum. */
import { attr } from '../../graph.ts';
import { attrBool, attrString } from '../attributes.ts';
import type { OpContext, OpConverter } from '../context.ts';
import { applyFusedOps } from './conv.ts';
import { broadcast } from '../shapes.ts';

/** A @ B with either side transposed in its last two dims first. */
function product(op: OpContext, transposeA: boolean, transposeB: boolean): { name: string; shape?: (number | null)[] } {
  const g = op.graph;
  const side = (i: number, flip: boolean) => {
    if (!flip) return { name: op.name(i), shape: op.input(i).shape };
    const rank = op.rank(i);
    const perm = [...Array.from({ length: rank - 2 }, (_, k) => k), rank - 1, rank - 2];
    const shape = op.input(i).shape!;
    return { name: g.transpose(op.name(i), perm), shape: perm.map((p) => shape[p]!) };
  };
  const [a, b] = [side(0, transposeA), side(1, transposeB)];
  const batch = a.shape && b.shape ? broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2)) : undefined;
  const shape = batch && a.shape!.length >= 2 && b.shape!.length >= 2 ? [...batch, a.shape![a.shape!.length - 2]!, b.shape![b.shape!.length - 1]!] : undefined;
  return { name: g.op('MatMul', [a.name, b.name]), shape };
}

const matMul: OpConverter = (op) => {
  const y = product(op, attrBool(op.node, 'transpose_a', false), attrBool(op.node, 'transpose_b', false));
  return [{ name: op.node.op === '_FusedMatMul' ? applyFusedOps(op, y.name, 2, 'flat') : y.name, dtype: op.input(0).dtype, shape: y.shape }];
};

const batchMatMul: OpConverter = (op) => {
  const y = product(op, attrBool(op.node, 'adj_x', false), attrBool(op.node, 'adj_y', false));
  return [{ name: y.name, dtype: op.input(0).dtype, shape: y.shape }];
};

const einsum: OpConverter = (op) => {
  const equation = attrString(op.node, 'equation');
  if (!equation) throw op.refuse('no equation attribute');
  if (equation.includes('...')) throw op.refuse(`equation ${equation} with an ellipsis is not supported`);
  const name = op.graph.op('Einsum', op.inputs.map((_, i) => op.name(i)), { equation: attr.string(equation) });
  const [, output] = equation.split('->');
  return [{ name, dtype: op.input(0).dtype, shape: output === undefined ? undefined : new Array<null>(output.trim().length).fill(null) }];
};

export const matmulOps: Record<string, OpConverter> = {
  MatMul: matMul,
  _FusedMatMul: matMul,
  BatchMatMul: batchMatMul,
  BatchMatMulV2: batchMatMul,
  BatchMatMulV3: batchMatMul,
  Einsum: einsum,
};
