/** Converters for the stateless tfjs layers: dense, activations, shape ops, merges, norms. */
import { attr } from '../graph.ts';
import { activationName, applyActivation, optionalWeight, SUPPORTED_ACTIVATIONS, unsupportedOption, weight } from './support.ts';
import type { ConvertContext, Converter, LayerCall } from './types.ts';

const float = (name: string) => ({ name, dtype: 'float32' as const });

function activate(call: LayerCall, ctx: ConvertContext, x: string, key = 'activation'): string {
  const name = activationName(call, key);
  const y = applyActivation(ctx.graph, name, x);
  if (y === undefined) throw unsupportedOption(call, `${key} '${name}'`, `Supported activations: ${SUPPORTED_ACTIVATIONS.join(', ')}.`);
  return y;
}

/** x @ kernel + bias, then the activation; MatMul broadcasts over any leading axes. */
export function denseOnto(call: LayerCall, ctx: ConvertContext, x: string): string {
  const g = ctx.graph;
  const kernel = weight(call, 'kernel');
  let y = g.op('MatMul', [x, g.float('kernel', kernel.shape, kernel.data)]);
  const bias = call.config.useBias === false ? undefined : optionalWeight(call, 'bias');
  if (bias) y = g.op('Add', [y, g.float('bias', bias.shape, bias.data)]);
  return activate(call, ctx, y);
}

const dense: Converter = (call, [x], ctx) => [float(denseOnto(call, ctx, x!.name))];

const activation: Converter = (call, [x], ctx) => [float(activate(call, ctx, x!.name))];

const identity: Converter = (_call, [x]) => [{ name: x!.name, dtype: x!.dtype }];

const flatten: Converter = (call, [x], ctx) => {
  if (call.config.dataFormat === 'channelsFirst') throw unsupportedOption(call, "dataFormat 'channelsFirst'");
  return [float(ctx.graph.op('Flatten', [x!.name], { axis: attr.int(1) }))];
};

const reshape: Converter = (call, [x], ctx) => {
  const target = (call.config.targetShape as (number | null)[]).map((d) => d ?? -1);
  return [{ name: ctx.graph.reshape(x!.name, [0, ...target]), dtype: x!.dtype }];
};

const permute: Converter = (call, [x], ctx) => {
  const dims = call.config.dims as number[];
  return [{ name: ctx.graph.transpose(x!.name, [0, ...dims]), dtype: x!.dtype }];
};

const repeatVector: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const n = call.config.n as number;
  return [{ name: g.op('Tile', [g.unsqueeze(x!.name, [1]), g.int64('repeats', [1, n, 1])]), dtype: x!.dtype }];
};

function variadic(opType: string): Converter {
  return (_call, inputs, ctx) => {
    const names = inputs.map((t) => t.name);
    const g = ctx.graph;
    if (opType === 'Mul') return [float(names.slice(1).reduce((a, b) => g.op('Mul', [a, b]), names[0]!))];
    return [float(g.op(opType, names))];
  };
}

const concatenate: Converter = (call, inputs, ctx) => [
  float(ctx.graph.op('Concat', inputs.map((t) => t.name), { axis: attr.int((call.config.axis as number | undefined) ?? -1) })),
];

function normAxis(call: LayerCall, rank: number): void {
  const axis = call.config.axis;
  const axes = Array.isArray(axis) ? axis : [axis ?? -1];
  if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank - 1)) throw unsupportedOption(call, `axis ${JSON.stringify(axis)} (only the last axis)`);
}

const layerNormalization: Converter = (call, [x], ctx) => {
  normAxis(call, x!.shape.length);
  const g = ctx.graph;
  const d = x!.shape[x!.shape.length - 1]!;
  const gamma = call.config.scale === false ? new Float32Array(d).fill(1) : weight(call, 'gamma').data;
  const beta = call.config.center === false ? new Float32Array(d) : weight(call, 'beta').data;
  return [float(layerNorm(ctx, x!.name, gamma, beta, (call.config.epsilon as number | undefined) ?? 1e-3))];
};

export function layerNorm(ctx: ConvertContext, x: string, gamma: Float32Array, beta: Float32Array, epsilon: number): string {
  const g = ctx.graph;
  const d = gamma.length;
  return g.op('LayerNormalization', [x, g.float('gamma', [d], gamma), g.float('beta', [d], beta)], {
    axis: attr.int(-1),
    epsilon: attr.float(epsilon),
  });
}

