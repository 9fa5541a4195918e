/** A package dir on disk opened by its kind: ferry.json decides whether it is a plain model. */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../../errors.ts';
import { MANIFEST_FILE, modelFileOf, parseManifest, type Manifest, type PlainModelManifest, type Precision } from '../../package/index.ts';
import type { InferenceModel } from './model.ts';
import { openPlainModel, type OpenPlainModelOptions } from './open.ts';

export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new FerryError('not_a_package', `${dir} is not an ONNX package dir: ${MANIFEST_FILE} is missing`, { hint: 'pass a directory written by `ferry export`', status: 404, cause });
  }
  try {
    return parseManifest(JSON.parse(text), file);
  } catch (cause) {
    if (cause instanceof FerryError) throw cause;
    throw new FerryError('bad_manifest', `${file} is not valid JSON: ${(cause as Error).message}`, { hint: 're-export the package', cause });
  }
}

export interface ServedPlainModel extends InferenceModel {
  readonly dir: string;
  readonly provider: string;
  close(): Promise<void>;
}

/** Opens a plain package's model file of `precision` behind the batcher, served under `id` or its name. */
export async function openPlainPackage(dir: string, manifest: PlainModelManifest, options: OpenPlainModelOptions & { precision?: Precision; id?: string }): Promise<ServedPlainModel> {
  const file = modelFileOf(manifest, options.precision ?? 'fp32', dir);
  const modelPath = path.resolve(dir, file);
  await stat(modelPath).catch((cause: unknown) => {
    throw new FerryError('missing_model_file', `${dir}: ${MANIFEST_FILE} names ${file}, which does not exist`, { hint: 're-export the package', cause });
  });
  const model = await openPlainModel(modelPath, { ...manifest, name: options.id ?? manifest.name }, { ...options, cpuOnlyNodes: manifest.cpuOnlyNodes });
  return { ...model, dir };
}
