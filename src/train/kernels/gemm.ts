/**
 * ferry's own matrix product (native/gemm.c) over the tfjs wasm heap. It reads transposed
 * operands through strides and runs a whole batch in one call, where XNNPACK needs plain
 * row-major operands (so every gradient product paid for a transposed copy) and one call, with
 * its own packing, per matrix. Against XNNPACK in tfjs on this machine's shapes: 40-45 GFLOP/s
 * against 25-35 on [768, 128] x [128, 512]-sized products, about 6x on attention's 64 x 32 x 64.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { nativeKernels } from './native.ts';
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

/** c[b] (rows c.rowStride floats apart) = a[b] [m, k] x b[b] [k, n] for b < batch; c must not overlap a or b. */
export function heapGemm(backend: BackendWasm, a: StridedMatrices, b: StridedMatrices, c: { start: number; rowStride: number; batchStride: number },
  batch: number, m: number, n: number, k: number): void {
  const { exports, withScratch } = nativeKernels(backend);
  withScratch(exports.gemm_scratch_floats(n, k), (scratch) => exports.gemm(
    a.start * FLOAT_BYTES, a.rowStride, a.columnStride, a.batchStride,
    b.start * FLOAT_BYTES, b.rowStride, b.columnStride, b.batchStride,
    c.start * FLOAT_BYTES, c.rowStride, c.batchStride, batch, m, n, k, scratch,
  ));
}

export interface PackedMatrix {
  /** c [m, n] (rows c.rowStride floats apart) = a [m, k] x the packed matrix. */
  multiplyBy(a: Omit<StridedMatrices, 'batchStride'>, c: { start: number; rowStride: number }, m: number): void;
  /** Frees the packed copy. */
  dispose(): void;
}

/**
 * `b` [k, n] packed once for many products against it, as an LSTM multiplies its recurrent
 * kernel at every time step: gemm would pack it again for each.
 */
export function packRightMatrix(backend: BackendWasm, b: Omit<StridedMatrices, 'batchStride'>, k: number, n: number): PackedMatrix {
  const { exports } = nativeKernels(backend);
  const heap = wasmHeap(backend);
  const packed = backend.makeOutput([exports.gemm_packed_b_floats(n, k)], 'float32');
  const scratch = backend.makeOutput([exports.gemm_packed_scratch_floats()], 'float32');
  const [packedAt, scratchAt] = [heap.address(packed), heap.address(scratch)];
  exports.gemm_pack_b(b.start * FLOAT_BYTES, b.rowStride, b.columnStride, n, k, packedAt);
  return {
    multiplyBy(a, c, m) {
      exports.gemm_packed(a.start * FLOAT_BYTES, a.rowStride, a.columnStride, packedAt, c.start * FLOAT_BYTES, c.rowStride, m, n, k, scratchAt);
    },
    dispose() {
      backend.disposeData(packed.dataId);
      backend.disposeData(scratch.dataId);
    },
  };
}
