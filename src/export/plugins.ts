/**
 * `ferry export --plugin ./my-converters.js`: a module that exports `converters`, keyed by tfjs
 * class name, with the built-in converters' interface (converters/types.ts), and optionally
 * `tfjsLayers(tf)`, the tfjs layer classes the model uses (given ferry's own tfjs so that they
 * register with it: tfjs needs them to load the model and to verify the export). docs/EXPORT.md.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { registerConverters } from './converters/registry.ts';
import type { Converter } from './converters/types.ts';

type LayerClass = tf.serialization.SerializableConstructor<tf.serialization.Serializable>;

export interface ConverterPlugin {
  converters: Record<string, Converter>;
  tfjsLayers?: (tfjs: typeof tf) => LayerClass[];
}

function badPlugin(file: string, problem: string, cause?: unknown): FerryError {
  return new FerryError('export_bad_plugin', `--plugin ${file}: ${problem}`, {
    hint: 'A plugin exports `converters` ({ ClassName: (call, inputs, ctx) => outputs }) and optionally `tfjsLayers(tf)`; see docs/EXPORT.md, "Plugins".',
    cause,
  });
}

export async function loadPlugins(files: string[]): Promise<void> {
  for (const file of files) {
    const resolved = path.resolve(file);
    if (!(await stat(resolved).then((s) => s.isFile(), () => false))) throw badPlugin(file, 'no such file');
    let plugin: Partial<ConverterPlugin>;
    try {
      plugin = (await import(pathToFileURL(resolved).href)) as Partial<ConverterPlugin>;
    } catch (error) {
      throw badPlugin(file, `cannot be imported: ${(error as Error).message.split('\n')[0]}`, error);
    }
    const converters = plugin.converters;
    if (typeof converters !== 'object' || converters === null) throw badPlugin(file, 'exports no `converters` object');
    const notFunctions = Object.entries(converters).filter(([, c]) => typeof c !== 'function').map(([name]) => name);
    if (notFunctions.length) throw badPlugin(file, `converters ${notFunctions.join(', ')} are not functions`);
    registerConverters(converters, `--plugin ${file}`);
    if (plugin.tfjsLayers !== undefined) {
      if (typeof plugin.tfjsLayers !== 'function') throw badPlugin(file, '`tfjsLayers` is not a function');
      for (const layer of plugin.tfjsLayers(tf)) tf.serialization.registerClass(layer);
    }
  }
}
