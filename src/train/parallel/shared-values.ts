/**
 * Tensor values to and from shared memory without garbage: every step moves all weights and
 * gradients, and copies through fresh JavaScript arrays kept the garbage collector's threads busy
 * on the cores the training threads need. On wasm the values are read from and written into the
 * wasm heap directly; other backends take the ordinary copies.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

const onWasm = () => tf.getBackend() === 'wasm';

/** Writes the values of a float32 `tensor` into `target` at `offset`. */
export function copyTensorInto(tensor: tf.Tensor, target: Float32Array, offset: number): void {
  const values = onWasm() ? (tf.backend() as BackendWasm).typedArrayFromHeap(tensor) : tensor.dataSync();
  target.set(values as Float32Array, offset);
}

/** A float32 tensor of `shape` holding a copy of `values`, which the caller may overwrite afterwards. */
export function tensorFromShared(values: Float32Array, shape: readonly number[]): tf.Tensor {
  // wasm copies the values into its heap; the cpu backend would keep the array itself.
  return tf.tensor(onWasm() ? values : values.slice(), shape as number[], 'float32');
}
