/**
 * Load for bench/serve-v2.ts, in a process of its own: `--concurrency` clients each sending
 * `--requests` inference requests one after another with a 224x224x3 float image, as JSON or as
 * a binary tensor (Triton's extension), over HTTP. Prints one JSON line: throughput and latencies.
 *
 *   node --import tsx bench/serve-v2-client.ts --url URL --model NAME [--concurrency 32] [--requests 4] [--mode binary|json]
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { url: { type: 'string' }, model: { type: 'string', default: 'mobilenet' }, concurrency: { type: 'string', default: '1' }, requests: { type: 'string', default: '4' }, mode: { type: 'string', default: 'binary' } } });
const concurrency = Number(values.concurrency);
const perClient = Number(values.requests);
const image = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => ((i * 7919) % 256) / 255);
const shape = [1, 224, 224, 3];

function body(): { body: Uint8Array | string; headers: Record<string, string> } {
  if (values.mode === 'json') {
    return { body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'FP32', shape, data: Array.from(image) }] }), headers: { 'content-type': 'application/json' } };
  }
  const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: 'image', datatype: 'FP32', shape, parameters: { binary_data_size: image.byteLength } }], parameters: { binary_data_output: true } }));
  const bytes = new Uint8Array(header.byteLength + image.byteLength);
  bytes.set(header);
  bytes.set(new Uint8Array(image.buffer), header.byteLength);
  return { body: bytes, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) } };
}

const url = `${values.url}/v2/models/${values.model}/infer`;
const latencies: number[] = [];

async function one(): Promise<void> {
  // The body is encoded per request, as a client holding a fresh image would.
  const started = performance.now();
  const request = body();
  const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body as BodyInit });
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`status ${response.status}: ${new TextDecoder().decode(bytes).slice(0, 200)}`);
  if (values.mode === 'json') JSON.parse(new TextDecoder().decode(bytes));
  latencies.push(performance.now() - started);
}

const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  for (let i = 0; i < perClient; i++) await one();
}));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const quantile = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!;
console.log(JSON.stringify({ mode: values.mode, concurrency, requests: latencies.length, seconds, requestsPerSecond: latencies.length / seconds, p50Ms: quantile(0.5), p99Ms: quantile(0.99) }));
