/**
 * UnsortedSegmentSum for the wasm backend, which lacks it. It is the gradient of gather, so
 * without it no embedding trains on wasm. out[ids[i], ...] += x[i, ...], where ids has the shape
 * of x's leading axes; ids outside [0, numSegments) are dropped, as in TensorFlow.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Inputs = { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
type Attrs = { numSegments: number };

function unsortedSegmentSum(args: { inputs: Inputs; attrs: Attrs; backend: BackendWasm }): tf.TensorInfo {
  const { inputs: { x, segmentIds }, attrs: { numSegments }, backend } = args;
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const values = backend.readSync(x.dataId) as tf.TypedArray;
  const ids = backend.readSync(segmentIds.dataId) as tf.TypedArray;
  const output = backend.makeOutput([numSegments, ...rowShape], x.dtype);
  const sums = backend.typedArrayFromHeap(output);
  sums.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i]!;
    if (!(segment >= 0 && segment < numSegments)) continue;
    const from = i * rowSize;
    const to = segment * rowSize;
    for (let j = 0; j < rowSize; j++) sums[to + j]! += values[from + j]!;
  }
  return output;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};
