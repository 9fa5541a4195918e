import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { FerryError } from '../../src/errors.ts';
import { fromHalfBits } from '../../src/float16.ts';
import { decodeNpy, encodeNpy } from '../../src/npy.ts';
import type { Tensor } from '../../src/package/session.ts';

const file = (name: string) => new Uint8Array(readFileSync(new URL(name, import.meta.url)));

test("numpy's files read as the arrays numpy wrote, and write back byte for byte", () => {
  const expected: Record<string, [Tensor['dtype'], number[], unknown[]]> = {
    'f4.npy': ['float32', [2, 3], [-0.5, -0.25, 0, 0.25, 0.5, 0.75]],
    'i8.npy': ['int64', [4], [-(2n ** 63n), 2n ** 63n - 1n, 0n, 7n]],
    'b1.npy': ['bool', [2, 2], [1, 0, 0, 1]],
    'u1.npy': ['uint8', [3], [0, 128, 255]],
    'f2.npy': ['float16', [3], [1.5, -2, 65504]],
    'u8.npy': ['uint64', [1, 1], [2n ** 64n - 1n]],
    'scalar.npy': ['float64', [], [3.25]],
    'U.npy': ['string', [3], ['héllo', '😀', '']],
  };
  for (const [name, [dtype, dims, values]] of Object.entries(expected)) {
    const bytes = file(name);
    const tensor = decodeNpy(bytes, name);
    assert.equal(tensor.dtype, dtype, name);
    assert.deepEqual(tensor.dims, dims, name);
    const read = tensor.dtype === 'float16' ? Array.from(tensor.data, fromHalfBits) : Array.from(tensor.data as ArrayLike<unknown>);
    assert.deepEqual(read, values, name);
    assert.deepEqual(encodeNpy(tensor), bytes, `${name} written as numpy writes it`);
  }
});

test('files ferry cannot read are refused with a FerryError naming the file and the problem', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['fortran.npy', file('fortran.npy'), /Fortran order/],
    ['big-endian.npy', file('big-endian.npy'), /'>i4'.*big-endian/],
    ['text.npy', new TextEncoder().encode('hello world, not numpy'), /no \\x93NUMPY magic/],
    ['short.npy', file('f4.npy').subarray(0, 140), /takes 24 bytes but the file holds 12/],
    ['header.npy', file('f4.npy').subarray(0, 40), /header runs past the end/],
  ];
  for (const [name, bytes, message] of cases) {
    assert.throws(() => decodeNpy(bytes, name), (error: unknown) => error instanceof FerryError && error.message.startsWith(`${name}: `) && message.test(error.message), name);
  }
});

test('any tensor survives encode then decode', () => {
  const dims = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });
  fc.assert(fc.property(dims, fc.integer({ min: 0, max: 2 ** 31 }), (shape, seed) => {
    const count = shape.reduce((n, d) => n * d, 1);
    const data = Int32Array.from({ length: count }, (_, i) => (seed + i * 2654435761) | 0);
    const tensor: Tensor = { dtype: 'int32', dims: shape, data };
    const back = decodeNpy(encodeNpy(tensor), 'x.npy');
    assert.deepEqual(back, tensor);
  }), { seed: 19, numRuns: 200 });
  const wide: Tensor = { dtype: 'float32', dims: Array.from({ length: 25_000 }, () => 1), data: Float32Array.of(2) };
  const encoded = encodeNpy(wide);
  assert.equal(encoded[6], 2, 'a header over 64 KiB takes format 2.0');
  assert.deepEqual(decodeNpy(encoded, 'wide.npy'), wide);
});
