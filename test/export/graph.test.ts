/** The graph builder, the chunked writer and the number formats of the quantized files. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { attr, Graph, MICROSOFT_DOMAIN } from '../../src/export/graph.ts';
import { MATMUL_WEIGHT_LIMIT, quantizeSymmetric, STORED_WEIGHT_LIMIT } from '../../src/export/quantize.ts';
import { toHalfBits } from '../../src/float16.ts';
import { FERRY_VERSION, serializeModel } from '../../src/export/writer.ts';

test('names stay unique, scopes prefix them, one typed array is one initializer', () => {
  const g = new Graph('g', 17);
  const x = g.addInput('x', 'float32', ['batch_size', 3]);
  const data = Float32Array.from([1, 2, 3]);
  const [a, b] = g.inScope('layer', () => [g.float('w', [3], data), g.float('w', [3], data)]);
  assert.equal(a, 'layer/w');
  assert.equal(b, a, 'the same array is stored once');
  assert.equal(g.inScope('layer', () => g.float('w', [3], Float32Array.from([4, 5, 6]))), 'layer/w_1');
  const y = g.inScope('layer', () => g.op('Add', [x, a!]));
  assert.match(y, /^layer\/Add_output_0$/);
  g.node('MultiHeadAttention', [], { num_heads: attr.int(2) }, { domain: MICROSOFT_DOMAIN });
  assert.equal(g.domains.get(MICROSOFT_DOMAIN), 1);
  assert.throws(() => g.addInput('x', 'float32', [1]), /already taken/);
  assert.throws(() => g.float('bad', [2, 2], [1, 2, 3]), /3 values for dims \[2,2\]/);
});

test('the chunked ModelProto decodes with onnx-proto and runs in onnxruntime', async () => {
  const g = new Graph('affine', 17);
  const x = g.addInput('x', 'float32', ['batch_size', 4]);
  const w = g.float('w', [4, 2], Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1]));
  const y = g.op('Add', [g.op('MatMul', [x, w]), g.float('b', [2], [0.5, -0.5])]);
  g.addOutput(y, 'y', 'float32', ['batch_size', 2]);
  const bytes = serializeModel(g, { docString: 'doc', properties: { ferry: { arch: 'foreign' }, note: 'text' } });
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  assert.equal(model.producerName, 'ferry');
  assert.equal(model.producerVersion, FERRY_VERSION);
  assert.equal(Number(model.irVersion), 8);
  assert.deepEqual(model.metadataProps.map((p) => [p.key, p.value]), [['ferry', '{"arch":"foreign"}'], ['note', 'text']]);
  const graph = model.graph as onnxProto.onnx.GraphProto;
  assert.deepEqual(graph.initializer.map((t) => t.name), ['w', 'b']);
  assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(graph.initializer[1]!.rawData as Uint8Array).buffer)), [0.5, -0.5]);
  assert.equal(graph.input[0]!.type?.tensorType?.shape?.dim?.[0]?.dimParam, 'batch_size');
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4]) });
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [4.5, 5.5]);
});

test('float16 bits round to nearest even, with subnormals, infinities and NaN', () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(65520), 0x7c00, 'rounds up to infinity');
  assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00, 'a tie rounds to even');
  assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(toHalfBits(2 ** -24), 0x0001, 'smallest subnormal');
  assert.equal(toHalfBits(2 ** -26), 0x0000);
  assert.equal(toHalfBits(Number.NEGATIVE_INFINITY), 0xfc00);
  assert.equal(toHalfBits(Number.NaN) & 0x7c00, 0x7c00);
  assert.notEqual(toHalfBits(Number.NaN) & 0x3ff, 0);
});

test('symmetric int8 keeps every weight within half a step of its column or row scale, inside the limit', () => {
  const data = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 4)));
  for (const limit of [MATMUL_WEIGHT_LIMIT, STORED_WEIGHT_LIMIT]) {
    for (const axis of [0, 1] as const) {
      const { q, scales } = quantizeSymmetric(data, 6, 4, axis, limit);
      assert.equal(scales.length, axis === 1 ? 4 : 6);
      const peaks = new Array<number>(scales.length).fill(0);
      for (let r = 0; r < 6; r++) {
        for (let c = 0; c < 4; c++) {
          const k = axis === 1 ? c : r;
          const s = scales[k]!;
          assert.ok(Math.abs(q[r * 4 + c]! * s - data[r * 4 + c]!) <= s / 2 + 1e-7);
          assert.ok(Math.abs(q[r * 4 + c]!) <= limit);
          peaks[k] = Math.max(peaks[k]!, Math.abs(q[r * 4 + c]!));
        }
      }
      assert.deepEqual(peaks, peaks.map(() => limit), 'each column or row uses its whole range');
    }
  }
  // 2 x 255 x 63 fits the int16 pair sums of AVX2's u8 x s8 product (vpmaddubsw); 127 would not.
  assert.ok(2 * 255 * MATMUL_WEIGHT_LIMIT <= 32767);
  assert.deepEqual(Array.from(quantizeSymmetric(new Float32Array(4), 2, 2, 1, MATMUL_WEIGHT_LIMIT).scales), [1, 1], 'an all-zero column gets scale 1');
});
