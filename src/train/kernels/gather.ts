/**
 * GatherV2 along axis 0 for wasm (an embedding lookup) as row copies. The wasm backend's
 * kernel computes every element's address through a 4-D stride product: 3.3 ms to look up
 * 768 rows of 128, against 0.2 ms for copying the rows. Other gathers run the backend's kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type GatherArgs = { inputs: { x: tf.TensorInfo; indices: tf.TensorInfo }; attrs: { axis: number; batchDims: number }; backend: BackendWasm };

export function rowGatherConfig(): tf.KernelConfig {
  const original = tf.getKernel(tf.GatherV2, 'wasm');
  if (original === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  const gather = (args: GatherArgs): tf.TensorInfo => {
    const { inputs: { x, indices }, attrs: { axis, batchDims }, backend } = args;
    const rowAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    if (rowAxis !== 0 || batchDims !== 0 || x.dtype !== 'float32' || indices.dtype !== 'int32') return original.kernelFunc(args as never) as tf.TensorInfo;
    const rows = x.shape[0]!;
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], 'float32');
    const ids = backend.typedArrayFromHeap(indices);
    const table = backend.typedArrayFromHeap(x);
    const values = backend.typedArrayFromHeap(out);
    for (let i = 0; i < ids.length; i++) {
      const row = ids[i]!;
      if (!(row >= 0 && row < rows)) {
        backend.disposeData(out.dataId);
        throw new Error(`GatherV2: the index value ${row} is not in [0, ${rows - 1}]`);
      }
      const from = row * width;
      const to = i * width;
      for (let j = 0; j < width; j++) values[to + j] = table[from + j]!;
    }
    return out;
  };
  return { ...original, kernelFunc: gather as unknown as tf.KernelFunc };
}
