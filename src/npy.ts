/**
 * NumPy's .npy format (format versions 1.0-3.0), the one owner of it: `ferry infer` reads inputs
 * and writes outputs with it, and tests and clients can use it too. C order, little-endian; text
 * as '<U' (UTF-32) or '|S' (bytes, read as UTF-8). No Node APIs.
 */
import { FerryError } from './errors.ts';
import type { Tensor, TensorDType } from './package/session.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR: Record<Exclude<TensorDType, 'string'>, string> = {
  bool: '|b1', uint8: '|u1', int8: '|i1', uint16: '<u2', int16: '<i2', float16: '<f2',
  uint32: '<u4', int32: '<i4', float32: '<f4', uint64: '<u8', int64: '<i8', float64: '<f8',
};
const BY_DESCR = new Map(Object.entries(DESCR).map(([dtype, descr]) => [descr, dtype as Exclude<TensorDType, 'string'>]));
// One-byte types may also be written with '<' or '=' (numpy writes '|', other writers differ).
for (const [dtype, descr] of Object.entries(DESCR)) if (descr.startsWith('|')) for (const order of ['<', '=']) BY_DESCR.set(order + descr.slice(1), dtype as Exclude<TensorDType, 'string'>);

const ARRAYS = {
  bool: Uint8Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, float16: Uint16Array,
  uint32: Uint32Array, int32: Int32Array, float32: Float32Array, uint64: BigUint64Array, int64: BigInt64Array, float64: Float64Array,
} as const;

/** The tensor in a .npy file; `source` names it in errors. */
export function decodeNpy(bytes: Uint8Array, source: string): Tensor {
  const bad = (problem: string) => new FerryError('bad_npy', `${source}: ${problem}`, { hint: 'write it with numpy.save (C order, little-endian), or pass the tensor as JSON' });
  if (bytes.byteLength < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw bad(`.npy format version ${major} is not one ferry reads (1-3)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes + headerLength;
  if (start > bytes.byteLength) throw bad('the header runs past the end of the file');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lengthBytes, start));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`the header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  if (fortran === 'True') throw bad('the array is in Fortran order; save a C-ordered copy (numpy.ascontiguousarray)');
  const dims = shapeText.split(',').map((d) => d.trim()).filter(Boolean).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`shape (${shapeText}) is not a tuple of sizes`);
  const count = dims.reduce((n, d) => n * d, 1);
  const body = bytes.subarray(start);
  const text = /^([<|=])([US])(\d+)$/.exec(descr);
  if (text) return { dtype: 'string', dims, data: decodeText(body, text[2] as 'U' | 'S', Number(text[3]), count, bad) };
  const dtype = BY_DESCR.get(descr);
  if (!dtype) throw bad(`dtype '${descr}' is not one ONNX models take${descr.startsWith('>') ? ' (it is big-endian: save it as little-endian)' : ''}`);
  const Array = ARRAYS[dtype];
  if (body.byteLength !== count * Array.BYTES_PER_ELEMENT) throw bad(`shape (${shapeText}) of '${descr}' takes ${count * Array.BYTES_PER_ELEMENT} bytes but the file holds ${body.byteLength}`);
  const copy = body.slice();
  return { dtype, dims, data: new Array(copy.buffer, 0, count) } as Tensor;
}

function decodeText(body: Uint8Array, kind: 'U' | 'S', width: number, count: number, bad: (problem: string) => Error): string[] {
  const itemBytes = kind === 'U' ? width * 4 : width;
  if (body.byteLength !== count * itemBytes) throw bad(`${count} strings of width ${width} take ${count * itemBytes} bytes but the file holds ${body.byteLength}`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return Array.from({ length: count }, (_, i) => {
    if (kind === 'S') {
      const item = body.subarray(i * itemBytes, (i + 1) * itemBytes);
      const end = item.indexOf(0);
      try {
        return decoder.decode(end < 0 ? item : item.subarray(0, end));
      } catch {
        throw bad(`string ${i} is not UTF-8`);
      }
    }
    let text = '';
    for (let c = 0; c < width; c++) {
      const code = view.getUint32(i * itemBytes + c * 4, true);
      if (code === 0) break;
      text += String.fromCodePoint(code);
    }
    return text;
  });
}

/** A .npy file (version 1.0, or 2.0 when the header needs it) holding the tensor. */
export function encodeNpy(tensor: Tensor): Uint8Array {
  const width = tensor.dtype === 'string' ? Math.max(1, ...tensor.data.map((s) => [...s].length)) : 0;
  const descr = tensor.dtype === 'string' ? `<U${width}` : DESCR[tensor.dtype];
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const major = header.length + 11 > 65535 ? 2 : 1;
  const prefix = 8 + (major === 1 ? 2 : 4);
  header += ' '.repeat((64 - ((prefix + header.length + 1) % 64)) % 64) + '\n';
  const body = tensor.dtype === 'string' ? encodeUtf32(tensor.data, width) : new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const out = new Uint8Array(prefix + header.length + body.byteLength);
  out.set(MAGIC);
  out[6] = major;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(body, prefix + header.length);
  return out;
}

function encodeUtf32(strings: string[], width: number): Uint8Array {
  const out = new Uint8Array(strings.length * width * 4);
  const view = new DataView(out.buffer);
  strings.forEach((s, i) => [...s].forEach((ch, c) => view.setUint32((i * width + c) * 4, ch.codePointAt(0)!, true)));
  return out;
}
