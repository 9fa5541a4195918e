/**
 * Identity, and Cast to the same dtype, for wasm without a copy. tfjs clones every tensor it
 * saves for a gradient through Identity, and the wasm backend's Identity copies the data: 372
 * copies per nanogpt-cpu step (15 ms); tfjs-layers casts every float input to float32 (another
 * 81 copies). Tensors are immutable, so the output can share the input's memory, as on the cpu
 * backend: one more reference, freed with the last of them.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Args = { inputs: { x: tf.TensorInfo }; attrs?: { dtype?: tf.DataType }; backend: BackendWasm };

function share(x: tf.TensorInfo, backend: BackendWasm): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function sharingIdentityConfigs(): tf.KernelConfig[] {
  const identity = tf.getKernel(tf.Identity, 'wasm');
  const cast = tf.getKernel(tf.Cast, 'wasm');
  if (identity === undefined || cast === undefined) throw new Error('the wasm backend must be imported before its kernels are patched');
  const sharedIdentity = (args: Args) => (args.inputs.x.dtype === 'string' ? identity.kernelFunc(args as never) : share(args.inputs.x, args.backend));
  const sharedCast = (args: Args) => (args.attrs?.dtype === args.inputs.x.dtype && args.inputs.x.dtype !== 'string'
    ? share(args.inputs.x, args.backend)
    : cast.kernelFunc(args as never));
  return [
    { ...identity, kernelFunc: sharedIdentity as unknown as tf.KernelFunc },
    { ...cast, kernelFunc: sharedCast as unknown as tf.KernelFunc },
  ];
}
