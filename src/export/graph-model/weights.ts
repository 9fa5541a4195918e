/**
 * Decodes the weight shards of a graph model: every group's files concatenated, each weight read
 * at its offset in its manifest's dtype, quantized weights (uint8 / uint16 affine with scale and
 * min, float16) dequantized to float32 as tfjs does when it loads them.
 */
import { FerryError } from '../../errors.ts';
import type { Tensor, WeightSpec } from './format.ts';

/** Bytes per element of each stored dtype (the quantized one where a weight is quantized). */
const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

export interface WeightGroup {
  files: string[];
  bytes: Uint8Array;
  weights: WeightSpec[];
}

function storedDtype(spec: WeightSpec): string {
  return spec.quantization?.dtype ?? spec.dtype;
}

function unknownDtype(spec: WeightSpec, file: string): FerryError {
  const kind = spec.quantization ? `quantization dtype ${JSON.stringify(spec.quantization.dtype)}` : `dtype ${JSON.stringify(spec.dtype)}`;
  return new FerryError('export_unknown_dtype', `${file}: weight ${spec.name} has ${kind}, which ferry cannot read`, {
    hint: `Weight dtypes ferry reads: ${Object.keys(STORED_BYTES).join(', ')} (uint8/uint16/float16 as quantization).`,
    status: 422,
  });
}

/** The byte size the manifest promises for a group (throws on a dtype ferry cannot read). */
export function expectedBytes(weights: WeightSpec[], file: string): number {
  let total = 0;
  for (const spec of weights) {
    const size = STORED_BYTES[storedDtype(spec)];
    if (size === undefined) throw unknownDtype(spec, file);
    total += size * spec.shape.reduce((a, b) => a * b, 1);
  }
  return total;
}

/** IEEE half to float: the exact conversion tfjs uses for float16 weights. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

let halfTable: Float32Array | undefined;
/** Every half's float value, computed once: a 25 MB float16 model decodes by lookup. */
function halves(): Float32Array {
  halfTable ??= Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
  return halfTable;
}

/** `count` little-endian uint16s at `offset`, copied to an aligned array. */
function uint16s(view: DataView, offset: number, count: number): Uint16Array {
  return new Uint16Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + 2 * count));
}

function decode(spec: WeightSpec, view: DataView, offset: number, count: number, file: string): Tensor {
  const dims = [...spec.shape];
  const q = spec.quantization;
  if (q) {
    if (spec.dtype !== 'float32' && !(q.dtype !== 'float16' && spec.dtype === 'int32')) throw unknownDtype(spec, file);
    const out = spec.dtype === 'int32' ? new Int32Array(count) : new Float32Array(count);
    if (q.dtype === 'float16') {
      const table = halves();
      const codes = uint16s(view, offset, count);
      for (let i = 0; i < count; i++) out[i] = table[codes[i]!]!;
    } else {
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      const codes = q.dtype === 'uint16' ? uint16s(view, offset, count) : new Uint8Array(view.buffer, view.byteOffset + offset, count);
      for (let i = 0; i < count; i++) out[i] = codes[i]! * scale + min;
      if (out instanceof Int32Array) for (let i = 0; i < count; i++) out[i] = Math.round(codes[i]! * scale + min);
    }
    return { dtype: spec.dtype === 'int32' ? 'int32' : 'float32', dims, data: out };
  }
  const bytes = view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + count * STORED_BYTES[spec.dtype]!);
  switch (spec.dtype) {
    case 'float32': return { dtype: 'float32', dims, data: new Float32Array(bytes) };
    case 'int32': return { dtype: 'int32', dims, data: new Int32Array(bytes) };
    case 'bool': return { dtype: 'bool', dims, data: new Uint8Array(bytes) };
    default: throw unknownDtype(spec, file);
  }
}

/** Every weight of every group, by name. */
export function decodeWeights(groups: WeightGroup[]): Map<string, Tensor> {
  const weights = new Map<string, Tensor>();
  for (const group of groups) {
    const view = new DataView(group.bytes.buffer, group.bytes.byteOffset, group.bytes.byteLength);
    const file = group.files.join(', ');
    let offset = 0;
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      weights.set(spec.name, decode(spec, view, offset, count, file));
      offset += count * STORED_BYTES[storedDtype(spec)]!;
    }
  }
  return weights;
}
