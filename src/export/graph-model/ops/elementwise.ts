/** Unary and binary elementwise ops, comparisons and logic, Select, AddN, BiasAdd. */
import { attr } from '../../graph.ts';
import { attrFloat, attrString } from '../attributes.ts';
import { constantValue, type OpContext, type OpConverter, type Value } from '../context.ts';
import { foldElementwise } from '../fold.ts';
import { broadcast } from '../shapes.ts';

const same = (op: OpContext, name: string): Value => ({ name, dtype: op.input(0).dtype, shape: op.input(0).shape });

function unary(onnx: string, attributes: Record<string, ReturnType<typeof attr.float>> = {}): OpConverter {
  return (op) => [same(op, op.graph.op(onnx, [op.name(0)], attributes))];
}

const scalarLike = (op: OpContext, value: number) =>
  op.input(0).dtype === 'float32' ? op.graph.scalarFloat('c', value) : op.graph.addInitializer('c', op.input(0).dtype, [], op.input(0).dtype === 'int64' ? BigInt64Array.of(BigInt(value)) : Int32Array.of(value));

/** A binary op with NumPy broadcasting; folded at export time where both inputs are constants. */
function binary(onnx: string, fold?: (a: number, b: number) => number, resultDtype?: 'bool'): OpConverter {
  return (op) => {
    const dtype = resultDtype ?? op.input(0).dtype;
    const folded = fold && foldElementwise([op.constant(0), op.constant(1)], dtype, fold);
    if (folded) return [constantValue(folded)];
    return [{ name: op.graph.op(onnx, [op.name(0), op.name(1)]), dtype, shape: broadcast(op.input(0).shape, op.input(1).shape) }];
  };
}

const isFloat = (v: Value) => v.dtype === 'float32' || v.dtype === 'float16';

const floorDiv: OpConverter = (op) => {
  const folded = foldElementwise([op.constant(0), op.constant(1)], op.input(0).dtype, (a, b) => Math.floor(a / b));
  if (folded) return [constantValue(folded)];
  const g = op.graph;
  const shape = broadcast(op.input(0).shape, op.input(1).shape);
  if (isFloat(op.input(0))) return [{ name: g.op('Floor', [g.op('Div', [op.name(0), op.name(1)])]), dtype: op.input(0).dtype, shape }];
  const asFloat = (i: number) => g.op('Cast', [op.name(i)], { to: attr.int(1) });
  const floored = g.op('Floor', [g.op('Div', [asFloat(0), asFloat(1)])]);
  return [{ name: g.op('Cast', [floored], { to: attr.int(op.input(0).dtype === 'int64' ? 7 : 6) }), dtype: op.input(0).dtype, shape }];
};

const floorMod: OpConverter = (op) => {
  const folded = foldElementwise([op.constant(0), op.constant(1)], op.input(0).dtype, (a, b) => a - Math.floor(a / b) * b);
  if (folded) return [constantValue(folded)];
  const g = op.graph;
  const shape = broadcast(op.input(0).shape, op.input(1).shape);
  if (!isFloat(op.input(0))) return [{ name: g.op('Mod', [op.name(0), op.name(1)], { fmod: attr.int(0) }), dtype: op.input(0).dtype, shape }];
  const [x, y] = [op.name(0), op.name(1)];
  return [{ name: g.op('Sub', [x, g.op('Mul', [g.op('Floor', [g.op('Div', [x, y])]), y])]), dtype: op.input(0).dtype, shape }];
};

const relu6: OpConverter = (op) => [same(op, op.graph.op('Clip', [op.name(0), scalarLike(op, 0), scalarLike(op, 6)]))];
const rsqrt: OpConverter = (op) => [same(op, op.graph.op('Reciprocal', [op.graph.op('Sqrt', [op.name(0)])]))];
const square: OpConverter = (op) => [same(op, op.graph.op('Mul', [op.name(0), op.name(0)]))];
const leakyRelu: OpConverter = (op) => [same(op, op.graph.op('LeakyRelu', [op.name(0)], { alpha: attr.float(attrFloat(op.node, 'alpha', 0.2)) }))];
const prelu: OpConverter = (op) => [same(op, op.graph.op('PRelu', [op.name(0), op.name(1)]))];

const squaredDifference: OpConverter = (op) => {
  const diff = op.graph.op('Sub', [op.name(0), op.name(1)]);
  return [{ name: op.graph.op('Mul', [diff, diff]), dtype: op.input(0).dtype, shape: broadcast(op.input(0).shape, op.input(1).shape) }];
};

