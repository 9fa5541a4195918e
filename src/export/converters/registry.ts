import { FerryError } from '../../errors.ts';
import { convConverters } from './conv.ts';
import { coreConverters } from './core.ts';
import { embeddingConverters } from './embedding.ts';
import { ferryConverters } from './ferry.ts';
import { imageConverters } from './image.ts';
import { poolingConverters } from './pooling.ts';
import { recurrentConverters } from './recurrent.ts';
import type { Converter, LayerCall } from './types.ts';

/** One converter per tfjs layer class name. */
export const CONVERTERS: Readonly<Record<string, Converter>> = {
  ...coreConverters,
  ...convConverters,
  ...poolingConverters,
  ...imageConverters,
  ...embeddingConverters,
  ...recurrentConverters,
  ...ferryConverters,
};

export function converterFor(call: Pick<LayerCall, 'name' | 'className'>): Converter {
  const converter = CONVERTERS[call.className];
  if (!converter) {
    throw new FerryError('EXPORT_UNSUPPORTED_LAYER', `layer ${call.name} (${call.className}) has no ONNX converter`, {
      hint: `Supported layers: ${Object.keys(CONVERTERS).filter((k) => k !== 'InputLayer').sort().join(', ')}.`,
      status: 422,
    });
  }
  return converter;
}
