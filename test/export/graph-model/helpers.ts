/** Build a graph model, convert it, and compare it with tfjs (cpu): the loop every op test runs. */
import assert from 'node:assert/strict';
import { convertGraphModel, graphModelIO } from '../../../src/export/graph-model/convert.ts';
import { readGraphModel } from '../../../src/export/graph-model/read.ts';
import { verifyGraphModel, type GraphParityReport } from '../../../src/export/graph-model/verify.ts';
import type { Graph } from '../../../src/export/graph.ts';
import { serializeModel } from '../../../src/export/writer.ts';
import { tempDir } from '../fixtures.ts';
import { GraphModelBuilder } from './builder.ts';

export async function writeModel(build: (b: GraphModelBuilder) => void): Promise<string> {
  const b = new GraphModelBuilder();
  build(b);
  return b.write(await tempDir('ferry-graph-model-'));
}

export async function convertAndVerify(build: (b: GraphModelBuilder) => void): Promise<{ graph: Graph; report: GraphParityReport }> {
  const files = await readGraphModel(await writeModel(build));
  const graph = convertGraphModel(files.json, files.weights, { opset: 17, name: 'test' });
  const report = await verifyGraphModel(files, graphModelIO(files.json), graph, serializeModel(graph));
  assert.ok(report.maxRelativeDiff <= 1e-4, `parity ${report.maxRelativeDiff}`);
  assert.ok(report.cases.length > 0);
  return { graph, report };
}
