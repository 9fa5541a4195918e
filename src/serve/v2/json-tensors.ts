/**
 * Tensors as the protocol writes them in JSON: `data` row-major, flat or nested to the shape.
 * Floats that JSON cannot hold travel as the strings "NaN", "Infinity" and "-Infinity".
 */
import { fromHalfBits, toHalfBits } from '../../float16.ts';
import type { Tensor, TensorArrays, TensorDType } from '../../package/session.ts';
import { allocate } from './arrays.ts';
import { V2_DATATYPES, type V2Datatype } from './datatypes.ts';
import { protocolError } from './errors.ts';
import { elementCount } from './shape.ts';

const INTEGER_RANGES: Partial<Record<TensorDType, [bigint, bigint]>> = {
  int8: [-128n, 127n], int16: [-32768n, 32767n], int32: [-(2n ** 31n), 2n ** 31n - 1n], int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint8: [0n, 255n], uint16: [0n, 65535n], uint32: [0n, 2n ** 32n - 1n], uint64: [0n, 2n ** 64n - 1n],
};

const SPECIAL_FLOATS: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/** `data` of an input as a typed tensor, or a 400 naming the input and the first bad element. */
export function decodeJsonTensor(name: string, datatype: V2Datatype, shape: readonly number[], data: unknown): Tensor {
  const dtype = V2_DATATYPES[datatype];
  const expected = elementCount(shape);
  const flat: unknown[] = [];
  flatten(data, shape.length, flat, name);
  if (flat.length !== expected) {
    throw protocolError(400, `input "${name}": shape [${shape.join(', ')}] holds ${expected} elements but data has ${flat.length}`);
  }
  const out = allocate(dtype, expected);
  const write = writerFor(dtype, out, name, datatype);
  for (let i = 0; i < expected; i++) write(i, flat[i]);
  return { dtype, dims: [...shape], data: out } as Tensor;
}

// Nested no deeper than the rank: a malicious body cannot recurse without bound.
function flatten(value: unknown, depthLeft: number, out: unknown[], name: string): void {
  if (!Array.isArray(value)) throw protocolError(400, `input "${name}": data must be an array`);
  for (const item of value) {
    if (Array.isArray(item)) {
      if (depthLeft <= 1) throw protocolError(400, `input "${name}": data is nested deeper than its shape`);
      flatten(item, depthLeft - 1, out, name);
    } else {
      out.push(item);
    }
  }
}

function writerFor(dtype: TensorDType, out: TensorArrays[TensorDType], name: string, datatype: V2Datatype): (i: number, value: unknown) => void {
  const bad = (i: number, value: unknown, what: string) => protocolError(400, `input "${name}": data[${i}] is ${JSON.stringify(value) ?? String(value)}, not ${what} (datatype ${datatype})`);
  if (dtype === 'string') {
    return (i, value) => {
      if (typeof value !== 'string') throw bad(i, value, 'a string');
      (out as string[])[i] = value;
    };
  }
  if (dtype === 'bool') {
    return (i, value) => {
      if (typeof value !== 'boolean') throw bad(i, value, 'true or false');
      (out as Uint8Array)[i] = value ? 1 : 0;
    };
  }
  if (dtype === 'float32' || dtype === 'float64' || dtype === 'float16') {
    const target = out as Float32Array;
    const half = dtype === 'float16';
    return (i, value) => {
      const number = typeof value === 'number' ? value : typeof value === 'string' && Object.hasOwn(SPECIAL_FLOATS, value) ? SPECIAL_FLOATS[value]! : undefined;
      if (number === undefined) throw bad(i, value, 'a number');
      target[i] = half ? toHalfBits(number) : number;
    };
  }
  const [min, max] = INTEGER_RANGES[dtype]!;
  if (dtype === 'int64' || dtype === 'uint64') {
    const target = out as BigInt64Array;
    return (i, value) => {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw bad(i, value, 'an integer');
      const big = BigInt(value);
      if (big < min || big > max) throw bad(i, value, `an integer in [${min}, ${max}]`);
      target[i] = big;
    };
  }
  const target = out as Int32Array;
  const low = Number(min);
  const high = Number(max);
  return (i, value) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) throw bad(i, value, 'an integer');
    if (value < low || value > high) throw bad(i, value, `an integer in [${low}, ${high}]`);
    target[i] = value;
  };
}

/** The JSON text of a tensor's elements as a flat array: 64-bit integers exactly, floats that JSON lacks as strings. */
export function jsonDataText(tensor: Tensor): string {
  switch (tensor.dtype) {
    case 'string': return JSON.stringify(tensor.data);
    case 'bool': return `[${Array.from(tensor.data, (b) => (b ? 'true' : 'false')).join(',')}]`;
    case 'int64': case 'uint64': return `[${Array.from(tensor.data as BigInt64Array, String).join(',')}]`;
    case 'float16': return `[${Array.from(tensor.data, (bits) => floatText(fromHalfBits(bits))).join(',')}]`;
    case 'float32': case 'float64': return `[${Array.from(tensor.data, floatText).join(',')}]`;
    default: return `[${Array.from(tensor.data as Int32Array, String).join(',')}]`;
  }
}

function floatText(value: number): string {
  return Number.isFinite(value) ? String(value) : `"${value}"`;
}