const biasAdd: OpConverter = (op) => {
  const format = attrString(op.node, 'data_format') ?? 'NHWC';
  if (format !== 'NHWC') throw op.refuse(`attribute data_format ${format} is not supported (only NHWC)`);
  return [same(op, op.graph.op('Add', [op.name(0), op.name(1)]))];
};

const addN: OpConverter = (op) => {
  if (op.inputs.length === 1) return [op.input(0)];
  return [{ name: op.graph.op('Sum', op.inputs.map((_, i) => op.name(i))), dtype: op.input(0).dtype, shape: broadcast(...op.inputs.map((v) => v.shape)) }];
};

/** TF1 Select with a vector condition picks whole rows; SelectV2 broadcasts like Where. */
const select: OpConverter = (op) => {
  const g = op.graph;
  const [cond, x] = [op.input(0), op.input(1)];
  let condition = op.name(0);
  if (op.node.op === 'Select' && cond.shape?.length === 1 && (x.shape?.length ?? 1) > 1) {
    condition = g.unsqueeze(condition, Array.from({ length: x.shape!.length - 1 }, (_, i) => i + 1));
  }
  return [{ name: g.op('Where', [condition, op.name(1), op.name(2)]), dtype: x.dtype, shape: broadcast(cond.shape, x.shape, op.input(2).shape) }];
};

/** atan2(y, x) from Atan(y / x), shifted by ±pi where x < 0 (ONNX has no Atan2). */
const atan2: OpConverter = (op) => {
  const g = op.graph;
  const [y, x] = [op.name(0), op.name(1)];
  const zero = g.scalarFloat('zero', 0);
  const pi = g.op('Where', [g.op('GreaterOrEqual', [y, zero]), g.scalarFloat('pi', Math.PI), g.scalarFloat('minus_pi', -Math.PI)]);
  const shift = g.op('Where', [g.op('Less', [x, zero]), pi, zero]);
  const angle = g.op('Add', [g.op('Atan', [g.op('Div', [y, x])]), shift]);
  const origin = g.op('And', [g.op('Equal', [x, zero]), g.op('Equal', [y, zero])]);
  return [{ name: g.op('Where', [origin, zero, angle]), dtype: op.input(0).dtype, shape: broadcast(op.input(0).shape, op.input(1).shape) }];
};

const notEqual: OpConverter = (op) => [{ name: op.graph.op('Not', [op.graph.op('Equal', [op.name(0), op.name(1)])]), dtype: 'bool', shape: broadcast(op.input(0).shape, op.input(1).shape) }];

export const elementwiseOps: Record<string, OpConverter> = {
  Relu: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Elu: unary('Elu', { alpha: attr.float(1) }),
  Selu: unary('Selu'),
  Softplus: unary('Softplus'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Reciprocal: unary('Reciprocal'),
  Inv: unary('Reciprocal'),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Floor: unary('Floor'),
  Ceil: unary('Ceil'),
  Round: unary('Round'),
  Sign: unary('Sign'),
  Sin: unary('Sin'),
  Cos: unary('Cos'),
  Erf: unary('Erf'),
  LogicalNot: unary('Not'),
  Relu6: relu6,
  Rsqrt: rsqrt,
  Square: square,
  LeakyRelu: leakyRelu,
  Prelu: prelu,
  AddV2: binary('Add', (a, b) => a + b),
  Add: binary('Add', (a, b) => a + b),
  Sub: binary('Sub', (a, b) => a - b),
  Mul: binary('Mul', (a, b) => a * b),
  RealDiv: binary('Div', (a, b) => a / b),
  Div: binary('Div'),
  Maximum: binary('Max', Math.max),
  Minimum: binary('Min', Math.min),
  Pow: binary('Pow', (a, b) => a ** b),
  FloorDiv: floorDiv,
  FloorMod: floorMod,
  SquaredDifference: squaredDifference,
  Atan2: atan2,
  NotEqual: notEqual,
  Equal: binary('Equal', (a, b) => Number(a === b), 'bool'),
  Less: binary('Less', (a, b) => Number(a < b), 'bool'),
  LessEqual: binary('LessOrEqual', (a, b) => Number(a <= b), 'bool'),
  Greater: binary('Greater', (a, b) => Number(a > b), 'bool'),
  GreaterEqual: binary('GreaterOrEqual', (a, b) => Number(a >= b), 'bool'),
  LogicalAnd: binary('And', (a, b) => Number(a && b), 'bool'),
  LogicalOr: binary('Or', (a, b) => Number(a || b), 'bool'),
  BiasAdd: biasAdd,
  AddN: addN,
  Select: select,
  SelectV2: select,
};
