// Request helpers for the inference protocol tests: JSON and binary-tensor bodies.
import { fromHalfBits } from '../../../src/float16.ts';

export interface JsonInput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown;
  parameters?: Record<string, unknown>;
}

type Target = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };

export function postJson(app: Target, model: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(app.request(`/v2/models/${model}/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
  }));
}

/** A binary-extension body: the JSON header, then each binary input's bytes in order. */
export function binaryBody(header: unknown, blobs: Uint8Array[]): { body: Uint8Array; headerLength: number } {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const body = new Uint8Array(json.byteLength + blobs.reduce((n, b) => n + b.byteLength, 0));
  body.set(json);
  let offset = json.byteLength;
  for (const blob of blobs) {
    body.set(blob, offset);
    offset += blob.byteLength;
  }
  return { body, headerLength: json.byteLength };
}

export function postBinary(app: Target, model: string, header: unknown, blobs: Uint8Array[], headerLength?: number): Promise<Response> {
  const built = binaryBody(header, blobs);
  return Promise.resolve(app.request(`/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength ?? built.headerLength) },
    body: built.body as Uint8Array<ArrayBuffer>,
  }));
}

export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** BYTES elements as the binary extension writes them: a 4-byte little-endian length, then the bytes. */
export function lengthPrefixed(strings: string[]): Uint8Array {
  const encoded = strings.map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.byteLength, 0));
  let offset = 0;
  for (const e of encoded) {
    new DataView(out.buffer).setUint32(offset, e.byteLength, true);
    out.set(e, offset + 4);
    offset += 4 + e.byteLength;
  }
  return out;
}

export const halvesToNumbers = (bits: Uint16Array) => Array.from(bits, fromHalfBits);
