/** Max and average pooling (1-D and 2-D) in channels-first, and the global poolings as reductions over the spatial axes. */
import { attr } from '../graph.ts';
import { paddingAttributes, perAxis, requireChannelsLast, toChannelsFirst, toChannelsLast } from './spatial.ts';
import { unsupportedOption } from './support.ts';
import type { Converter } from './types.ts';

/** tfjs's average 'same' pooling divides by the cells inside the input: ONNX's count_include_pad 0, its default. */
function pooling(opType: 'MaxPool' | 'AveragePool', rank: number): Converter {
  return (call, [x], ctx) => {
    requireChannelsLast(call);
    const g = ctx.graph;
    const kernel = perAxis(call.config.poolSize, rank, 2);
    const strides = call.config.strides === null || call.config.strides === undefined ? kernel : perAxis(call.config.strides, rank, 1);
    const pooled = g.op(opType, [toChannelsFirst(g, x!.name, rank)], {
      kernel_shape: attr.ints(kernel),
      strides: attr.ints(strides),
      ...paddingAttributes(call, kernel, strides, kernel.map(() => 1)),
    });
    return [{ name: toChannelsLast(g, pooled, rank), dtype: 'float32' }];
  };
}

function globalPooling(opType: 'ReduceMean' | 'ReduceMax', rank: number): Converter {
  return (call, [x], ctx) => {
    requireChannelsLast(call);
    if (call.config.keepDims === true) throw unsupportedOption(call, 'keepDims: true');
    return [{ name: ctx.graph.reduce(opType, x!.name, Array.from({ length: rank }, (_, i) => i + 1), false), dtype: 'float32' }];
  };
}

export const poolingConverters: Record<string, Converter> = {
  MaxPooling1D: pooling('MaxPool', 1),
  AveragePooling1D: pooling('AveragePool', 1),
  MaxPooling2D: pooling('MaxPool', 2),
  AveragePooling2D: pooling('AveragePool', 2),
  GlobalAveragePooling1D: globalPooling('ReduceMean', 1),
  GlobalMaxPooling1D: globalPooling('ReduceMax', 1),
  GlobalAveragePooling2D: globalPooling('ReduceMean', 2),
  GlobalMaxPooling2D: globalPooling('ReduceMax', 2),
};
