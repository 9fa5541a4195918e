/**
 * Direct access to the wasm backend's heap and C functions for kernels that run a whole loop
 * inside one tfjs kernel: tensor ids for ranges of existing buffers ("views"), the backend's
 * SIMD sigmoid on those ids, the heap as one Float32Array and its memory. Every call into
 * wasm may grow the heap, which replaces the buffer: read `floats()` again after one.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The parts of BackendWasm used here (public in JavaScript, not in its typings). */
type WasmInternals = {
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number } };
  wasm: {
    HEAPF32: Float32Array;
    asm: { memory?: WebAssembly.Memory };
    cwrap(name: string, returns: null, args: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
};

const FLOAT_BYTES = 4;
const wrapped = new WeakMap<object, { sigmoid: (xId: number, outId: number) => void }>();

export type WasmHeap = {
  /** The tensor's id on the C side. */
  id(info: tf.TensorInfo): number;
  /** An id for `size` floats of `info` from float `offset`; dropped by `release`. */
  view(info: tf.TensorInfo, offset: number, size: number): number;
  /** Where `info` starts in `floats()`. */
  start(info: tf.TensorInfo): number;
  /** Where `info` starts in the heap, in bytes: the pointer a native kernel takes. */
  address(info: tf.TensorInfo): number;
  floats(): Float32Array;
  /** The WebAssembly.Memory behind the heap, for ferry's own wasm modules to import. */
  memory(): WebAssembly.Memory;
  /** out = sigmoid(x) over x's registered size, wasm's SIMD kernel. */
  sigmoid(x: number, out: number): void;
  /** Drops every view made so far (their memory stays with the tensors they view). */
  release(): void;
};

export function wasmHeap(backend: BackendWasm): WasmHeap {
  const internals = backend as unknown as WasmInternals;
  let functions = wrapped.get(internals.wasm);
  if (functions === undefined) {
    functions = {
      sigmoid: internals.wasm.cwrap(tf.Sigmoid, null, ['number', 'number']) as (xId: number, outId: number) => void,
    };
    wrapped.set(internals.wasm, functions);
  }
  const { sigmoid } = functions;
  const views: number[] = [];
  return {
    id: (info) => internals.dataIdMap.get(info.dataId).id,
    view: (info, offset, size) => {
      const id = internals.dataIdNextNumber++;
      internals.wasm.tfjs.registerTensor(id, size, internals.dataIdMap.get(info.dataId).memoryOffset + offset * FLOAT_BYTES);
      views.push(id);
      return id;
    },
    start: (info) => internals.dataIdMap.get(info.dataId).memoryOffset / FLOAT_BYTES,
    address: (info) => internals.dataIdMap.get(info.dataId).memoryOffset,
    floats: () => internals.wasm.HEAPF32,
    memory: () => {
      const memory = internals.wasm.asm.memory;
      if (!(memory instanceof WebAssembly.Memory)) throw new Error('the tfjs wasm backend no longer exports its memory as asm.memory');
      return memory;
    },
    sigmoid,
    release: () => {
      for (const id of views) internals.wasm.tfjs.disposeData(id);
      views.length = 0;
    },
  };
}
