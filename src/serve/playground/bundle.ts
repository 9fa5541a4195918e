import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The playground page's script, the entry of the browser bundle. */
export const PLAYGROUND_ENTRY = path.join(here, 'main.ts');

/** onnxruntime-web's dist folder: its ESM bundles, .wasm files and worker scripts. */
export function ortDistDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
}

const builtin = new RegExp(`^(node:.*|${builtinModules.map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`);

/**
 * Serving code reads package files with node:fs only on Node (`loadPackage`), and prom-client
 * calls `util` only to format errors, never in a browser or worker; the modules are shared, so
 * their Node imports become empty modules in a bundle.
 */
export const nodeBuiltinsAsEmpty: Plugin = {
  name: 'node-builtins-as-empty',
  setup(build) {
    build.onResolve({ filter: builtin }, (args) => ({ path: args.path, namespace: 'empty-node-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'empty-node-builtin' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/**
 * Bundles the browser client and playground into one ESM file (in memory). onnxruntime-web
 * stays external: the page maps it to ORT's own files with an import map, so that ORT finds its
 * .wasm and its worker script next to itself.
 */
export async function bundleBrowserClient(options: { minify?: boolean } = {}): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [PLAYGROUND_ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? true,
    write: false,
    external: ['onnxruntime-web', 'onnxruntime-web/*'],
    plugins: [nodeBuiltinsAsEmpty],
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}
