/** A plain package dir on disk opened behind the batcher. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../../errors.ts';
import { MANIFEST_FILE, modelFileOf, type PlainModelManifest, type Precision } from '../../package/index.ts';
import type { InferenceModel } from './model.ts';
import { openPlainModel, type OpenPlainModelOptions } from './open.ts';

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
