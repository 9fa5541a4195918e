/**
 * What the convolution, pooling and resize converters share. tfjs is channels-last (NHWC, [B, T, C]);
 * ONNX's Conv, pooling and Resize want channels-first, so each such op sits between two Transposes
 * (the model's interface stays channels-last) and `cancelTransposes` removes the pairs that meet.
 */
import { attr, type Attribute, type Graph } from '../graph.ts';
import { unsupportedOption } from './support.ts';
import type { LayerCall } from './types.ts';

/** A config value that is one number or one per spatial axis, as a list of `rank` numbers. */
export function perAxis(value: unknown, rank: number, fallback: number): number[] {
  if (Array.isArray(value)) {
    if (value.length === rank) return value as number[];
    if (value.length === 1) return new Array<number>(rank).fill(value[0] as number);
  }
  return new Array<number>(rank).fill(typeof value === 'number' ? value : fallback);
}

export function requireChannelsLast(call: LayerCall): void {
  if (call.config.dataFormat === 'channelsFirst') throw unsupportedOption(call, "dataFormat 'channelsFirst'");
}

/** [B, S..., C] -> [B, C, S...] for `rank` spatial axes. */
export function toChannelsFirst(g: Graph, x: string, rank: number): string {
  return g.transpose(x, [0, rank + 1, ...Array.from({ length: rank }, (_, i) => i + 1)]);
}

/** [B, C, S...] -> [B, S..., C]. */
export function toChannelsLast(g: Graph, x: string, rank: number): string {
  return g.transpose(x, [0, ...Array.from({ length: rank }, (_, i) => i + 2), 1]);
}

/**
 * The padding attributes of a Conv or pool. tfjs's 'same' puts the odd pad at the end
 * (SAME_UPPER). With stride 1 the pads are fixed, ((k - 1) * d) per axis, and are written out:
 * onnxruntime refuses SAME_UPPER with dilation. With a stride they depend on the input size, so
 * SAME_UPPER stays (tfjs allows no dilation with a stride).
 */
export function paddingAttributes(call: LayerCall, kernel: number[], strides: number[], dilations: number[]): Record<string, Attribute> {
  const padding = call.config.padding ?? 'valid';
  if (padding === 'valid') return {};
  if (padding !== 'same') throw unsupportedOption(call, `padding ${JSON.stringify(padding)}`, "Supported paddings: 'valid', 'same'.");
  if (strides.some((s) => s !== 1)) {
    if (dilations.some((d) => d !== 1)) throw unsupportedOption(call, "padding 'same' with both strides and dilation");
    return { auto_pad: attr.string('SAME_UPPER') };
  }
  const totals = kernel.map((k, i) => (k - 1) * dilations[i]!);
  const begins = totals.map((t) => Math.floor(t / 2));
  return { pads: attr.ints([...begins, ...totals.map((t, i) => t - begins[i]!)]) };
}

/**
 * A tfjs kernel [k..., in, out] as ONNX Conv's [out, in, k...]. ConvTranspose's [in, out, k...]
 * comes from tfjs's [k..., out, in] by the same permutation.
 */
export function kernelToChannelsFirst(data: Float32Array, shape: number[]): Float32Array {
  const input = shape[shape.length - 2]!;
  const output = shape[shape.length - 1]!;
  const spatial = data.length / (input * output);
  const w = new Float32Array(data.length);
  for (let s = 0; s < spatial; s++) {
    for (let i = 0; i < input; i++) for (let o = 0; o < output; o++) w[(o * input + i) * spatial + s] = data[(s * input + i) * output + o]!;
  }
  return w;
}

/** [[before, after], ...] per spatial axis from a tfjs padding / cropping config (a number, a pair per axis, or [[b, a], ...]). */
export function pairsPerAxis(value: unknown, rank: number, fallback: number): [number, number][] {
  if (typeof value === 'number') return Array.from({ length: rank }, () => [value, value]);
  if (Array.isArray(value) && value.length === rank) {
    return value.map((v) => (Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number]));
  }
  return Array.from({ length: rank }, () => [fallback, fallback]);
}
