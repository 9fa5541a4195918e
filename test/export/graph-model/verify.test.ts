// Graph-model parity (src/export/graph-model/verify.ts): a Sigmoid or Softmax output is measured on
// the scale of its logits, which the activation hides, and a real difference still fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../../src/errors.ts';
import { convertGraphModel, graphModelIO } from '../../../src/export/graph-model/convert.ts';
import { readGraphModel } from '../../../src/export/graph-model/read.ts';
import { squashedOutputs, verifyGraphModel } from '../../../src/export/graph-model/verify.ts';
import { serializeModel } from '../../../src/export/writer.ts';
import { a, type GraphModelBuilder } from './builder.ts';
import { convertAndVerify, writeModel } from './helpers.ts';

const matmul = { transpose_a: a.b(false), transpose_b: a.b(false) };

/** Logits of scale ~100 (weights times `gain`) under a Sigmoid (through an Identity) and a Softmax, and a plain output. */
function squashingModel(gain: number, shift = 0) {
  return (b: GraphModelBuilder) => {
    const x = b.placeholder('x', [-1, 8]);
    const big = (name: string, seed: number, first = 0) => b.constant(name, [8, 6], Array.from({ length: 48 }, (_, i) => gain * Math.sin(i * seed) + (i === 0 ? first : 0)));
    const logits = b.node('MatMul', 'logits', [x, big('w1', 1.7, shift)], matmul);
    const mask = b.node('Sigmoid', 'mask_sigmoid', [logits]);
    b.node('Identity', 'mask', [mask]);
    b.node('Softmax', 'probs', [b.node('MatMul', 'scores', [x, big('w2', 2.3)], matmul)]);
    b.node('Relu', 'plain', [b.node('MatMul', 'hidden', [x, big('w3', 0.9)], matmul)]);
    b.output('mask');
    b.output('probs');
    b.output('plain');
  };
}

test("a Sigmoid or Softmax output is measured on its activation's slope times its logits' scale; other outputs on their own", async () => {
  const { report } = await convertAndVerify(squashingModel(60));
  const byOutput = (name: string) => report.cases.filter((c) => c.name.startsWith(`${name},`));
  for (const c of byOutput('mask')) {
    assert.equal(c.squashed?.activation, 'Sigmoid');
    assert.ok(c.squashed!.logitsScale > 50, `logits scale ${c.squashed!.logitsScale}`);
    assert.equal(c.scale, 0.25 * c.squashed!.logitsScale);
    assert.equal(c.relative, c.maxAbsDiff / c.scale);
  }
  for (const c of byOutput('probs')) assert.ok(c.squashed?.activation === 'Softmax' && c.scale === 0.5 * c.squashed.logitsScale);
  for (const c of byOutput('plain')) {
    assert.equal(c.squashed, undefined);
    assert.ok(c.scale > 50, 'a Relu output keeps its own scale');
  }
  assert.equal(byOutput('mask').length, 2, 'a dynamic batch is checked at two sizes');
});

test('the squashed outputs are found through Identity nodes, with the tensor of their logits', async () => {
  const files = await readGraphModel(await writeModel(squashingModel(1)));
  assert.deepEqual(squashedOutputs(files.json, graphModelIO(files.json)).map(({ output, activation, logits }) => [output, activation, logits]), [
    [0, 'Sigmoid', 'logits'], [1, 'Softmax', 'scores'],
  ]);
});

test('a graph whose squashed output really differs still fails, naming it', async () => {
  // One weight of the mask's logits off by 2 (of weights up to 5): the mask moves where it is not saturated.
  const reference = await readGraphModel(await writeModel(squashingModel(5)));
  const shifted = await readGraphModel(await writeModel(squashingModel(5, 2)));
  const wrong = convertGraphModel(shifted.json, shifted.weights, { opset: 17, name: 'wrong' });
  await assert.rejects(verifyGraphModel(reference, graphModelIO(reference.json), wrong, serializeModel(wrong)), (error: unknown) =>
    error instanceof FerryError && error.code === 'export_parity' && /mask, input/.test(error.message) && !/probs|plain/.test(error.message));
});
