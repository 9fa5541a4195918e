import { FerryError } from '../../errors.ts';
import { convConverters } from './conv.ts';
import { coreConverters } from './core.ts';
import { embeddingConverters } from './embedding.ts';
import { ferryConverters } from './ferry.ts';
import { imageConverters } from './image.ts';
import { maskingConverters } from './masking.ts';
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
  ...maskingConverters,
  ...recurrentConverters,
  ...ferryConverters,
};

/** Converters from `ferry export --plugin` modules, by class name. */
const pluginConverters = new Map<string, { converter: Converter; origin: string }>();

/** Adds a plugin's converters; a built-in class cannot be taken over. */
export function registerConverters(converters: Record<string, Converter>, origin: string): void {
  for (const [className, converter] of Object.entries(converters)) {
    if (className in CONVERTERS) {
      throw new FerryError('export_bad_plugin', `${origin} registers a converter for ${className}, which ferry converts itself`, {
        hint: 'A plugin adds converters for classes ferry does not know; remove this one from the plugin.',
      });
    }
    pluginConverters.set(className, { converter, origin });
  }
}

const PLUGIN_HINT = 'Write a converter for it in a module and pass it with `ferry export --plugin ./my-converters.js` (docs/EXPORT.md, "Plugins")';

/** A class in model.json that neither tfjs nor ferry knows (a package's own layer). */
export function unknownCustomLayer(call: Pick<LayerCall, 'name' | 'className'>): FerryError {
  return new FerryError('export_unknown_custom_layer', `layer ${call.name} uses the custom class ${call.className}, which neither tfjs nor ferry knows`, {
    hint: `${PLUGIN_HINT}; the plugin also gives tfjs the layer class, to load the model and to verify the export.`,
    status: 422,
  });
}

export function hasConverter(className: string): boolean {
  return className in CONVERTERS || pluginConverters.has(className);
}

export function converterFor(call: Pick<LayerCall, 'name' | 'className'>): Converter {
  const converter = CONVERTERS[call.className] ?? pluginConverters.get(call.className)?.converter;
  if (!converter) {
    throw new FerryError('export_unsupported_layer', `layer ${call.name} (${call.className}) has no ONNX converter`, {
      hint: `Supported layers: ${Object.keys(CONVERTERS).filter((k) => k !== 'InputLayer').sort().join(', ')}. ${PLUGIN_HINT}.`,
      status: 422,
    });
  }
  return converter;
}
