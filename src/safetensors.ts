/**
 * The safetensors format (Hugging Face's): an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then the raw little-endian data. ferry writes
 * and reads float32 tensors only (T5 checkpoints' model.safetensors), which is what PyTorch's
 * `safetensors.torch.load_file` and transformers read as a state dict.
 */
import { FerryError } from './errors.ts';

export interface NamedTensor {
  shape: readonly number[];
  data: Float32Array;
}

const HEADER_ALIGNMENT = 8;
/** A bound on the header, as the reference implementation has (100 MB), so a damaged length cannot allocate gigabytes. */
const MAX_HEADER_BYTES = 100_000_000;

/** The file's bytes; tensors are laid out in the map's order, the header padded with spaces to 8 bytes. */
export function encodeSafetensors(tensors: ReadonlyMap<string, NamedTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, { shape, data }] of tensors) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new RangeError(`${name}: shape [${shape.join(', ')}] holds ${count} values, the data ${data.length}`);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const { data } of tensors.values()) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Every tensor of a safetensors file, in the order of their data; `file` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, file: string): Map<string, NamedTensor> {
  const bad = (problem: string) => new FerryError('invalid_safetensors', `${file} is not a readable safetensors file: ${problem}.`, {
    hint: 'The file is damaged or truncated; restore it, or train again.',
  });
  if (bytes.length < 8) throw bad(`it has ${bytes.length} bytes, fewer than the 8 of the header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) throw bad(`the header length ${headerLength} runs past the file's ${bytes.length} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    throw bad(`the header is not JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('the header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const entries = Object.entries(header as Record<string, unknown>).filter(([name]) => name !== '__metadata__');
  const tensors: [string, NamedTensor, number][] = [];
  for (const [name, value] of entries) {
    const entry = (typeof value === 'object' && value !== null ? value : {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (entry.dtype !== 'F32') throw bad(`tensor ${name} has dtype ${JSON.stringify(entry.dtype)}; ferry reads F32 only`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor ${name} has shape ${JSON.stringify(shape)}`);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) throw bad(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLength || end - begin !== count * 4) {
      throw bad(`tensor ${name} [${shape.join(', ')}] needs ${count * 4} bytes, its data_offsets [${begin}, ${end}] give ${end - begin} of ${dataLength}`);
    }
    // A copy: the file's bytes need not be 4-byte aligned for a Float32Array view.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.push([name, { shape: shape as number[], data }, begin]);
  }
  tensors.sort((a, b) => a[2] - b[2]);
  return new Map(tensors.map(([name, tensor]) => [name, tensor]));
}
