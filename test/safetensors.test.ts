// safetensors (src/safetensors.ts): round trip, the header's layout, and damaged files refused by name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../src/errors.ts';
import { mulberry32 } from '../src/random.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../src/safetensors.ts';

const random = mulberry32(3);
const tensors = new Map<string, NamedTensor>([
  ['shared.weight', { shape: [5, 3], data: Float32Array.from({ length: 15 }, () => random() - 0.5) }],
  ['encoder.final_layer_norm.weight', { shape: [3], data: Float32Array.of(1, 2, 3) }],
  ['scalar', { shape: [], data: Float32Array.of(-7.25) }],
]);

test('tensors round-trip with their names, shapes, order and exact values; the header is padded to 8 bytes', () => {
  const bytes = encodeSafetensors(tensors, { format: 'pt' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLength % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, { dtype: string; data_offsets: number[] }>;
  assert.deepEqual(header.__metadata__, { format: 'pt' });
  assert.deepEqual(header['encoder.final_layer_norm.weight'], { dtype: 'F32', shape: [3], data_offsets: [60, 72] });
  const decoded = decodeSafetensors(bytes, 'model.safetensors');
  assert.deepEqual([...decoded.keys()], [...tensors.keys()]);
  for (const [name, tensor] of tensors) assert.deepEqual(decoded.get(name), tensor, name);
  // An unaligned copy of the file reads the same.
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  assert.deepEqual(decodeSafetensors(shifted, 'x').get('shared.weight'), tensors.get('shared.weight'));
});

test('damaged files are one invalid_safetensors error naming the file and what is wrong', () => {
  const good = encodeSafetensors(tensors);
  const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
  const withHeader = (header: unknown) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + 12);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(3), /fewer than the 8/],
    ['truncated data', good.subarray(0, good.length - 4), /needs 4 bytes/],
    ['truncated header', good.subarray(0, 8 + headerLength - 5), /runs past/],
    ['header not JSON', (() => { const b = good.slice(); b[8] = 0x7b; b[9] = 0x7b; return b; })(), /not JSON/],
    ['a half-precision tensor', withHeader({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }), /dtype "F16"; ferry reads F32 only/],
    ['offsets that disagree with the shape', withHeader({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }), /needs 8 bytes/],
    ['a negative dim', withHeader({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }), /shape \[-1\]/],
    ['a header array', withHeader([1, 2]), /not a JSON object/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => decodeSafetensors(bytes, '/runs/a/best/model.safetensors'), (error: unknown) => {
      assert.ok(error instanceof FerryError, what);
      assert.equal(error.code, 'invalid_safetensors', what);
      assert.match(error.message, /\/runs\/a\/best\/model\.safetensors/, what);
      assert.match(error.message, message, what);
      return true;
    });
  }
});
