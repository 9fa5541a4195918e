/**
 * The sizes verification gives a model's free (null) axes. A fixed small length breaks models
 * whose 'valid' convolutions, pools or crops need more input than that (a Conv1D with dilation 2
 * and kernel 3 needs 5 steps), so the sizes start at the receptive field of every layer together.
 */
import type * as tf from '@tensorflow/tfjs';

interface LayerLike {
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  weights: { shape: number[] }[];
  layers?: LayerLike[];
  /** A wrapper's inner layer (TimeDistributed, Bidirectional). */
  layer?: LayerLike;
}

const largest = (value: unknown, fallback: number): number => {
  const flat = Array.isArray(value) ? (value.flat(2) as number[]) : typeof value === 'number' ? [value] : [];
  return flat.length ? Math.max(...flat) : fallback;
};

/** What a layer adds to the input it needs (at its own resolution), and by how much it shrinks the resolution. */
function footprint(layer: LayerLike): { extent: number; stride: number } {
  const config = layer.getConfig();
  const className = layer.getClassName();
  if (className.includes('Cropping')) {
    const crops = Array.isArray(config.cropping) ? (config.cropping as (number | number[])[]).map((c) => (Array.isArray(c) ? c[0]! + c[1]! : 2 * c)) : [2 * largest(config.cropping, 0)];
    return { extent: Math.max(...crops), stride: 1 };
  }
  const isConv = className.includes('Conv');
  const isPool = className.includes('Pooling') && !className.startsWith('Global');
  if (!isConv && !isPool) return { extent: 0, stride: 1 };
  const kernelSize = isPool ? largest(config.poolSize, 2) : largest(layer.weights[0]?.shape.slice(0, -2), 1);
  const stride = largest(config.strides, isPool ? kernelSize : 1);
  if (config.padding === 'same' || className.includes('Transpose')) return { extent: 0, stride };
  return { extent: (kernelSize - 1) * largest(config.dilationRate, 1), stride };
}

function layersOf(layer: LayerLike): LayerLike[] {
  if (layer.layers) return layer.layers.flatMap(layersOf);
  if (layer.layer) return layersOf(layer.layer);
  return [layer];
}

/**
 * Two sizes for the free axes, both at least the receptive field (an upper bound: extents times
 * the product of every stride) and apart by more than the total stride, so that the second size
 * takes a different path through every stride.
 */
export function freeAxisSizes(model: tf.LayersModel): [number, number] {
  let extent = 0;
  let stride = 1;
  for (const layer of layersOf(model as unknown as LayerLike)) {
    const f = footprint(layer);
    extent += f.extent;
    stride *= f.stride;
  }
  const first = Math.max(4, 1 + extent * stride);
  return [first, first + Math.max(5, stride + 1)];
}
