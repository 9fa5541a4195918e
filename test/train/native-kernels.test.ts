import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../../src/train/backend.ts';
import { heapGemm } from '../../src/train/kernels/gemm.ts';
import { nativeKernels } from '../../src/train/kernels/native.ts';
import { SQUARED_NORM_KERNEL, squaredNorm } from '../../src/train/kernels/squared-norm.ts';
import { wasmHeap } from '../../src/train/kernels/wasm-heap.ts';

const nativeDir = new URL('../../src/train/kernels/native/', import.meta.url);

/** product[b][i][j] = sum_k a(b, i, k) b(b, k, j) in float64, from accessor functions. */
function reference(batch: number, m: number, n: number, k: number, a: (b: number, i: number, k: number) => number, b: (b: number, k: number, j: number) => number): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let x = 0; x < batch; x++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let d = 0; d < k; d++) sum += a(x, i, d) * b(x, d, j);
        out[(x * m + i) * n + j] = sum;
      }
    }
  }
  return out;
}

test('the committed kernels*.wasm were built from the C sources beside them', () => {
  const sources = ['native.h', ...readdirSync(nativeDir).filter((name) => name.endsWith('.c')).sort()];
  const hash = createHash('sha256');
  for (const name of sources) hash.update(readFileSync(new URL(name, nativeDir)));
  const recorded = readFileSync(new URL('sources.sha256', nativeDir), 'utf8').trim();
  assert.equal(hash.digest('hex'), recorded, 'a C source changed: run bash src/train/kernels/native/build.sh');
});

test('a rebuild of the C sources with clang-19 gives the committed binaries', (t) => {
  if (spawnSync('clang-19', ['--version']).status !== 0) {
    t.skip('clang-19 is not installed (apt-get install clang-19 lld-19); .ci/run installs it');
    console.log('# skipped: clang-19 is not installed, so the committed kernels.wasm was not rebuilt');
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'ferry-native-'));
  try {
    execFileSync('bash', [new URL('build.sh', nativeDir).pathname, out]);
    for (const name of ['kernels.wasm', 'kernels-relaxed.wasm']) {
      assert.ok(readFileSync(join(out, name)).equals(readFileSync(new URL(name, nativeDir))), `${name} differs from a rebuild`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the native gemm multiplies strided, batched and shared operands into a wider output without touching its other columns', async () => {
  await selectBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  // Node 20 accepts relaxed SIMD once ferry sets V8's flag; later versions by default.
  assert.equal(nativeKernels(backend).fusedMultiplyAdd, true);
  const heap = wasmHeap(backend);
  const [batch, m, n, k] = [3, 7, 13, 261];
  // A is stored transposed per matrix ([k, m]); B is one [n, k] matrix shared by the batch (so op(B) is B^T).
  const aValues = tf.randomNormal([batch, k, m], 0, 1, 'float32', 3);
  const bValues = tf.randomNormal([n, k], 0, 1, 'float32', 4);
  const width = n + 5;
  const out = tf.fill([batch, m, width], 7);
  const a = aValues.dataSync();
  const b = bValues.dataSync();
  const info = (t: tf.Tensor) => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }) as tf.TensorInfo;
  heapGemm(
    backend,
    { start: heap.start(info(aValues)), rowStride: 1, columnStride: m, batchStride: k * m },
    { start: heap.start(info(bValues)), rowStride: 1, columnStride: k, batchStride: 0 },
    { start: heap.start(info(out)), rowStride: width, batchStride: m * width },
    batch, m, n, k,
  );
  const expected = reference(batch, m, n, k, (x, i, d) => a[x * k * m + d * m + i]!, (_x, d, j) => b[j * k + d]!);
  const actual = out.dataSync();
  for (let x = 0; x < batch; x++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < width; j++) {
        const value = actual[(x * m + i) * width + j]!;
        if (j >= n) assert.equal(value, 7, `column ${j} past n was written`);
        else assert.ok(Math.abs(value - expected[(x * m + i) * n + j]!) < 1e-4, `[${x}, ${i}, ${j}] ${value}`);
      }
    }
  }
  tf.dispose([aValues, bValues, out]);
});

test('squaredNorm sums the squares of many tensors of odd sizes in one kernel on wasm, as tfjs ops do on cpu', async () => {
  const shapes = [[7], [3, 5], [1], [2, 3, 9], [130]];
  const make = () => shapes.map((shape, i) => tf.randomNormal(shape, 0, 2, 'float32', 40 + i));
  await selectBackend('cpu');
  const cpu = tf.tidy(() => squaredNorm(make()).dataSync()[0]!);
  await selectBackend('wasm');
  const tensors = make();
  const values = tensors.flatMap((tensor) => Array.from(tensor.dataSync()));
  const exact = values.reduce((sum, x) => sum + x * x, 0);
  const profile = await tf.profile(() => squaredNorm(tensors));
  assert.deepEqual(profile.kernels.map((kernel) => kernel.name), [SQUARED_NORM_KERNEL]);
  const wasm = (profile.result as tf.Tensor).dataSync()[0]!;
  assert.ok(Math.abs(wasm - exact) <= 1e-6 * exact, `wasm ${wasm} vs ${exact}`);
  assert.ok(Math.abs(cpu - exact) <= 1e-5 * exact, `cpu ${cpu} vs ${exact}`);
  tf.dispose(tensors);
});
