// A heap kernel's scratch memory is allocated before the views of its tensors are taken
// (src/train/kernels/heap-kernel.ts). Allocated inside the kernel, as it was, it could grow the
// wasm heap and detach those views, whose byteOffset then reads 0: the native kernel wrote over
// the allocator's memory, and training a Transformer at a 254-token context on wasm died with
// "memory access out of bounds" at the next free. This is that run's step, in a fresh process
// (the heap's layout decides whether an allocation grows it), against the cpu backend's gradients.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/train/backend.ts';
import { createModel, crossEntropy, type ModelConfig } from '../../src/train/models/index.ts';

const CONFIG = { arch: 'transformer', vocabSize: 322, blockSize: 254, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0, positional: 'learned', tieWeights: false } as ModelConfig;
const BATCH = 8;

async function gradients(backend: 'wasm' | 'cpu'): Promise<Float32Array[]> {
  await selectBackend(backend);
  const model = createModel(CONFIG, { seed: 4 });
  const ids = tf.tensor2d(Int32Array.from({ length: BATCH * CONFIG.blockSize }, (_, i) => (i * 7) % 300), [BATCH, CONFIG.blockSize], 'int32');
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const out: Float32Array[] = [];
  for (let step = 0; step < 2; step++) {
    const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(ids, { training: true }) as tf.Tensor, ids), variables);
    if (step === 1) for (const v of variables) out.push((await grads[v.name]!.data()) as Float32Array);
    value.dispose();
    tf.dispose(grads);
    // Allocations and frees of many sizes: a damaged heap fails here, if not before.
    tf.dispose(Array.from({ length: 60 }, (_, k) => tf.zeros([500 + k * 97])));
  }
  ids.dispose();
  model.dispose();
  return out;
}

test("a 254-token Transformer step on wasm leaves the heap intact and gives the cpu backend's gradients", async () => {
  const wasm = await gradients('wasm');
  const cpu = await gradients('cpu');
  assert.equal(wasm.length, cpu.length);
  let worst = 0;
  wasm.forEach((g, i) => g.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - cpu[i]![j]!) / Math.max(1e-3, Math.abs(cpu[i]![j]!))))));
  console.log(`wasm vs cpu gradients: max relative difference ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-2, `max relative difference ${worst}`);
});
