/**
 * Kernels written as JavaScript loops over the wasm heap: float32 (or int32 index) tensors in,
 * float32 tensors out, no copies. Where one loop replaces a chain of tfjs kernels (each a pass over memory, an
 * allocation and ~30 us of engine bookkeeping), it is faster even though wasm's own elementwise
 * kernels use SIMD. ferry's fused layers call them through `runFused` when the active backend
 * has them, and fall back to plain tfjs ops elsewhere.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type HeapKernel<Attrs> = {
  kernelName: string;
  /** Input names, in the order `compute` gets them. */
  inputNames: readonly string[];
  outputShapes(inputs: readonly tf.TensorInfo[], attrs: Attrs): number[][];
  /**
   * Inputs come as Float32Array, or Int32Array for int32 tensors (indices), each a view of the heap
   * (its byteOffset is its address there, for the native kernels).
   */
  compute(inputs: (Float32Array | Int32Array)[], outputs: Float32Array[], inputShapes: readonly number[][], attrs: Attrs, backend: BackendWasm, scratch: number): void;
  /**
   * Floats of scratch memory `compute` needs (its heap address comes as `scratch`; 0 when none).
   * It is allocated here with the outputs, before any view is taken: an allocation inside
   * `compute` could grow the heap and detach the views, whose byteOffset then reads 0, and a
   * native kernel handed address 0 writes over the allocator's own memory.
   */
  scratchFloats?(inputShapes: readonly number[][], attrs: Attrs, backend: BackendWasm): number;
};

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; attrs: unknown; backend: BackendWasm };

export function heapKernelConfig<Attrs>(kernel: HeapKernel<Attrs>): tf.KernelConfig {
  const kernelFunc = ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] => {
    const infos = kernel.inputNames.map((name) => inputs[name]!);
    for (const info of infos) {
      if (info.dtype !== 'float32' && info.dtype !== 'int32') throw new Error(`${kernel.kernelName} takes float32 or int32 tensors, got ${info.dtype}`);
    }
    const outputs = kernel.outputShapes(infos, attrs as Attrs).map((shape) => backend.makeOutput(shape, 'float32'));
    const scratchFloats = kernel.scratchFloats?.(infos.map((info) => info.shape), attrs as Attrs, backend) ?? 0;
    const scratch = scratchFloats > 0 ? backend.makeOutput([scratchFloats], 'float32') : undefined;
    // Views are taken after every allocation: allocating may grow (and so detach) the heap.
    try {
      kernel.compute(
        infos.map((info) => backend.typedArrayFromHeap(info) as Float32Array | Int32Array),
        outputs.map((info) => backend.typedArrayFromHeap(info) as Float32Array),
        infos.map((info) => info.shape),
        attrs as Attrs,
        backend,
        scratch ? backend.typedArrayFromHeap(scratch).byteOffset : 0,
      );
    } catch (error) {
      for (const info of outputs) backend.disposeData(info.dataId);
      throw error;
    } finally {
      if (scratch) backend.disposeData(scratch.dataId);
    }
    return outputs;
  };
  return { kernelName: kernel.kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/** Whether the active backend has ferry's kernel `name`. */
export function hasFusedKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** Runs a ferry kernel on the active backend and returns its outputs in order. */
export function runFused(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number | boolean> = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}
