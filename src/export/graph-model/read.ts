/**
 * Reads a graph model from disk: model.json, its shards (checked against the manifest's sizes)
 * and the decoded weights. The raw shard bytes are kept for tfjs, which verification loads from
 * memory so that both sides read the very same files.
 */
import path from 'node:path';
import { FerryError } from '../../errors.ts';
import { readModelJson, readWeightFile, weightFilePath } from '../../train/tfjs-io.ts';
import { checkGraphModelJson } from './check.ts';
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
  // Before a shard is read or a converter runs: a damaged file is refused naming its node or weight.
  checkGraphModelJson(json, modelJsonPath);
  const dir = path.dirname(modelJsonPath);
  const groups: WeightGroup[] = [];
  for (const group of json.weightsManifest) groups.push(await readGroup(dir, group));
  const weights = decodeWeights(groups);
  refuseNaNWeights(groups, weights);
  return { modelJsonPath, json, groups, weights };
}

/**
 * A NaN weight is a damaged shard (no trained graph holds one, and every output it reaches is NaN
 * in tfjs and onnxruntime alike, so parity cannot tell). Infinities stay: graphs use -inf as a mask.
 */
function refuseNaNWeights(groups: WeightGroup[], weights: Map<string, Tensor>): void {
  for (const group of groups) {
    for (const spec of group.weights) {
      const tensor = weights.get(spec.name)!;
      if (!(tensor.data instanceof Float32Array)) continue;
      const at = tensor.data.findIndex(Number.isNaN);
      if (at >= 0) {
        throw new FerryError('export_nonfinite_weights', `${group.files.join(', ')}: weight ${spec.name} holds NaN at index ${at}`, {
          hint: 'The shard is damaged or does not belong to this model.json: copy or convert the model again.',
          status: 422,
        });
      }
    }
  }
}
