/**
 * ferry's own matrix product (gemm/gemm.c) running inside the tfjs wasm backend's memory. It reads
 * transposed operands through strides and runs a whole batch in one call, where XNNPACK needs
 * plain row-major operands (so every gradient product paid for a transposed copy) and one call,
 * with its own packing, per matrix. Measured against XNNPACK in tfjs on this machine's shapes:
 * 1.3-1.6x on [768, 128] x [128, 512]-sized products, about 6x on attention's 64 x 32 x 64.
 *
 * Where V8 accepts relaxed SIMD (Node 20 behind a flag, which ferry turns on before compiling;
 * on by default in later versions) the product uses fused multiply-add.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { wasmHeap } from './wasm-heap.ts';

const FLOAT_BYTES = 4;

/** A batch of matrices in the heap: element (row, column) of matrix b at start + b * batchStride + row * rowStride + column * columnStride (all in floats). */
export interface StridedMatrices {
  start: number;
  rowStride: number;
  columnStride: number;
  /** 0 when every product of the batch uses the same matrix. */
  batchStride: number;
}

export interface HeapGemm {
  /** Whether the product compiled with fused multiply-add (relaxed SIMD). */
  readonly fusedMultiplyAdd: boolean;
  /** c[b] (rows of c.rowStride floats) = a[b] [m, k] x b[b] [k, n] for b < batch; c must not overlap a or b. */
  multiply(a: StridedMatrices, b: StridedMatrices, c: { start: number; rowStride: number; batchStride: number }, batch: number, m: number, n: number, k: number): void;
}

type GemmExports = {
  gemm(a: number, ars: number, acs: number, aStep: number, b: number, brs: number, bcs: number, bStep: number,
    c: number, ldc: number, cStep: number, batch: number, m: number, n: number, k: number, scratch: number): void;
  gemm_scratch_floats(n: number): number;
};

const binaries = (() => {
  let loaded: { bytes: Uint8Array<ArrayBuffer>; fusedMultiplyAdd: boolean } | undefined;
  return () => {
    if (loaded !== undefined) return loaded;
    const relaxed = new Uint8Array(readFileSync(new URL('./gemm/gemm-relaxed.wasm', import.meta.url)));
    if (!WebAssembly.validate(relaxed)) setFlagsFromString('--experimental-wasm-relaxed-simd');
    loaded = WebAssembly.validate(relaxed)
      ? { bytes: relaxed, fusedMultiplyAdd: true }
      : { bytes: new Uint8Array(readFileSync(new URL('./gemm/gemm.wasm', import.meta.url))), fusedMultiplyAdd: false };
    return loaded;
  };
})();

const instances = new WeakMap<WebAssembly.Memory, GemmExports>();

export function heapGemm(backend: BackendWasm): HeapGemm {
  const heap = wasmHeap(backend);
  const memory = heap.memory();
  const { bytes, fusedMultiplyAdd } = binaries();
  let exports = instances.get(memory);
  if (exports === undefined) {
    exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as GemmExports;
    instances.set(memory, exports);
  }
  const { gemm, gemm_scratch_floats: scratchFloats } = exports;
  return {
    fusedMultiplyAdd,
    multiply(a, b, c, batch, m, n, k) {
      const scratch = backend.makeOutput([scratchFloats(n)], 'float32');
      try {
        gemm(
          a.start * FLOAT_BYTES, a.rowStride, a.columnStride, a.batchStride,
          b.start * FLOAT_BYTES, b.rowStride, b.columnStride, b.batchStride,
          c.start * FLOAT_BYTES, c.rowStride, c.batchStride, batch, m, n, k, heap.start(scratch) * FLOAT_BYTES,
        );
      } finally {
        backend.disposeData(scratch.dataId);
      }
    },
  };
}
