/**
 * What one op converter sees: the TF node, its inputs as Values (an ONNX tensor, its dtype, the
 * static shape where known, the value where it is a constant), and the Graph being built.
 */
import { FerryError } from '../../errors.ts';
import { attr, type DType, type Graph } from '../graph.ts';
import type { Tensor, TfNode } from './format.ts';

export interface Value {
  /** The ONNX tensor name; empty for a constant not yet written as an initializer. */
  name: string;
  dtype: DType;
  /** Static shape (null for a dynamic dim); undefined when even the rank is unknown. */
  shape?: (number | null)[];
  /** The value, when known at export time (Const nodes and what folds from them). */
  constant?: Tensor;
}

export type OpConverter = (op: OpContext) => Value[];

export class OpContext {
  constructor(readonly graph: Graph, readonly node: TfNode, readonly inputs: Value[]) {}

  /** A refusal naming the node and its op. */
  refuse(why: string, hint?: string): FerryError {
    return new FerryError('export_unsupported_op', `node ${this.node.name} (${this.node.op}): ${why}`, {
      hint: hint ?? 'ferry cannot convert this node yet: open an issue with the model.json, or export the model from TensorFlow without it.',
      status: 422,
    });
  }

  /** A refusal of a node no TF graph could hold (a damaged file), naming it and what is wrong. */
  damaged(why: string): FerryError {
    return new FerryError('export_bad_graph', `node ${this.node.name} (${this.node.op}): ${why}`, {
      hint: 'model.json looks damaged: convert the model again with tensorflowjs_converter, or copy it again.',
      status: 422,
    });
  }

  /** Refuses input `i` when its rank is known and is not `rank` (`what` says what it holds). */
  expectRank(i: number, rank: number, what: string): void {
    const shape = this.input(i).shape;
    if (shape && shape.length !== rank) throw this.damaged(`input ${i} has the shape [${shape.map((d) => d ?? '?')}]; ${what} is rank ${rank}`);
  }

  input(i: number): Value {
    const value = this.inputs[i];
    if (!value) throw this.refuse(`expects at least ${i + 1} inputs, has ${this.inputs.length}`);
    return value;
  }

  /** The ONNX name of input `i`, writing a constant as an initializer the first time it is used. */
  name(i: number): string {
    return materialize(this.graph, this.input(i));
  }

  constant(i: number): Tensor | undefined {
    return this.input(i).constant;
  }

  /** The values of a constant input (axes, shapes, paddings) as plain numbers. */
  constantNumbers(i: number, what: string): number[] {
    const c = this.constant(i);
    if (!c) throw this.refuse(`its ${what} (input ${i}) is computed at run time; ferry needs it constant`);
    return Array.from(c.data as ArrayLike<number | bigint>, Number);
  }

  /** The rank of input `i`, refusing when it is not known. */
  rank(i: number): number {
    const shape = this.input(i).shape;
    if (!shape) throw this.refuse(`the rank of input ${i} is not known at export time`);
    return shape.length;
  }
}

export function materialize(graph: Graph, value: Value): string {
  if (!value.name) {
    const c = value.constant!;
    value.name = graph.addInitializer('const', c.dtype, c.dims, c.data);
  }
  return value.name;
}

/** A constant Value (not written until an op needs it at run time). */
export function constantValue(tensor: Tensor): Value {
  return { name: '', dtype: tensor.dtype, shape: [...tensor.dims], constant: tensor };
}

export function castTo(graph: Graph, x: string, dtype: DType): string {
  return graph.op('Cast', [x], { to: attr.dtype(dtype) });
}

/** Input `i` as int64 (ONNX's shape, axes and index type), converted at export time when constant. */
export function int64Input(op: OpContext, i: number): string {
  const value = op.input(i);
  if (value.dtype === 'int64') return op.name(i);
  if (value.constant) return materialize(op.graph, constantValue(int64Tensor(Array.from(value.constant.data as ArrayLike<number>, Number), value.constant.dims)));
  return castTo(op.graph, op.name(i), 'int64');
}

export const int64Tensor = (values: number[], dims: number[] = [values.length]): Tensor => ({ dtype: 'int64', dims, data: BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v)))) });
