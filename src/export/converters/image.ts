/** ZeroPadding2D, Cropping2D and UpSampling2D, in channels-first so that they sit between convolutions without Transposes. */
import { attr, type Attribute } from '../graph.ts';
import { pairsPerAxis, perAxis, requireChannelsLast, toChannelsFirst, toChannelsLast } from './spatial.ts';
import { unsupportedOption } from './support.ts';
import type { Converter } from './types.ts';

const zeroPadding2d: Converter = (call, [x], ctx) => {
  requireChannelsLast(call);
  const g = ctx.graph;
  const [[top, bottom], [left, right]] = pairsPerAxis(call.config.padding, 2, 1) as [[number, number], [number, number]];
  const pads = g.int64('pads', [0, 0, top, left, 0, 0, bottom, right]);
  return [{ name: toChannelsLast(g, g.op('Pad', [toChannelsFirst(g, x!.name, 2), pads]), 2), dtype: 'float32' }];
};

/** A Slice from `before` to -after on each spatial axis (an end of 0 would mean empty, so no crop at the end slices to the limit). */
const cropping2d: Converter = (call, [x], ctx) => {
  requireChannelsLast(call);
  const g = ctx.graph;
  const crops = pairsPerAxis(call.config.cropping, 2, 0);
  const ends = crops.map(([, after]) => (after === 0 ? Number.MAX_SAFE_INTEGER : -after));
  const sliced = g.op('Slice', [toChannelsFirst(g, x!.name, 2), g.int64('starts', crops.map(([before]) => before)), g.int64('ends', ends), g.int64('axes', [2, 3])]);
  return [{ name: toChannelsLast(g, sliced, 2), dtype: 'float32' }];
};

/**
 * tfjs resizes with alignCorners and halfPixelCenters off: source = destination / scale
 * ('asymmetric'), the nearest cell by floor.
 */
const upSampling2d: Converter = (call, [x], ctx) => {
  requireChannelsLast(call);
  const g = ctx.graph;
  const [sh, sw] = perAxis(call.config.size, 2, 2) as [number, number];
  const interpolation = (call.config.interpolation as string | undefined) ?? 'nearest';
  if (interpolation !== 'nearest' && interpolation !== 'bilinear') throw unsupportedOption(call, `interpolation ${JSON.stringify(interpolation)}`, 'Supported: nearest, bilinear.');
  const mode: Record<string, Attribute> = interpolation === 'nearest' ? { mode: attr.string('nearest'), nearest_mode: attr.string('floor') } : { mode: attr.string('linear') };
  const resized = g.op('Resize', [toChannelsFirst(g, x!.name, 2), '', g.float('scales', [4], [1, 1, sh, sw])], {
    coordinate_transformation_mode: attr.string('asymmetric'),
    ...mode,
  });
  return [{ name: toChannelsLast(g, resized, 2), dtype: 'float32' }];
};

export const imageConverters: Record<string, Converter> = {
  ZeroPadding2D: zeroPadding2d,
  Cropping2D: cropping2d,
  UpSampling2D: upSampling2d,
};
