/**
 * `ferry quantize DIR`: writes a package's int8 copy again from its fp32 file, with today's
 * quantizer and its parity check, without the checkpoint the package came from. Packages written
 * before int8 weights kept to 7 bits have int8 files whose logits depend on the CPU (AVX2 without
 * VNNI saturates, docs/FORMATS.md); this replaces them. The package dir is swapped as a whole.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import type { ModelConfig } from '../train/models/index.ts';
import { languageModelSpec } from './lm/spec.ts';
import { writePackageDir, type PackageFiles } from './package.ts';
import { readModel } from './reader.ts';
import { buildVariants, variantText } from './variants.ts';
import { serializeModelChunks } from './writer.ts';

const INT8_FILE = 'onnx/model_quantized.onnx';

interface PackageManifest {
  format: string;
  name: string;
  arch: string;
  model: ModelConfig | null;
  files: Record<string, string | null>;
  parity?: Record<string, unknown>;
}

function notALanguageModelPackage(dir: string, why: string): FerryError {
  return new FerryError('QUANTIZE_BAD_PACKAGE', `${dir} is not a ferry language-model package: ${why}`, {
    hint: 'Pass a package dir written by `ferry export` (it holds ferry.json and onnx/model.onnx).',
  });
}

async function readManifest(dir: string): Promise<PackageManifest> {
  let manifest: PackageManifest;
  try {
    manifest = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8')) as PackageManifest;
  } catch (error) {
    throw notALanguageModelPackage(dir, `cannot read ferry.json (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (manifest?.format !== 'ferry-onnx') throw notALanguageModelPackage(dir, 'ferry.json has no "format": "ferry-onnx"');
  if (!manifest.model || (manifest.model.arch !== 'lstm' && manifest.model.arch !== 'transformer')) {
    throw notALanguageModelPackage(dir, 'int8 copies are made for ferry LSTM and Transformer packages only');
  }
  if (typeof manifest.files?.fp32 !== 'string') throw notALanguageModelPackage(dir, 'ferry.json names no fp32 file');
  return manifest;
}

/** Every file of the package, relative paths to contents, so the dir can be rewritten as a whole. */
async function readPackageFiles(dir: string): Promise<PackageFiles> {
  const files: PackageFiles = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, full)] = await readFile(full);
  }
  return files;
}

export async function requantizePackage(dir: string, log: (line: string) => void = () => {}): Promise<Record<string, number>> {
  const manifest = await readManifest(dir);
  const config = manifest.model!;
  const fp32 = readModel(await readFile(path.join(dir, manifest.files.fp32!)));
  const tokenizerJson = await readFile(path.join(dir, 'tokenizer.json'), 'utf8').then((text) => JSON.parse(text) as unknown, () => undefined);
  const tokenizer = tokenizerJson === undefined ? undefined : loadTokenizer(tokenizerJson);
  const { int8, parity } = await buildVariants(fp32.graph, languageModelSpec(config), variantText(tokenizer, config.vocabSize), { int8: true }, log);

  const updated = { ...manifest, files: { ...manifest.files, int8: INT8_FILE }, parity: { ...manifest.parity, int8: parity.int8 } };
  const files = await readPackageFiles(dir);
  files['ferry.json'] = `${JSON.stringify(updated, null, 2)}\n`;
  // Both ONNX files carry the manifest in their metadata: the fp32 file's copy is brought up to date too.
  files[manifest.files.fp32!] = serializeModelChunks(fp32.graph, { docString: fp32.docString, properties: { ...fp32.properties, ferry: updated } });
  files[INT8_FILE] = serializeModelChunks(int8!, { docString: `${manifest.name} (int8 weights)`, properties: { ferry: updated } });
  await writePackageDir(dir, files);
  return parity.int8!;
}
