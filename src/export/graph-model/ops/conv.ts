/**
 * Conv2D, DepthwiseConv2dNative, Conv2DBackpropInput and tfjs's fused forms (_FusedConv2D,
 * FusedDepthwiseConv2dNative: a bias or batch norm, then an activation). TF is NHWC; each conv
 * runs in ONNX's NCHW between two Transposes, with its bias and activation inside them, so that
 * the transposes between consecutive convs cancel (transposes.ts).
 */
import { attr, type Attribute } from '../../graph.ts';
import { attrFloat, attrInts, attrString, attrStrings } from '../attributes.ts';
import { constantValue, materialize, type OpContext, type OpConverter } from '../context.ts';
import { numbers, permuteTensor } from '../fold.ts';
import type { Tensor } from '../format.ts';
import { samePads, windowOutput, type Shape } from '../shapes.ts';

export const TO_NCHW = [0, 3, 1, 2];
export const TO_NHWC = [0, 2, 3, 1];

export function checkNhwc(op: OpContext): void {
  const format = attrString(op.node, 'data_format') ?? 'NHWC';
  if (format !== 'NHWC') throw op.refuse(`attribute data_format ${format} is not supported (only NHWC)`);
}

export interface Window {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  padding: 'SAME' | 'VALID' | { top: number; bottom: number; left: number; right: number };
}

/** Strides, dilations and padding from NHWC attributes (a [1, h, w, 1] list each). */
export function windowOf(op: OpContext, kernel: [number, number]): Window {
  const pair = (key: string): [number, number] => {
    const v = attrInts(op.node, key) ?? [1, 1, 1, 1];
    if (v.length !== 4 || v[0] !== 1 || v[3] !== 1) throw op.refuse(`attribute ${key} [${v}] is not supported (batch and channel entries must be 1)`);
    return [v[1]!, v[2]!];
  };
  const name = attrString(op.node, 'padding') ?? 'VALID';
  let padding: Window['padding'];
  if (name === 'SAME' || name === 'VALID') padding = name;
  else if (name === 'EXPLICIT') {
    const p = attrInts(op.node, 'explicit_paddings') ?? [];
    if (p.length !== 8 || p[0] || p[1] || p[6] || p[7]) throw op.refuse(`explicit_paddings [${p}] is not supported`);
    padding = { top: p[2]!, bottom: p[3]!, left: p[4]!, right: p[5]! };
  } else throw op.refuse(`padding ${name} is not supported`);
  return { kernel, strides: pair('strides'), dilations: pair('dilations'), padding };
}

/** ONNX window attributes for an NCHW op over input of NHWC shape `shape`. */
export function windowAttributes(op: OpContext, w: Window, shape: Shape | undefined): Record<string, Attribute> {
  const common = { kernel_shape: attr.ints(w.kernel), strides: attr.ints(w.strides) };
  if (w.padding === 'VALID') return common;
  if (w.padding !== 'SAME') return { ...common, pads: attr.ints([w.padding.top, w.padding.left, w.padding.bottom, w.padding.right]) };
  const [h, wd] = [shape?.[1], shape?.[2]];
  if (typeof h === 'number' && typeof wd === 'number') {
    const [top, bottom] = samePads(h, w.kernel[0], w.strides[0], w.dilations[0]);
    const [left, right] = samePads(wd, w.kernel[1], w.strides[1], w.dilations[1]);
    return { ...common, pads: attr.ints([top, left, bottom, right]) };
  }
  if (w.dilations.some((d) => d !== 1)) throw op.refuse('SAME padding with dilations on a dynamic spatial size (onnxruntime has no auto-padding for dilated windows)', 'Convert the model with a fixed input size.');
  return { ...common, auto_pad: attr.string('SAME_UPPER') };
}

export function windowShape(shape: Shape | undefined, w: Window, channels: number | null): Shape | undefined {
  if (!shape) return undefined;
  const pad = (axis: 0 | 1): 'SAME' | 'VALID' | [number, number] =>
    typeof w.padding === 'string' ? w.padding : axis === 0 ? [w.padding.top, w.padding.bottom] : [w.padding.left, w.padding.right];
  return [shape[0]!, windowOutput(shape[1]!, w.kernel[0], w.strides[0], w.dilations[0], pad(0)), windowOutput(shape[2]!, w.kernel[1], w.strides[1], w.dilations[1], pad(1)), channels];
}

/** A filter in ONNX's layout: permuted at export time when constant, by a Transpose node if not. */
function filter(op: OpContext, index: number, perm: number[], reshape?: (t: Tensor) => Tensor): string {
  const c = op.constant(index);
  if (c) {
    const permuted = permuteTensor(c, perm);
    return materialize(op.graph, constantValue(reshape ? reshape(permuted) : permuted));
  }
  if (reshape) throw op.refuse('a depthwise filter computed at run time is not supported');
  return op.graph.transpose(op.name(index), perm);
}

/** A per-channel vector broadcast over NCHW ([C] -> [C, 1, 1]). */
function channelVector(op: OpContext, index: number): string {
  const c = op.constant(index);
  if (c) return materialize(op.graph, constantValue({ ...c, dims: [c.data.length, 1, 1] }));
  return op.graph.op('Reshape', [op.name(index), op.graph.int64('shape', [-1, 1, 1])]);
}

