import { FerryError } from '../../errors.ts';
import { attr, type Graph } from '../graph.ts';
import type { LayerCall, LayerWeight } from './types.ts';

/** A layer option the exporter cannot express exactly: refuse rather than emit a different graph. */
export function unsupportedOption(call: LayerCall, option: string, hint?: string): FerryError {
  return new FerryError('export_unsupported_option', `layer ${call.name} (${call.className}): ${option} is not supported by the ONNX exporter`, {
    hint: hint ?? 'Rebuild the model without this option, or open an issue with the model.json.',
    status: 422,
  });
}

export function weight(call: LayerCall, suffix: string): LayerWeight {
  const w = call.weights.find((v) => v.name === suffix || v.name.endsWith(`/${suffix}`));
  if (!w) throw new FerryError('export_missing_weight', `layer ${call.name} (${call.className}) has no weight ${suffix}`, { status: 422 });
  return w;
}

export function optionalWeight(call: LayerCall, suffix: string): LayerWeight | undefined {
  return call.weights.find((v) => v.name === suffix || v.name.endsWith(`/${suffix}`));
}

/** Row-major transpose of a [rows, cols] matrix. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** Applies a tfjs activation (by its serialized name) to `x`. Returns undefined for unknown names. */
export function applyActivation(g: Graph, name: string, x: string): string | undefined {
  switch (name) {
    case 'linear': return x;
    case 'relu': return g.op('Relu', [x]);
    case 'relu6': return g.op('Clip', [x, g.scalarFloat('zero', 0), g.scalarFloat('six', 6)]);
    case 'sigmoid': return g.op('Sigmoid', [x]);
    case 'tanh': return g.op('Tanh', [x]);
    case 'softmax': return g.op('Softmax', [x], { axis: attr.int(-1) });
    case 'logSoftmax': return g.op('LogSoftmax', [x], { axis: attr.int(-1) });
    case 'elu': return g.op('Elu', [x], { alpha: attr.float(1) });
    case 'selu': return g.op('Selu', [x]);
    case 'softplus': return g.op('Softplus', [x]);
    case 'softsign': return g.op('Softsign', [x]);
    case 'hardSigmoid': return g.op('HardSigmoid', [x], { alpha: attr.float(0.2), beta: attr.float(0.5) });
    case 'swish': return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    case 'mish': return g.op('Mul', [x, g.op('Tanh', [g.op('Softplus', [x])])]);
    case 'gelu': return gelu(g, x);
    case 'gelu_new': return geluTanh(g, x);
    default: return undefined;
  }
}

export const SUPPORTED_ACTIVATIONS = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'logSoftmax', 'elu', 'selu', 'softplus', 'softsign', 'hardSigmoid', 'swish', 'mish', 'gelu', 'gelu_new'];

/** Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)): the pattern ORT fuses into its Gelu kernel. */
export function gelu(g: Graph, x: string): string {
  if (g.opset >= 20) return g.op('Gelu', [x]);
  const erf = g.op('Erf', [g.op('Div', [x, g.scalarFloat('sqrt2', Math.SQRT2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.scalarFloat('half', 0.5)]), g.op('Add', [erf, g.scalarFloat('one', 1)])]);
}

function geluTanh(g: Graph, x: string): string {
  if (g.opset >= 20) return g.op('Gelu', [x], { approximate: attr.string('tanh') });
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.scalarFloat('c', 0.044715)])]), g.scalarFloat('k', Math.sqrt(2 / Math.PI))]);
  return g.op('Mul', [g.op('Mul', [x, g.scalarFloat('half', 0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalarFloat('one', 1)])]);
}

export function activationName(call: LayerCall, key = 'activation'): string {
  const value = call.config[key];
  if (value === undefined || value === null) return 'linear';
  if (typeof value === 'string') return value;
  const className = (value as { className?: string; class_name?: string }).className ?? (value as { class_name?: string }).class_name;
  if (typeof className === 'string') return className;
  throw unsupportedOption(call, `${key} ${JSON.stringify(value)}`);
}
