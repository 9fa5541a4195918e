/**
 * `ferry export` of a tfjs graph model: read, convert, compare with tfjs (cpu), then write the
 * package dir (onnx/model.onnx + ferry.json, a plain model package: arch "model") in one rename.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FerryError } from '../../errors.ts';
import { manifestSchema, PACKAGE_FORMAT, PACKAGE_VERSION, type ManifestInput, type ParityEntry } from '../../package/index.ts';
import type { Target } from '../converters/types.ts';
import type { ExportReport } from '../index.ts';
import { writePackageDir } from '../package.ts';
import { FERRY_VERSION, serializeModel, serializeModelChunks } from '../writer.ts';
import { convertGraphModel, graphModelIO } from './convert.ts';
import { readGraphModel } from './read.ts';
import { verifyGraphModel } from './verify.ts';

export interface GraphModelExportOptions {
  modelJsonPath: string;
  outDir: string;
  opset: number;
  target: Target;
  verify?: boolean;
  name?: string;
  log?: (line: string) => void;
}

/** Options that only apply to ferry's language models. */
export function refuseLanguageModelOptions(options: { quantize?: string; fp16?: boolean; attention?: string }): void {
  const given = [options.quantize && '--quantize', options.fp16 && '--fp16', options.attention && options.attention !== 'decomposed' && '--attention'].filter(Boolean);
  if (given.length) {
    throw new FerryError('export_bad_options', `${given.join(', ')} apply only to ferry language-model checkpoints, not to a tfjs graph model`, { hint: 'Leave the option out for this model.' });
  }
}

export async function exportGraphModel(options: GraphModelExportOptions): Promise<ExportReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const files = await readGraphModel(options.modelJsonPath);
  const name = options.name ?? path.basename(options.modelJsonPath, '.json').replace(/^model$/, path.basename(path.dirname(path.resolve(options.modelJsonPath))));
  const io = graphModelIO(files.json);
  const graph = convertGraphModel(files.json, files.weights, { opset: options.opset, name });
  log(`converted a tfjs graph model (${files.json.modelTopology.node?.length ?? 0} TF nodes) into ${graph.nodes.length} ONNX nodes (opset ${options.opset})`);
  const parity: Record<string, ParityEntry> = {};
  if (options.verify !== false) {
    log('verifying fp32 against tfjs (cpu backend):');
    const report = await verifyGraphModel(files, io, graph, serializeModel(graph), { log });
    parity.fp32 = { ...report, maxAbsDiff: Math.max(...report.cases.map((c) => c.maxAbsDiff)) };
  }
  // The tensors of a graph model have their batch first, as tfjs feeds them (scalars have none).
  const tensors = (values: typeof graph.inputs) => values.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape, batchDim: v.shape.length ? 0 : null }));
  const manifest: ManifestInput = {
    format: PACKAGE_FORMAT,
    version: PACKAGE_VERSION,
    name,
    arch: 'model',
    source: 'tfjs-graph-model',
    files: { fp32: 'onnx/model.onnx', int8: null, fp16: null },
    inputs: tensors(graph.inputs),
    outputs: tensors(graph.outputs),
    opset: options.opset,
    target: options.target,
    cpuOnlyNodes: [],
    parity,
    producer: `ferry ${FERRY_VERSION}`,
    exportedAt: new Date().toISOString(),
  };
  const checked = manifestSchema.safeParse(manifest);
  if (!checked.success) throw new Error(`export built a ferry.json its readers refuse: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const onnx = serializeModelChunks(graph, { docString: `${name}: a tfjs graph model exported by ferry (fp32)`, properties: { ferry: manifest } });
  await writePackageDir(options.outDir, { 'onnx/model.onnx': onnx, 'ferry.json': `${JSON.stringify(manifest, null, 2)}\n` });
  const bytes = onnx.reduce((n, c) => n + c.byteLength, 0);
  const seconds = (performance.now() - started) / 1000;
  log(`wrote ${options.outDir} in ${seconds.toFixed(2)} s (onnx/model.onnx ${(bytes / 1e6).toFixed(2)} MB)`);
  return { outDir: options.outDir, arch: 'model', files: { fp32: 'onnx/model.onnx', int8: null, fp16: null }, sizes: { 'onnx/model.onnx': bytes }, parity, manifest, seconds };
}
