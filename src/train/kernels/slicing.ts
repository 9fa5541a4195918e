/**
 * Slice, SplitV and Unpack for wasm without copying the whole input per output. The wasm
 * backend's own versions read their input with readSync (a full copy off the heap) for every
 * slice, so unstacking T time steps cost O(T^2). These copy only the block each output needs,
 * straight between heap views.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Args<I, A> = { inputs: I; attrs: A; backend: BackendWasm };

/** Copies the block [begin, begin + size) of a row-major `shape` array from `src` into `dst`, in order. */
export function copyBlock(src: tf.TypedArray, shape: readonly number[], begin: readonly number[], size: readonly number[], dst: tf.TypedArray): void {
  const rank = shape.length;
  if (size.some((s) => s === 0)) return;
  // Trailing axes taken whole, plus the axis before them, form one contiguous run.
  let axis = rank - 1;
  let run = 1;
  while (axis >= 0 && begin[axis] === 0 && size[axis] === shape[axis]) run *= shape[axis--]!;
  if (axis < 0) {
    dst.set(src.subarray(0, run));
    return;
  }
  const strides = new Array<number>(rank);
  for (let d = rank - 1, stride = 1; d >= 0; d--) { strides[d] = stride; stride *= shape[d]!; }
  run *= size[axis]!;
  let base = 0;
  for (let d = 0; d <= axis; d++) base += begin[d]! * strides[d]!;
  const index = new Array<number>(axis).fill(0);
  let offset = 0;
  for (;;) {
    let from = base;
    for (let d = 0; d < axis; d++) from += index[d]! * strides[d]!;
    dst.set(src.subarray(from, from + run), offset);
    offset += run;
    let d = axis - 1;
    while (d >= 0 && ++index[d]! === size[d]) index[d--] = 0;
    if (d < 0) return;
  }
}

function sliceInfo(backend: BackendWasm, x: tf.TensorInfo, begin: number[], size: number[], outShape = size): tf.TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  // Views are taken after makeOutput: allocating may grow (and so detach) the heap.
  copyBlock(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
  return out;
}

export function fastSlicingConfigs(): tf.KernelConfig[] {
  const originals = new Map([tf.Slice, tf.SplitV, tf.Unpack].map((name) => [name, tf.getKernel(name, 'wasm')!]));
  const withStringFallback = (name: string, fast: (args: Args<Record<string, tf.TensorInfo>, tf.NamedAttrMap>) => tf.TensorInfo | tf.TensorInfo[]) => {
    const original = originals.get(name)!;
    const kernelFunc = (args: Args<Record<string, tf.TensorInfo>, tf.NamedAttrMap>) => {
      const input = Object.values(args.inputs)[0]!;
      return input.dtype === 'string' ? original.kernelFunc(args as never) : fast(args);
    };
    return { ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
  };

  const slice = withStringFallback(tf.Slice, ({ inputs: { x }, attrs, backend }) => {
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin as number[], attrs.size as number[]);
    return sliceInfo(backend, x!, begin, size);
  });

  const splitV = withStringFallback(tf.SplitV, ({ inputs: { x }, attrs, backend }) => {
    const axis = tf.util.parseAxisParam(attrs.axis as number, x!.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[] | number, axis);
    const begin = x!.shape.map(() => 0);
    return sizes.map((part) => {
      const size = x!.shape.slice();
      size[axis] = part;
      const out = sliceInfo(backend, x!, begin, size);
      begin[axis]! += part;
      return out;
    });
  });

  const unpack = withStringFallback(tf.Unpack, ({ inputs: { value }, attrs, backend }) => {
    const rank = value!.shape.length;
    const axis = (attrs.axis as number) < 0 ? (attrs.axis as number) + rank : (attrs.axis as number);
    const outShape = value!.shape.filter((_, d) => d !== axis);
    const size = value!.shape.slice();
    size[axis] = 1;
    const begin = value!.shape.map(() => 0);
    return Array.from({ length: value!.shape[axis]! }, (_, i) => {
      begin[axis] = i;
      return sliceInfo(backend, value!, begin, size, outShape);
    });
  });

  return [slice, splitV, unpack];
}