/** The `fused_ops` chain of a tfjs fused op, applied to the NCHW result `y`; args start at input `first`. */
export function applyFusedOps(op: OpContext, y: string, first: number, layout: 'nchw' | 'flat'): string {
  const g = op.graph;
  const fused = attrStrings(op.node, 'fused_ops');
  const vector = (i: number) => (layout === 'nchw' ? channelVector(op, i) : op.name(i));
  let arg = first;
  let out = y;
  for (const name of fused) {
    switch (name) {
      case 'BiasAdd': out = g.op('Add', [out, vector(arg++)]); break;
      case 'FusedBatchNorm': {
        const [scale, offset, mean, variance] = [vector(arg), vector(arg + 1), vector(arg + 2), vector(arg + 3)];
        arg += 4;
        const std = g.op('Sqrt', [g.op('Add', [variance, g.scalarFloat('epsilon', attrFloat(op.node, 'epsilon', 1e-3))])]);
        out = g.op('Add', [g.op('Mul', [g.op('Sub', [out, mean]), g.op('Div', [scale, std])]), offset]);
        break;
      }
      case 'Relu': out = g.op('Relu', [out]); break;
      case 'Relu6': out = g.op('Clip', [out, g.scalarFloat('zero', 0), g.scalarFloat('six', 6)]); break;
      case 'Elu': out = g.op('Elu', [out], { alpha: attr.float(1) }); break;
      case 'Sigmoid': out = g.op('Sigmoid', [out]); break;
      case 'Tanh': out = g.op('Tanh', [out]); break;
      case 'LeakyRelu': out = g.op('LeakyRelu', [out], { alpha: attr.float(attrFloat(op.node, 'leakyrelu_alpha', 0.2)) }); break;
      case 'Prelu': out = g.op('PRelu', [out, vector(arg++)]); break;
      default: throw op.refuse(`fused op ${name} is not supported`, 'Supported fused_ops: BiasAdd, FusedBatchNorm, Relu, Relu6, Elu, Sigmoid, Tanh, LeakyRelu, Prelu.');
    }
  }
  return out;
}

function conv(depthwise: boolean): OpConverter {
  return (op) => {
    checkNhwc(op);
    op.expectRank(0, 4, 'an NHWC image batch');
    op.expectRank(1, 4, 'a filter [height, width, in, out]');
    const x = op.input(0);
    const filterShape = op.input(1).shape;
    if (!filterShape || filterShape.some((d) => d === null)) throw op.refuse('the filter shape is not known at export time');
    const [kh, kw, cin, cout] = filterShape as number[];
    const w = windowOf(op, [kh!, kw!]);
    const g = op.graph;
    const weights = depthwise
      ? filter(op, 1, [2, 3, 0, 1], (t) => ({ ...t, dims: [cin! * cout!, 1, kh!, kw!] }))
      : filter(op, 1, [3, 2, 0, 1]);
    const channels = depthwise ? cin! * cout! : cout!;
    const attributes = { ...windowAttributes(op, w, x.shape), dilations: attr.ints(w.dilations), ...(depthwise ? { group: attr.int(cin!) } : {}) };
    const y = g.op('Conv', [g.transpose(op.name(0), TO_NCHW), weights], attributes);
    const fused = applyFusedOps(op, y, 2, 'nchw');
    return [{ name: g.transpose(fused, TO_NHWC), dtype: x.dtype, shape: windowShape(x.shape, w, channels) }];
  };
}

/** Conv2DBackpropInput(input_sizes, filter, out_backprop): a ConvTranspose with TF's output size. */
const convTranspose: OpConverter = (op) => {
  checkNhwc(op);
  const g = op.graph;
  op.expectRank(1, 4, 'a filter [height, width, out, in]');
  op.expectRank(2, 4, 'an NHWC image batch');
  const x = op.input(2);
  const filterShape = op.input(1).shape as number[] | undefined;
  if (!filterShape || filterShape.some((d) => d === null)) throw op.refuse('the filter shape is not known at export time');
  const [kh, kw, cout] = filterShape as [number, number, number, number];
  const w = windowOf(op, [kh, kw]);
  const sizes = op.constant(0) ? numbers(op.constant(0)!) : undefined;
  const outH = sizes?.[1] ?? null;
  const outW = sizes?.[2] ?? null;
  const [inH, inW] = [x.shape?.[1] ?? null, x.shape?.[2] ?? null];
  if (outH === null || outW === null || inH === null || inW === null) throw op.refuse('a transposed convolution needs static spatial sizes (input_sizes constant, input of known height and width)');
  // Pads of the forward convolution this op is the gradient of; output_padding makes up the rest.
  const padsFor = (axis: 0 | 1, size: number, input: number): [number, number, number] => {
    const [k, s, d] = [w.kernel[axis], w.strides[axis], w.dilations[axis]];
    const [begin, end] = w.padding === 'SAME' ? samePads(size, k, s, d)
      : w.padding === 'VALID' ? [0, 0]
      : axis === 0 ? [w.padding.top, w.padding.bottom] : [w.padding.left, w.padding.right];
    return [begin, end, size - ((input - 1) * s + (k - 1) * d + 1 - begin - end)];
  };
  const [top, bottom, extraH] = padsFor(0, outH, inH);
  const [left, right, extraW] = padsFor(1, outW, inW);
  const y = g.op('ConvTranspose', [g.transpose(op.name(2), TO_NCHW), filter(op, 1, [3, 2, 0, 1])], {
    kernel_shape: attr.ints([kh, kw]),
    strides: attr.ints(w.strides),
    dilations: attr.ints(w.dilations),
    pads: attr.ints([top, left, bottom, right]),
    output_padding: attr.ints([extraH, extraW]),
  });
  return [{ name: g.transpose(y, TO_NHWC), dtype: x.dtype, shape: [x.shape?.[0] ?? null, outH, outW, cout] }];
};

export const convOps: Record<string, OpConverter> = {
  Conv2D: conv(false),
  _FusedConv2D: conv(false),
  DepthwiseConv2dNative: conv(true),
  FusedDepthwiseConv2dNative: conv(true),
  Conv2DBackpropInput: convTranspose,
};