/** Inference batch norm on the last axis folded into one scale and one shift. */
const batchNormalization: Converter = (call, [x], ctx) => {
  normAxis(call, x!.shape.length);
  const g = ctx.graph;
  const mean = weight(call, 'moving_mean').data;
  const variance = weight(call, 'moving_variance').data;
  const d = mean.length;
  const gamma = call.config.scale === false ? new Float32Array(d).fill(1) : weight(call, 'gamma').data;
  const beta = call.config.center === false ? new Float32Array(d) : weight(call, 'beta').data;
  const epsilon = (call.config.epsilon as number | undefined) ?? 1e-3;
  const scale = new Float32Array(d);
  const shift = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    scale[i] = gamma[i]! / Math.sqrt(variance[i]! + epsilon);
    shift[i] = beta[i]! - mean[i]! * scale[i]!;
  }
  return [float(g.op('Add', [g.op('Mul', [x!.name, g.float('scale', [d], scale)]), g.float('shift', [d], shift)]))];
};

const reluLayer: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const maxValue = call.config.maxValue as number | null | undefined;
  if (maxValue === null || maxValue === undefined) return [float(g.op('Relu', [x!.name]))];
  return [float(g.op('Clip', [x!.name, g.scalarFloat('zero', 0), g.scalarFloat('max', maxValue)]))];
};

const leakyRelu: Converter = (call, [x], ctx) => [
  float(ctx.graph.op('LeakyRelu', [x!.name], { alpha: attr.float((call.config.alpha as number | undefined) ?? 0.3) })),
];

const eluLayer: Converter = (call, [x], ctx) => [
  float(ctx.graph.op('Elu', [x!.name], { alpha: attr.float((call.config.alpha as number | undefined) ?? 1) })),
];

/** alpha has the input's shape without the batch axis (1 along sharedAxes): ONNX PRelu broadcasts it the same way. */
const preluLayer: Converter = (call, [x], ctx) => {
  const alpha = weight(call, 'alpha');
  return [float(ctx.graph.op('PRelu', [x!.name, ctx.graph.float('alpha', alpha.shape, alpha.data)]))];
};

const thresholdedRelu: Converter = (call, [x], ctx) => [
  float(ctx.graph.op('ThresholdedRelu', [x!.name], { alpha: attr.float((call.config.theta as number | undefined) ?? 1) })),
];

const softmaxLayer: Converter = (call, [x], ctx) => {
  const axis = call.config.axis;
  const a = Array.isArray(axis) ? axis : [axis ?? -1];
  if (a.length !== 1) throw unsupportedOption(call, `axis ${JSON.stringify(axis)}`);
  return [float(ctx.graph.op('Softmax', [x!.name], { axis: attr.int(a[0] as number) }))];
};

/** TimeDistributed(Dense) is Dense on the 3-D input: MatMul already maps over the time axis. */
const timeDistributed: Converter = (call, inputs, ctx) => {
  const inner = call.config.layer as { className?: string; class_name?: string; config: Record<string, unknown> };
  const className = inner.className ?? inner.class_name;
  const innerCall: LayerCall = { ...call, className: className ?? '?', config: inner.config };
  if (className === 'Dense') return dense(innerCall, inputs, ctx);
  if (className === 'Dropout' || className === 'Activation') return (className === 'Dropout' ? identity : activation)(innerCall, inputs, ctx);
  throw unsupportedOption(call, `wrapping ${className}`, 'TimeDistributed converts around Dense, Dropout and Activation.');
};

export const coreConverters: Record<string, Converter> = {
  Dense: dense,
  Activation: activation,
  Dropout: identity,
  SpatialDropout1D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  InputLayer: identity,
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  RepeatVector: repeatVector,
  Add: variadic('Sum'),
  Multiply: variadic('Mul'),
  Average: variadic('Mean'),
  Maximum: variadic('Max'),
  Minimum: variadic('Min'),
  Concatenate: concatenate,
  LayerNormalization: layerNormalization,
  BatchNormalization: batchNormalization,
  ReLU: reluLayer,
  LeakyReLU: leakyRelu,
  PReLU: preluLayer,
  ELU: eluLayer,
  ThresholdedReLU: thresholdedRelu,
  Softmax: softmaxLayer,
  TimeDistributed: timeDistributed,
};

