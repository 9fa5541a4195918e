/**
 * Reads a graph model from disk: model.json, its shards (checked against the manifest's sizes)
 * and the decoded weights. The raw shard bytes are kept for tfjs, which verification loads from
 * memory so that both sides read the very same files.
 */
import path from 'node:path';
import { FerryError } from '../../errors.ts';
import { readModelJson, readWeightFile, weightFilePath } from '../../train/tfjs-io.ts';
import { isGraphModelJson, type GraphModelJson, type Tensor } from './format.ts';
import { decodeWeights, expectedBytes, type WeightGroup } from './weights.ts';

export interface GraphModelFiles {
  modelJsonPath: string;
  json: GraphModelJson;
  groups: WeightGroup[];
  weights: Map<string, Tensor>;
}

async function readGroup(dir: string, group: GraphModelJson['weightsManifest'][number]): Promise<WeightGroup> {
  const files = group.paths.map((file) => weightFilePath(dir, file));
  const contents = await Promise.all(files.map((file) => readWeightFile(file)));
  const expected = expectedBytes(group.weights, files.join(', '));
  const actual = contents.reduce((n, c) => n + c.byteLength, 0);
  if (actual !== expected) {
    const sizes = files.map((file, i) => `${file} (${contents[i]!.byteLength} bytes)`).join(', ');
    throw new FerryError('export_weights_size', `${sizes}: ${actual} bytes, but model.json's manifest describes ${expected} bytes for ${group.weights.length} weights`, {
      hint: actual < expected ? 'The shard looks truncated: copy or convert the model again.' : 'The weight files do not belong to this model.json.',
      status: 422,
    });
  }
  return { files, bytes: contents.length === 1 ? contents[0]! : Buffer.concat(contents), weights: group.weights };
}

export async function readGraphModel(modelJsonPath: string): Promise<GraphModelFiles> {
  const json = await readModelJson(modelJsonPath);
  if (!isGraphModelJson(json)) {
    throw new FerryError('export_not_graph_model', `${modelJsonPath} is not a tfjs graph model (its format is ${JSON.stringify((json as { format?: unknown }).format)})`, { status: 422 });
  }
  const dir = path.dirname(modelJsonPath);
  const groups: WeightGroup[] = [];
  for (const group of json.weightsManifest) groups.push(await readGroup(dir, group));
  return { modelJsonPath, json, groups, weights: decodeWeights(groups) };
}
