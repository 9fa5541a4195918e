/**
 * `ferry export RUN` for a T5 run or checkpoint (src/train/t5-checkpoint.ts): the package in
 * Optimum's layout (package.ts), verified against tfjs (verify.ts), written all or nothing.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FerryError } from '../../errors.ts';
import type { ManifestInput, ParityEntry } from '../../package/index.ts';
import type { ExportReport } from '../index.ts';
import { checkpointArch, inspectDir, resolveCheckpointDir } from '../../train/checkpoint.ts';
import { readT5Checkpoint } from '../../train/t5-checkpoint.ts';
import { writePackageDir } from '../package.ts';
import { MANIFEST_FILE } from '../../package/index.ts';
import { T5_DECODER_FILE, T5_ENCODER_FILE, t5ManifestFile, t5PackageFiles } from './package.ts';
import { verifyT5Package } from './verify.ts';

export interface T5ExportOptions {
  outDir: string;
  opset: number;
  verify?: boolean;
  name?: string;
  log?: (line: string) => void;
}


/** The checkpoint dir of `source` when it is a T5 checkpoint or a T5 run dir; undefined for anything else. */
export async function t5CheckpointOf(source: string): Promise<string | undefined> {
  const kind = await inspectDir(source);
  if (kind !== 'checkpoint' && kind !== 'run') return undefined;
  const dir = await resolveCheckpointDir(source);
  return (await checkpointArch(dir)) === 't5' ? dir : undefined;
}

/** Options of `ferry export` that a T5 package does not take, as problems in flag names. */
export function t5OptionProblems(options: { target?: string; attention?: string; quantize?: string; fp16?: boolean; plugins?: string[] }): string[] {
  return [
    options.target !== undefined && options.target !== 'cpu' && `--target ${options.target}: T5 packages are served by onnxruntime-node (ferry serve, ferry generate); the browser client and edge worker refuse them`,
    options.attention !== undefined && options.attention !== 'decomposed' && `--attention ${options.attention} applies only to ferry Transformer language models`,
    (options.plugins?.length ?? 0) > 0 && '--plugin applies to tfjs Layers models with custom layers',
    (options.quantize !== undefined || options.fp16 === true) && '--quantize and --fp16 copies of T5 packages are not built yet: export fp32',
  ].filter((problem): problem is string => typeof problem === 'string');
}

export async function exportT5Checkpoint(dir: string, options: T5ExportOptions): Promise<ExportReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const checkpoint = await readT5Checkpoint(dir);
  const { model: config, training } = checkpoint.manifest;
  log(`T5 checkpoint ${checkpoint.dir} (step ${training.step})`);
  const name = options.name ?? path.basename(path.resolve(options.outDir));
  const files = t5PackageFiles(config, checkpoint.weights, checkpoint.tokenizer, options.opset, name);
  const bytes = (file: string) => Buffer.concat(files[file] as Uint8Array[]);
  const parity: Record<string, ParityEntry> = {};
  if (options.verify !== false) {
    log('verifying fp32 against tfjs:');
    parity.fp32 = await verifyT5Package(config, checkpoint.weights, { encoder: bytes(T5_ENCODER_FILE), decoder: bytes(T5_DECODER_FILE) }, { log });
  }
  const manifest = t5ManifestFile(config, options.opset, name, { parity, training });
  files[MANIFEST_FILE] = manifest;
  const metrics = await readFile(path.join(checkpoint.dir, 'metrics.jsonl'), 'utf8').catch(() => undefined);
  if (metrics !== undefined) files['metrics.jsonl'] = metrics;
  await writePackageDir(options.outDir, files);
  const sizes = Object.fromEntries([T5_ENCODER_FILE, T5_DECODER_FILE].map((file) => [file, bytes(file).byteLength]));
  const seconds = (performance.now() - started) / 1000;
  log(`wrote ${options.outDir} in ${seconds.toFixed(2)} s (${Object.entries(sizes).map(([k, v]) => `${k} ${(v / 1e6).toFixed(2)} MB`).join(', ')})`);
  const parsed = JSON.parse(manifest) as ManifestInput & { arch: 't5' };
  return { outDir: options.outDir, arch: 't5', files: { fp32: parsed.files.fp32, int8: parsed.files.int8 ?? null, fp16: parsed.files.fp16 ?? null }, sizes, parity, manifest: parsed, seconds };
}

export function t5OptionsError(problems: string[]): FerryError {
  return new FerryError('export_bad_options', problems.length === 1 ? `${problems[0]}.` : `${problems.length} options do not apply to a T5 package:\n  - ${problems.join('\n  - ')}`, {
    hint: 'Leave those options out to export a T5 run.',
  });
}
