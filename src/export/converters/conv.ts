/** Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D and Conv2DTranspose as ONNX Conv / ConvTranspose in channels-first. */
import { attr, type Attribute } from '../graph.ts';
import { kernelToChannelsFirst, paddingAttributes, perAxis, requireChannelsLast, toChannelsFirst, toChannelsLast } from './spatial.ts';
import { activationName, applyActivation, optionalWeight, SUPPORTED_ACTIVATIONS, unsupportedOption, weight } from './support.ts';
import type { ConvertContext, Converter, LayerCall } from './types.ts';

interface Geometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
}

function geometry(call: LayerCall, rank: number, kernelKey = 'kernel'): Geometry {
  requireChannelsLast(call);
  const shape = weight(call, kernelKey).shape;
  return {
    kernel: shape.slice(0, rank),
    strides: perAxis(call.config.strides, rank, 1),
    dilations: perAxis(call.config.dilationRate, rank, 1),
  };
}

function convAttributes(call: LayerCall, { kernel, strides, dilations }: Geometry) {
  return {
    kernel_shape: attr.ints(kernel),
    strides: attr.ints(strides),
    dilations: attr.ints(dilations),
    ...paddingAttributes(call, kernel, strides, dilations),
  };
}

function biasInput(call: LayerCall, ctx: ConvertContext): string[] {
  const bias = call.config.useBias === false ? undefined : optionalWeight(call, 'bias');
  return bias ? [ctx.graph.float('bias', bias.shape, bias.data)] : [];
}

/** Back to channels-last, then the layer's activation. */
function finish(call: LayerCall, ctx: ConvertContext, y: string, rank: number) {
  const name = activationName(call);
  const activated = applyActivation(ctx.graph, name, toChannelsLast(ctx.graph, y, rank));
  if (activated === undefined) throw unsupportedOption(call, `activation '${name}'`, `Supported activations: ${SUPPORTED_ACTIVATIONS.join(', ')}.`);
  return [{ name: activated, dtype: 'float32' as const }];
}

function convolution(rank: number): Converter {
  return (call, [x], ctx) => {
    const g = ctx.graph;
    const kernel = weight(call, 'kernel');
    const shape = geometry(call, rank);
    const [input, filters] = kernel.shape.slice(rank) as [number, number];
    const groups = (call.config.groups as number | undefined) ?? 1;
    const w = g.float('kernel', [filters, input, ...shape.kernel], kernelToChannelsFirst(kernel.data, kernel.shape));
    const group: Record<string, Attribute> = groups === 1 ? {} : { group: attr.int(groups) };
    const y = g.op('Conv', [toChannelsFirst(g, x!.name, rank), w, ...biasInput(call, ctx)], { ...convAttributes(call, shape), ...group });
    return finish(call, ctx, y, rank);
  };
}

/** tfjs [kh, kw, in, m] -> ONNX [in * m, 1, kh, kw] for a Conv with one group per input channel (output channel i * m + j). */
function depthwiseKernel(g: ConvertContext['graph'], data: Float32Array, shape: number[]): { name: string; channels: number } {
  const [kh, kw, input, multiplier] = shape as [number, number, number, number];
  const w = new Float32Array(data.length);
  for (let s = 0; s < kh * kw; s++) {
    for (let i = 0; i < input; i++) for (let m = 0; m < multiplier; m++) w[(i * multiplier + m) * kh * kw + s] = data[(s * input + i) * multiplier + m]!;
  }
  return { name: g.float('depthwise_kernel', [input * multiplier, 1, kh, kw], w), channels: input };
}

const depthwiseConv2d: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const kernel = weight(call, 'depthwise_kernel');
  const shape = geometry(call, 2, 'depthwise_kernel');
  const { name, channels } = depthwiseKernel(g, kernel.data, kernel.shape);
  const y = g.op('Conv', [toChannelsFirst(g, x!.name, 2), name, ...biasInput(call, ctx)], { ...convAttributes(call, shape), group: attr.int(channels) });
  return finish(call, ctx, y, 2);
};

/** The depthwise Conv (no bias), then a 1x1 Conv over its channels with the bias. */
const separableConv2d: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const depthwise = weight(call, 'depthwise_kernel');
  const pointwise = weight(call, 'pointwise_kernel');
  const shape = geometry(call, 2, 'depthwise_kernel');
  const { name, channels } = depthwiseKernel(g, depthwise.data, depthwise.shape);
  const spread = g.op('Conv', [toChannelsFirst(g, x!.name, 2), name], { ...convAttributes(call, shape), group: attr.int(channels) });
  const [, , inner, filters] = pointwise.shape as [number, number, number, number];
  const w = g.float('pointwise_kernel', [filters, inner, 1, 1], kernelToChannelsFirst(pointwise.data, pointwise.shape));
  const y = g.op('Conv', [spread, w, ...biasInput(call, ctx)], { kernel_shape: attr.ints([1, 1]) });
  return finish(call, ctx, y, 2);
};

/**
 * tfjs's transposed convolution gives (in - 1) * s + k ('valid') or in * s ('same', pads of
 * max(k - s, 0) split as in a forward 'same', output_padding when k < s).
 */
const conv2dTranspose: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const kernel = weight(call, 'kernel');
  const { kernel: k, strides, dilations } = geometry(call, 2);
  if (dilations.some((d) => d !== 1)) throw unsupportedOption(call, 'dilationRate other than 1');
  const [filters, input] = kernel.shape.slice(2) as [number, number];
  const w = g.float('kernel', [input, filters, ...k], kernelToChannelsFirst(kernel.data, kernel.shape));
  const padding = call.config.padding ?? 'valid';
  if (padding !== 'valid' && padding !== 'same') throw unsupportedOption(call, `padding ${JSON.stringify(padding)}`, "Supported paddings: 'valid', 'same'.");
  const totals = k.map((size, i) => (padding === 'same' ? Math.max(size - strides[i]!, 0) : 0));
  const begins = totals.map((t) => Math.floor(t / 2));
  const outputPadding = k.map((size, i) => (padding === 'same' ? Math.max(strides[i]! - size, 0) : 0));
  const y = g.op('ConvTranspose', [toChannelsFirst(g, x!.name, 2), w, ...biasInput(call, ctx)], {
    kernel_shape: attr.ints(k),
    strides: attr.ints(strides),
    pads: attr.ints([...begins, ...totals.map((t, i) => t - begins[i]!)]),
    ...(outputPadding.some((p) => p > 0) ? { output_padding: attr.ints(outputPadding) } : {}),
  });
  return finish(call, ctx, y, 2);
};

export const convConverters: Record<string, Converter> = {
  Conv1D: convolution(1),
  Conv2D: convolution(2),
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  Conv2DTranspose: conv2dTranspose,
};
