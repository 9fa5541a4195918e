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
import { MANIFEST_FILE, parseLanguageModelManifest, type LanguageModelManifest } from '../package/index.ts';
import { validateModelConfig, type ModelConfig } from '../train/models/config.ts';
import { languageModelSpec } from './lm/spec.ts';
import { writePackageDir, type PackageFiles } from './package.ts';
import { readModel } from './reader.ts';
import { buildVariants, variantText } from './variants.ts';
import { serializeModelChunks } from './writer.ts';

const INT8_FILE = 'onnx/model_quantized.onnx';

function notALanguageModelPackage(dir: string, why: string): FerryError {
  return new FerryError('quantize_bad_package', `${dir} is not a ferry language-model package: ${why}`, {
    hint: 'Pass a package dir written by `ferry export` (it holds ferry.json and onnx/model.onnx).',
  });
}

/** ferry.json as written (kept for the rewrite, unknown fields and order included) and as checked by the package contract. */
async function readManifest(dir: string): Promise<{ raw: Record<string, unknown>; manifest: LanguageModelManifest; config: ModelConfig }> {
  const file = path.join(dir, MANIFEST_FILE);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw notALanguageModelPackage(dir, `cannot read ferry.json (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const manifest = parseLanguageModelManifest(raw, file);
    return { raw, manifest, config: validateModelConfig(manifest.model) };
  } catch (error) {
    throw notALanguageModelPackage(dir, error instanceof Error ? error.message : String(error));
  }
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
  const { raw, manifest, config } = await readManifest(dir);
  const fp32 = readModel(await readFile(path.join(dir, manifest.files.fp32)));
  const tokenizerJson = await readFile(path.join(dir, 'tokenizer.json'), 'utf8').then((text) => JSON.parse(text) as unknown, () => undefined);
  const tokenizer = tokenizerJson === undefined ? undefined : loadTokenizer(tokenizerJson);
  const { int8, parity } = await buildVariants(fp32.graph, languageModelSpec(config), variantText(tokenizer, config.vocabSize), { int8: true }, log);

  const updated = { ...raw, files: { ...manifest.files, int8: INT8_FILE }, parity: { ...manifest.parity, int8: parity.int8 } };
  const files = await readPackageFiles(dir);
  files['ferry.json'] = `${JSON.stringify(updated, null, 2)}\n`;
  // Both ONNX files carry the manifest in their metadata: the fp32 file's copy is brought up to date too.
  files[manifest.files.fp32] = serializeModelChunks(fp32.graph, { docString: fp32.docString, properties: { ...fp32.properties, ferry: updated } });
  files[INT8_FILE] = serializeModelChunks(int8!, { docString: `${manifest.name} (int8 weights)`, properties: { ferry: updated } });
  await writePackageDir(dir, files);
  return parity.int8!;
}
