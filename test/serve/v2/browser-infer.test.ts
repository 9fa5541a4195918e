// The browser client's infer() on onnxruntime-web's WASM build (the runtime a page falls back to),
// run here in Node: same answers as the float64 reference, typed arrays or plain ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/errors.ts';
import { infer, openPlainModelFromFiles } from '../../../src/serve/browser/infer.ts';
import { openRuntime } from '../../../src/serve/runtime/index.ts';
import { denseClassifier, expectedLogits, identityOfEveryDatatype } from './models.ts';

test('infer() on onnxruntime-web WASM: typed or plain arrays in, typed arrays out, bad inputs as FerryErrors', async () => {
  const runtime = await openRuntime('wasm', () => {});
  const classifier = denseClassifier();
  const model = await openPlainModelFromFiles({ source: 'memory', manifest: classifier.spec, model: classifier.onnx }, { runtime });
  const identity = identityOfEveryDatatype();
  const echo = await openPlainModelFromFiles({ source: 'memory', manifest: identity.spec, model: identity.onnx }, { runtime });
  try {
    const rows = [[1, 2, 3, 4, 5, 6, 7, 8], [-1, 0, 1, 0, -1, 0, 1, 0.5]];
    const expected = expectedLogits(classifier, rows).flat();
    for (const data of [Float32Array.from(rows.flat()), rows.flat()]) {
      const out = await infer(model, { features: { shape: [2, 8], data } });
      assert.deepEqual(Object.keys(out), ['logits', 'probs']);
      assert.equal(out.logits!.datatype, 'FP32');
      assert.deepEqual(out.logits!.shape, [2, 3]);
      assert.ok(out.logits!.data instanceof Float32Array);
      (out.logits!.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5));
    }
    const probs = await infer(model, { features: { shape: [1, 8], data: rows[0]! } }, ['probs']);
    assert.deepEqual(Object.keys(probs), ['probs']);

    const inputs = Object.fromEntries(identity.spec.inputs.map((i) => [i.name, { shape: [1, 2], data: i.dtype === 'string' ? ['a', 'ü'] : i.dtype === 'bool' ? [true, false] : [1, 2] }]));
    const echoed = await infer(echo, inputs);
    assert.deepEqual(echoed.out_BYTES!.data, ['a', 'ü']);
    assert.deepEqual([...(echoed.out_INT64!.data as BigInt64Array)], [1n, 2n]);
    assert.deepEqual([...(echoed.out_BOOL!.data as Uint8Array)], [1, 0]);

    const cases: [Parameters<typeof infer>[1], RegExp][] = [
      [{}, /needs input "features"/],
      [{ features: { shape: [1, 7], data: new Float32Array(7) } }, /has shape \[1, 7\]; classifier takes \[-1, 8\]/],
      [{ features: { shape: [1, 8], data: new Float32Array(9) } }, /holds 8 elements but data has 9/],
      [{ features: { shape: [1, 8], data: [1, 2, 3, 4, 5, 6, 7, 'x'] } }, /data\[7\] is "x", not a number/],
      [{ features: { shape: [1, 8], data: new Float32Array(8) }, extra: { shape: [1], data: [1] } }, /has no input "extra"/],
    ];
    for (const [given, message] of cases) {
      await assert.rejects(infer(model, given), (error: unknown) => error instanceof FerryError && error.status === 400 && message.test(error.message), String(message));
    }
    await assert.rejects(infer(model, { features: { shape: [1, 8], data: new Float32Array(8) } }, ['scores']), /has no output "scores"/);
    await assert.rejects(
      openPlainModelFromFiles({ source: 'memory', manifest: classifier.spec, model: classifier.onnx }, { runtime, maxModelBytes: 100, limitReason: 'a test limit' }),
      (error: unknown) => error instanceof FerryError && error.status === 507 && /classifier: its model file is .* over the 0.1 kB this runtime allows \(a test limit\)/.test(error.message),
    );
  } finally {
    await model.close();
    await echo.close();
  }
});
