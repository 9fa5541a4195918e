/**
 * Conv1D and 1-D pooling. tfjs is channels-last ([B, T, C]); ONNX Conv / pooling want [B, C, T],
 * so each op sits between two Transposes (ORT cancels adjacent pairs when layers follow each other).
 */
import { attr } from '../graph.ts';
import { activationName, applyActivation, optionalWeight, SUPPORTED_ACTIVATIONS, unsupportedOption, weight } from './support.ts';
import type { Converter, LayerCall } from './types.ts';

const first = (value: unknown, fallback: number): number => (Array.isArray(value) ? (value[0] as number) : ((value as number | undefined) ?? fallback));

function channelsLast(call: LayerCall): void {
  if (call.config.dataFormat === 'channelsFirst') throw unsupportedOption(call, "dataFormat 'channelsFirst'");
}

function autoPad(call: LayerCall): Record<string, ReturnType<typeof attr.string>> {
  const padding = call.config.padding ?? 'valid';
  if (padding === 'valid') return {};
  if (padding === 'same') return { auto_pad: attr.string('SAME_UPPER') };
  throw unsupportedOption(call, `padding ${JSON.stringify(padding)}`);
}

const conv1d: Converter = (call, [x], ctx) => {
  channelsLast(call);
  const g = ctx.graph;
  const kernel = weight(call, 'kernel');
  const [k, input, filters] = kernel.shape as [number, number, number];
  const stride = first(call.config.strides, 1);
  const dilation = first(call.config.dilationRate, 1);
  // ONNX wants [filters, input, k]; tfjs stores [k, input, filters].
  const w = new Float32Array(kernel.data.length);
  for (let t = 0; t < k; t++) for (let i = 0; i < input; i++) for (let f = 0; f < filters; f++) w[(f * input + i) * k + t] = kernel.data[(t * input + i) * filters + f]!;
  const bias = call.config.useBias === false ? undefined : optionalWeight(call, 'bias');
  const inputs = [g.transpose(x!.name, [0, 2, 1]), g.float('kernel', [filters, input, k], w)];
  if (bias) inputs.push(g.float('bias', [filters], bias.data));
  const y = g.transpose(g.op('Conv', inputs, { kernel_shape: attr.ints([k]), strides: attr.ints([stride]), dilations: attr.ints([dilation]), ...autoPad(call) }), [0, 2, 1]);
  const name = activationName(call);
  const activated = applyActivation(g, name, y);
  if (activated === undefined) throw unsupportedOption(call, `activation '${name}'`, `Supported activations: ${SUPPORTED_ACTIVATIONS.join(', ')}.`);
  return [{ name: activated, dtype: 'float32' }];
};

function pooling1d(opType: 'MaxPool' | 'AveragePool'): Converter {
  return (call, [x], ctx) => {
    channelsLast(call);
    const g = ctx.graph;
    const size = first(call.config.poolSize, 2);
    const stride = first(call.config.strides, size);
    const pooled = g.op(opType, [g.transpose(x!.name, [0, 2, 1])], { kernel_shape: attr.ints([size]), strides: attr.ints([stride]), ...autoPad(call) });
    return [{ name: g.transpose(pooled, [0, 2, 1]), dtype: 'float32' }];
  };
}

export const convConverters: Record<string, Converter> = {
  Conv1D: conv1d,
  MaxPooling1D: pooling1d('MaxPool'),
  AveragePooling1D: pooling1d('AveragePool'),
};
