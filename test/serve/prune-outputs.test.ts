import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { keepOutputs } from '../../src/serve/prune-outputs.ts';

const { onnx } = onnxProto;
const shipped = new URL('../../models/shakespeare-transformer/onnx/model.onnx', import.meta.url);

/** Feeds for one step of two sequences, 5 past positions, 1 new token each (values from a fixed sequence). */
function stepFeeds(session: ort.InferenceSession): Record<string, ort.Tensor> {
  const [batch, past, fresh] = [2, 5, 1];
  let seed = 3;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) {
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', BigInt64Array.from([7n, 42n]), [batch, fresh]);
    else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', new BigInt64Array(batch * (past + fresh)).fill(1n), [batch, past + fresh]);
    else if (name === 'position_ids') feeds[name] = new ort.Tensor('int64', new BigInt64Array(batch).fill(BigInt(past)), [batch, fresh]);
    else {
      const meta = session.inputMetadata.find((entry) => entry.name === name) as unknown as { shape: readonly (number | string)[] };
      const [, heads, , headDim] = meta.shape as [unknown, number, unknown, number];
      feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: batch * heads * past * headDim }, next), [batch, heads, past, headDim]);
    }
  }
  return feeds;
}

test('keepOutputs drops present.* and the nodes only they need; the kept outputs are bit for bit the same', async () => {
  const bytes = new Uint8Array(await readFile(shipped));
  const full = onnx.ModelProto.decode(bytes);
  const kept = full.graph!.output!.map((output) => output.name!).filter((name) => !name.startsWith('present.'));
  assert.ok(kept.includes('logits') && kept.includes('new_key_values.0.key'));
  const pruned = keepOutputs(bytes, kept);
  const prunedProto = onnx.ModelProto.decode(pruned);
  assert.deepEqual(prunedProto.graph!.output!.map((output) => output.name), kept);
  const removed = full.graph!.node!.length - prunedProto.graph!.node!.length;
  const layers = kept.filter((name) => name.startsWith('new_key_values.')).length / 2;
  // At least the two Concats (key and value) per layer that built present.*.
  assert.ok(removed >= 2 * layers, `${removed} nodes removed for ${layers} layers`);

  const [original, lean] = await Promise.all([ort.InferenceSession.create(bytes), ort.InferenceSession.create(pruned)]);
  const feeds = stepFeeds(original);
  const [a, b] = await Promise.all([original.run(feeds, kept), lean.run(feeds)]);
  for (const name of kept) assert.deepEqual(Array.from(b[name]!.data as Float32Array), Array.from(a[name]!.data as Float32Array), name);
  await Promise.all([original.release(), lean.release()]);
});

test('keepOutputs returns the model unchanged when every output stays, and keeps nodes an output shares', async () => {
  const bytes = new Uint8Array(await readFile(shipped));
  const all = onnx.ModelProto.decode(bytes).graph!.output!.map((output) => output.name!);
  assert.equal(keepOutputs(bytes, all), bytes);
  const logitsOnly = onnx.ModelProto.decode(keepOutputs(bytes, ['logits']));
  assert.deepEqual(logitsOnly.graph!.output!.map((output) => output.name), ['logits']);
  // Every remaining node feeds, directly or not, the one output left.
  const consumed = new Set(['logits', ...logitsOnly.graph!.node!.flatMap((node) => node.input ?? [])]);
  for (const node of logitsOnly.graph!.node!) assert.ok((node.output ?? []).some((name) => consumed.has(name)), `${node.name} feeds nothing`);
});
