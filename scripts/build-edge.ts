// Bundles src/serve/edge.ts with ONNX packages into a Cloudflare Workers module in dist/edge/:
// worker.mjs, ORT's .wasm (a CompiledWasm module), the .onnx files (Data modules) and a
// wrangler.toml. Usage: node --import tsx scripts/build-edge.ts [--precision int8] [--out DIR] PKG...
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Plugin } from 'esbuild';
import { FerryError } from '../src/errors.ts';
import { findPackages } from '../src/serve/node.ts';
import { isLanguageModel, modelFileOf, type Precision } from '../src/package/index.ts';
import { existingModelFile, loadPackage, readManifest } from '../src/serve/package.ts';
import { t5TokenizerOf } from '../src/serve/t5-model.ts';
import { nodeBuiltinsAsEmpty, ortDistDir } from '../src/serve/playground/bundle.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WASM = 'ort-wasm-simd-threaded.wasm';

/** Cloudflare Workers (paid plan): 10 MB per worker after gzip, 128 MB of memory per isolate. */
export const WORKERS_UPLOAD_LIMIT = 10_000_000;
/**
 * Measured in workerd: ORT's instance and a session with warm-up take 73-93 MB of process memory
 * for the shipped 3.6-3.8 MB models, and loading holds a model about three times (the Data
 * module, ORT's copy in the WASM heap, its prepacked weights); 20 MB of model is the most a
 * 128 MB isolate can be expected to hold.
 */
export const WORKERS_MODEL_LIMIT = 20_000_000;

export interface EdgeBuildOptions {
  /** ONNX package dirs, or folders holding them (like `ferry serve`). */
  packages: readonly string[];
  outDir?: string;
  precision?: Precision;
  /** Refuse the build when worker + wasm + models exceed this after gzip (default: Workers' 10 MB). */
  maxUploadBytes?: number;
  /** The worker refuses, at load, a model file larger than this (default 20 MB). */
  maxModelBytes?: number;
}

export interface EdgeBuild {
  outDir: string;
  worker: string;
  /** Raw and gzip bytes of each uploaded file, and their total. */
  sizes: { file: string; bytes: number; gzipBytes: number }[];
  total: { bytes: number; gzipBytes: number };
}

export async function buildEdge(options: EdgeBuildOptions): Promise<EdgeBuild> {
  const outDir = path.resolve(options.outDir ?? path.join(root, 'dist/edge'));
  const maxModelBytes = options.maxModelBytes ?? WORKERS_MODEL_LIMIT;
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, 'models'), { recursive: true });
  await copyFile(path.join(ortDistDir(), WASM), path.join(outDir, WASM));

  const dirs = await findPackages(options.packages);
  const entries: string[] = [];
  const imports: string[] = [`import wasm from './${WASM}';`];
  const modelFiles: string[] = [];
  for (const [i, dir] of dirs.entries()) {
    // A plain model travels without a tokenizer; the worker serves it over /v2 only. A T5
    // package brings its encoder beside its merged decoder.
    const parsed = await readManifest(dir);
    const precision = options.precision ?? 'fp32';
    const pkg = isLanguageModel(parsed)
      ? await loadPackage(dir, { precision: options.precision })
      : { id: parsed.name, modelPath: await existingModelFile(dir, modelFileOf(parsed, precision, dir)) };
    const encoderPath = parsed.arch === 't5' ? await existingModelFile(dir, modelFileOf({ ...parsed, files: parsed.encoderFiles }, precision, dir)) : undefined;
    const stem = `models/${i}-${pkg.id.replace(/[^\w.-]/g, '_')}`;
    const file = `${stem}.onnx`;
    await copyFile(pkg.modelPath, path.join(outDir, file));
    imports.push(`import model${i} from './${file}';`);
    modelFiles.push(file);
    if (encoderPath) {
      await copyFile(encoderPath, path.join(outDir, `${stem}.encoder.onnx`));
      imports.push(`import encoder${i} from './${stem}.encoder.onnx';`);
      modelFiles.push(`${stem}.encoder.onnx`);
    }
    const manifest = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8')) as unknown;
    const tokenizer = parsed.arch === 'model' ? null : JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8')) as unknown;
    // The worker would refuse a T5 tokenizer that does not fit the model at load; the build refuses it now.
    if (parsed.arch === 't5') t5TokenizerOf(tokenizer, dir, parsed);
    entries.push(`{ source: ${JSON.stringify(`bundle:${pkg.id}`)}, manifest: ${JSON.stringify(manifest)}, tokenizer: ${JSON.stringify(tokenizer)}, model: model${i}${encoderPath ? `, encoder: encoder${i}` : ''} }`);
  }
  const assetsModule = `${imports.join('\n')}\nexport default { wasm, packages: [${entries.join(',\n')}], maxModelBytes: ${maxModelBytes}, ` +
    `limitReason: ${JSON.stringify(`the edge limit: ${(maxModelBytes / 1e6).toFixed(0)} MB of model in a 128 MB Workers isolate`)} };\n`;

  const esbuild = await import('esbuild');
  const worker = path.join(outDir, 'worker.mjs');
  await esbuild.build({
    entryPoints: [path.join(root, 'src/serve/edge.ts')],
    outfile: worker,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    conditions: ['worker', 'browser'],
    // prom-client's default-metrics modules read process.uptime() and .version when they load
    // (ferry never collects them); Workers have no process.
    banner: { js: "globalThis.process ??= { env: {}, version: 'v0.0.0', platform: 'workerd', uptime: () => 0 };" },
    plugins: [edgeAssets(assetsModule, outDir), externalBinaries, noDynamicImport, nodeBuiltinsAsEmpty],
    logLevel: 'silent',
  });
  await writeFile(path.join(outDir, 'wrangler.toml'), wranglerToml());

  const sizes = [];
  for (const file of ['worker.mjs', WASM, ...modelFiles]) {
    const bytes = await readFile(path.join(outDir, file));
    sizes.push({ file, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes).byteLength });
  }
  const total = { bytes: sizes.reduce((s, f) => s + f.bytes, 0), gzipBytes: sizes.reduce((s, f) => s + f.gzipBytes, 0) };
  const limit = options.maxUploadBytes ?? WORKERS_UPLOAD_LIMIT;
  if (total.gzipBytes > limit) {
    throw new FerryError('edge_too_large', `the edge worker is ${(total.gzipBytes / 1e6).toFixed(2)} MB after gzip, over the ${(limit / 1e6).toFixed(0)} MB a Cloudflare worker may upload (${sizes.map((s) => `${s.file} ${(s.gzipBytes / 1e6).toFixed(2)} MB`).join(', ')})`, {
      hint: 'ship a smaller model or its int8 file (`ferry export --quantize int8`, then --precision int8); ORT\'s wasm alone takes 3.7 MB',
    });
  }
  return { outDir, worker, sizes, total };
}

