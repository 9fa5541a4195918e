/**
 * ferry's kernels compiled from C (native/*.c, see native/build.sh) into one wasm module that
 * imports the tfjs wasm backend's memory: they read and write tensors where tfjs keeps them, four
 * floats at a time, where the JavaScript loops they replace ran one at a time.
 *
 * Where V8 accepts relaxed SIMD (Node 20 behind a flag, which ferry turns on before compiling;
 * on by default in later versions) the module with fused multiply-add is used.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { wasmHeap } from './wasm-heap.ts';

/** The module's functions; every pointer is a byte address in the tfjs heap. */
export interface NativeExports {
  gemm(a: number, ars: number, acs: number, aStep: number, b: number, brs: number, bcs: number, bStep: number,
    c: number, ldc: number, cStep: number, batch: number, m: number, n: number, k: number, scratch: number): void;
  gemm_scratch_floats(n: number, k: number): number;
  gemm_packed_b_floats(n: number, k: number): number;
  gemm_packed_scratch_floats(): number;
  gemm_pack_b(b: number, brs: number, bcs: number, n: number, k: number, packed: number): void;
  gemm_packed(a: number, ars: number, acs: number, packed: number, c: number, ldc: number, m: number, n: number, k: number, scratch: number): void;
  attention_scratch_floats(steps: number, headDim: number): number;
  attention_forward(qkv: number, y: number, probs: number, batch: number, steps: number, heads: number, headDim: number, scale: number, scratch: number): void;
  attention_backward(qkv: number, probs: number, dy: number, dqkv: number, batch: number, steps: number, heads: number, headDim: number,
    scale: number, scratch: number): void;
  biased_attention_scratch_floats(queries: number, keys: number, headDim: number): number;
  biased_attention_forward(q: number, qRow: number, k: number, v: number, kvRow: number, bias: number, mask: number, y: number, probs: number,
    batch: number, queries: number, keys: number, heads: number, headDim: number, causal: 0 | 1, scratch: number): void;
  biased_attention_backward(q: number, qRow: number, k: number, v: number, kvRow: number, probs: number, dy: number, dq: number, dk: number,
    dv: number, dbias: number, batch: number, queries: number, keys: number, heads: number, headDim: number, scratch: number): void;
  add_bias(c: number, rows: number, n: number, bias: number, biasStep: 0 | 1): void;
  gelu_with_slope(x: number, y: number, slope: number, n: number): void;
  gelu_tanh_with_slope(x: number, y: number, slope: number, n: number): void;
  layer_norm(x: number, gamma: number, beta: number, y: number, xhat: number, rstd: number, rows: number, width: number, epsilon: number): void;
  layer_norm_grad(dy: number, xhat: number, rstd: number, gamma: number, dx: number, dgamma: number, dbeta: number,
    rows: number, width: number, sums: number): void;
  rms_norm(x: number, gamma: number, y: number, xhat: number, rstd: number, rows: number, width: number, epsilon: number): void;
  rms_norm_grad(dy: number, xhat: number, rstd: number, gamma: number, dx: number, dgamma: number, rows: number, width: number, sums: number): void;
  sum_of_squares(x: number, n: number): number;
  sum_rows(x: number, rows: number, width: number, out: number): void;
  adamw_step(p: number, g: number, m: number, v: number, scale: number, nextP: number, nextM: number, nextV: number, n: number,
    beta1: number, beta2: number, epsilon: number, stepSize: number, secondCorrection: number, decayFactor: number): void;
}

export interface NativeKernels {
  readonly exports: NativeExports;
  /** Whether the module uses fused multiply-add (relaxed SIMD). */
  readonly fusedMultiplyAdd: boolean;
  /** Runs `use` with the byte address of `floats` floats of scratch in the heap, freed after. */
  withScratch<T>(floats: number, use: (address: number) => T): T;
}

let binary: { module: WebAssembly.Module; fusedMultiplyAdd: boolean } | undefined;

function compiled(): { module: WebAssembly.Module; fusedMultiplyAdd: boolean } {
  if (binary !== undefined) return binary;
  const read = (name: string) => new Uint8Array(readFileSync(new URL(`./native/${name}`, import.meta.url)));
  const relaxed = read('kernels-relaxed.wasm');
  if (!WebAssembly.validate(relaxed)) setFlagsFromString('--experimental-wasm-relaxed-simd');
  const fusedMultiplyAdd = WebAssembly.validate(relaxed);
  binary = { module: new WebAssembly.Module(fusedMultiplyAdd ? relaxed : read('kernels.wasm')), fusedMultiplyAdd };
  return binary;
}

const instances = new WeakMap<WebAssembly.Memory, NativeExports>();

/** The native kernels over `backend`'s heap (one instance per heap, made on first use). */
export function nativeKernels(backend: BackendWasm): NativeKernels {
  const heap = wasmHeap(backend);
  const memory = heap.memory();
  const { module, fusedMultiplyAdd } = compiled();
  let exports = instances.get(memory);
  if (exports === undefined) {
    exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as NativeExports;
    instances.set(memory, exports);
  }
  return {
    exports,
    fusedMultiplyAdd,
    withScratch(floats, use) {
      const scratch = backend.makeOutput([floats], 'float32');
      try {
        return use(heap.address(scratch));
      } finally {
        backend.disposeData(scratch.dataId);
      }
    },
  };
}
