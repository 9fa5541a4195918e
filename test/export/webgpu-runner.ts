/**
 * Child process of webgpu.test.ts (WebGPU needs the Vulkan driver in the environment at
 * start-up): runs each ONNX file given on the command line with onnxruntime-node's WebGPU EP and
 * with the CPU EP — a left-padded batch, then one decode step through the state outputs — and
 * prints one JSON line per file with the max |diff|.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';

type Feeds = Record<string, ort.Tensor>;

function firstFeeds(session: ort.InferenceSession, meta: { name: string; shape: (string | number)[] }[]): Feeds {
  const feeds: Feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 5n, 2n, 7n, 1n, 3n, 9n, 4n]), [2, 4]) };
  for (const input of meta) {
    const dims = input.shape;
    if (input.name.startsWith('past_key_values')) feeds[input.name] = new ort.Tensor('float32', new Float32Array(0), [2, dims[1] as number, 0, dims[3] as number]);
    else if (input.name.startsWith('past_')) feeds[input.name] = new ort.Tensor('float32', new Float32Array(2 * (dims[1] as number)).fill(0.05), [2, dims[1] as number]);
  }
  if (session.inputNames.includes('attention_mask')) {
    feeds.attention_mask = new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 1n, 1n, 1n, 1n, 1n, 1n]), [2, 4]);
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from([0n, 0n, 1n, 2n, 0n, 1n, 2n, 3n]), [2, 4]);
  }
  return feeds;
}

function nextFeeds(session: ort.InferenceSession, out: Record<string, ort.Tensor>, feeds: Feeds): Feeds {
  const next: Feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from([6n, 8n]), [2, 1]) };
  for (const name of session.inputNames) {
    if (name.startsWith('past_key_values.')) next[name] = out[name.replace('past_key_values.', 'present.')]!;
    else if (name.startsWith('past_')) next[name] = out[name.replace('past_', 'present_')]!;
  }
  if (feeds.attention_mask) {
    next.attention_mask = new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n]), [2, 5]);
    next.position_ids = new ort.Tensor('int64', BigInt64Array.from([3n, 4n]), [2, 1]);
  }
  return next;
}

async function logits(file: string, ep: 'cpu' | 'webgpu', meta: { name: string; shape: (string | number)[] }[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(await readFile(file), { executionProviders: [ep], logSeverityLevel: 3 });
  const feeds = firstFeeds(session, meta);
  const first = await session.run(feeds);
  const second = await session.run(nextFeeds(session, first, feeds));
  await session.release();
  return [first.logits!.data as Float32Array, second.logits!.data as Float32Array];
}

for (const arg of process.argv.slice(2)) {
  const { file, inputs } = JSON.parse(arg) as { file: string; inputs: { name: string; shape: (string | number)[] }[] };
  try {
    const [cpu, gpu] = [await logits(file, 'cpu', inputs), await logits(file, 'webgpu', inputs)];
    let max = 0;
    cpu.forEach((a, k) => a.forEach((x, i) => (max = Math.max(max, Math.abs(x - gpu[k]![i]!)))));
    console.log(JSON.stringify({ file, maxAbsDiff: max }));
  } catch (error) {
    console.log(JSON.stringify({ file, error: String(error).slice(0, 300) }));
  }
}