/** The generated `ferry:edge-assets` module that edge.ts imports. */
function edgeAssets(contents: string, outDir: string): Plugin {
  return {
    name: 'ferry-edge-assets',
    setup(build) {
      build.onResolve({ filter: /^ferry:edge-assets$/ }, () => ({ path: 'ferry:edge-assets', namespace: 'ferry-edge-assets' }));
      build.onLoad({ filter: /.*/, namespace: 'ferry-edge-assets' }, () => ({ contents, loader: 'js', resolveDir: outDir }));
    },
  };
}

/** The .wasm and .onnx files stay separate modules (CompiledWasm and Data rules), next to worker.mjs. */
const externalBinaries: Plugin = {
  name: 'external-binaries',
  setup(build) {
    build.onResolve({ filter: /\.(wasm|onnx)$/ }, (args) => ({ path: args.path, external: true }));
  },
};

/**
 * ORT's WASM bundle keeps one `import(url)` for loading its glue from a URL, which ferry never
 * does; workerd refuses a module holding a non-literal import(), so it becomes a rejection.
 */
const noDynamicImport: Plugin = {
  name: 'no-dynamic-import',
  setup(build) {
    build.onLoad({ filter: /onnxruntime-web[\\/]dist[\\/].*\.mjs$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const contents = source.replace(/\bimport\(\s*(?:\/\*[^*]*\*\/\s*)*([A-Za-z_$][\w$]*)\s*\)/g, 'Promise.reject(new Error("dynamic import is disabled in the ferry edge worker: " + $1))');
      return { contents, loader: 'js' };
    });
  },
};

function wranglerToml(): string {
  return `# Generated by scripts/build-edge.ts; deploy with \`npx wrangler deploy\` from this folder.
name = "ferry"
main = "worker.mjs"
compatibility_date = "2026-04-01"
no_bundle = true

[[rules]]
type = "CompiledWasm"
globs = ["**/*.wasm"]
fallthrough = false

[[rules]]
type = "Data"
globs = ["**/*.onnx"]
fallthrough = false
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const at = args.indexOf(name);
    return at < 0 ? undefined : args.splice(at, 2)[1];
  };
  const outDir = option('--out');
  const precision = option('--precision') as Precision | undefined;
  const build = await buildEdge({ packages: args.length ? args : ['models'], outDir, precision });
  for (const s of build.sizes) console.log(`${s.file}: ${(s.bytes / 1e6).toFixed(2)} MB (${(s.gzipBytes / 1e6).toFixed(2)} MB gzip)`);
  console.log(`total: ${(build.total.bytes / 1e6).toFixed(2)} MB (${(build.total.gzipBytes / 1e6).toFixed(2)} MB gzip) in ${build.outDir}`);
}
