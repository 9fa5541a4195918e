/**
 * Child process of webgpu.test.ts (WebGPU needs the Vulkan driver in the environment at
 * start-up): runs each ONNX file given on the command line with onnxruntime-node's WebGPU EP
 * (the manifest's cpuOnlyNodes forced onto CPU) and with the CPU EP — for language models a
 * left-padded batch, then one decode step through the state outputs — and prints one JSON line
 * per file with the max |diff|.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';

type Feeds = Record<string, ort.Tensor>;

type InputMeta = { name: string; shape: (string | number)[] };

function firstFeeds(session: ort.InferenceSession, meta: InputMeta[]): Feeds {
  const feeds: Feeds = {};
  for (const input of meta) {
    const dims = input.shape;
    if (input.name === 'input_ids') feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from([0n, 5n, 2n, 7n, 1n, 3n, 9n, 4n]), [2, 4]);
    else if (input.name.startsWith('past_key_values')) feeds[input.name] = new ort.Tensor('float32', new Float32Array(0), [2, dims[1] as number, 0, dims[3] as number]);
    else if (input.name.startsWith('past_')) feeds[input.name] = new ort.Tensor('float32', new Float32Array(2 * (dims[1] as number)).fill(0.05), [2, dims[1] as number]);
    else if (!['attention_mask', 'position_ids'].includes(input.name)) {
      // A foreign model's float input: batch 2, sequence 3.
      const shape = dims.map((d) => (d === 'batch_size' ? 2 : typeof d === 'number' ? d : 3));
      const size = shape.reduce((a, b) => a * b, 1);
      feeds[input.name] = new ort.Tensor('float32', Float32Array.from({ length: size }, (_, i) => Math.sin(i)), shape);
    }
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

/** The first output after one call, and (language models) after a second call through the state. */
async function outputs(file: string, ep: 'cpu' | 'webgpu', meta: InputMeta[], forceCpuNodeNames: string[]): Promise<Float32Array[]> {
  // ORT refuses an empty option value, so the option is given only when there are names.
  const provider = ep === 'webgpu' && forceCpuNodeNames.length > 0 ? ({ name: 'webgpu', forceCpuNodeNames } as unknown as 'webgpu') : ep;
  const session = await ort.InferenceSession.create(await readFile(file), { executionProviders: [provider], logSeverityLevel: 3 });
  const feeds = firstFeeds(session, meta);
  const first = await session.run(feeds);
  const results = [first[session.outputNames[0]!]!.data as Float32Array];
  if (feeds.input_ids) results.push((await session.run(nextFeeds(session, first, feeds)))[session.outputNames[0]!]!.data as Float32Array);
  await session.release();
  return results;
}

for (const arg of process.argv.slice(2)) {
  const { file, inputs, cpuOnlyNodes } = JSON.parse(arg) as { file: string; inputs: InputMeta[]; cpuOnlyNodes: string[] };
  try {
    const [cpu, gpu] = [await outputs(file, 'cpu', inputs, []), await outputs(file, 'webgpu', inputs, cpuOnlyNodes)];
    let max = 0;
    cpu.forEach((a, k) => a.forEach((x, i) => (max = Math.max(max, Math.abs(x - gpu[k]![i]!)))));
    console.log(JSON.stringify({ file, maxAbsDiff: max }));
  } catch (error) {
    console.log(JSON.stringify({ file, error: String(error).slice(0, 300) }));
  }
}
