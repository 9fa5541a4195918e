/**
 * An inference response: all JSON, or, when any output is asked for as binary, Triton's form: a
 * JSON header (its length in Inference-Header-Content-Length) followed by the binary outputs.
 */
import type { NamedTensors, Tensor } from '../../package/session.ts';
import { v2DatatypeOf } from './datatypes.ts';
import { jsonDataText } from './json-tensors.ts';
import type { RequestedOutput } from './request.ts';

export interface ResponseHead {
  modelName: string;
  modelVersion: string;
  id?: string;
}

export function inferResponse(head: ResponseHead, requested: readonly RequestedOutput[], outputs: NamedTensors): Response {
  const parts: string[] = [];
  const blobs: Uint8Array[] = [];
  for (const { name, binary } of requested) {
    const tensor = outputs[name]!;
    const meta = `"name":${JSON.stringify(name)},"datatype":"${v2DatatypeOf(tensor.dtype)}","shape":[${tensor.dims.join(',')}]`;
    if (binary) {
      const bytes = binaryBytes(tensor);
      blobs.push(bytes);
      parts.push(`{${meta},"parameters":{"binary_data_size":${bytes.byteLength}}}`);
    } else {
      parts.push(`{${meta},"data":${jsonDataText(tensor)}}`);
    }
  }
  const id = head.id === undefined ? '' : `"id":${JSON.stringify(head.id)},`;
  const json = `{"model_name":${JSON.stringify(head.modelName)},"model_version":${JSON.stringify(head.modelVersion)},${id}"outputs":[${parts.join(',')}]}`;
  if (!blobs.length) return new Response(json, { headers: { 'content-type': 'application/json' } });
  const header = new TextEncoder().encode(json);
  return new Response(new Blob([header, ...blobs] as BlobPart[]), {
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
  });
}

/** Raw little-endian elements (every platform ferry runs on is little-endian); BYTES length-prefixed. */
function binaryBytes(tensor: Tensor): Uint8Array {
  if (tensor.dtype !== 'string') return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const encoded = tensor.data.map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.byteLength, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const bytes of encoded) {
    view.setUint32(offset, bytes.byteLength, true);
    out.set(bytes, offset + 4);
    offset += 4 + bytes.byteLength;
  }
  return out;
}
