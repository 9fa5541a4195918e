import type { NamedTensors, RunOptions, Tensor } from './types.ts';

/** The part of `ort.Tensor` both onnxruntime packages share, so one converter serves both. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export type OrtTensorConstructor<T> = new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => T;

export function toOrtFeeds<T>(Tensor: OrtTensorConstructor<T>, feeds: NamedTensors): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, tensor] of Object.entries(feeds)) out[name] = new Tensor(tensor.dtype, tensor.data, tensor.dims);
  return out;
}

/**
 * onnxruntime-web's execution provider for `device`. The manifest's CPU-only nodes go to
 * `forceCpuNodeNames` (WebGPU only, and only when there are some: ORT refuses an empty value,
 * "Provider options key/value cannot be empty").
 */
export function ortWebProvider(device: 'webgpu' | 'wasm', cpuOnlyNodes: readonly string[] = []) {
  return device === 'webgpu'
    ? { name: 'webgpu' as const, ...(cpuOnlyNodes.length ? { forceCpuNodeNames: [...cpuOnlyNodes] } : {}) }
    : { name: 'wasm' as const };
}

/** What a runtime in the calling thread returns for `lendFeeds`: the feeds themselves, never moved. */
export function withLentFeeds(outputs: NamedTensors, feeds: NamedTensors, options: RunOptions | undefined): NamedTensors {
  for (const name of options?.lendFeeds ?? []) outputs[name] = feeds[name]!;
  return outputs;
}

export function fromOrtResults(results: Record<string, OrtTensorLike>): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, value] of Object.entries(results)) out[name] = fromOrtTensor(name, value);
  return out;
}

function fromOrtTensor(name: string, value: OrtTensorLike): Tensor {
  if (value.type === 'float32' && value.data instanceof Float32Array) return { dtype: 'float32', dims: [...value.dims], data: value.data };
  if (value.type === 'int64' && value.data instanceof BigInt64Array) return { dtype: 'int64', dims: [...value.dims], data: value.data };
  throw new Error(`output ${name} has type ${value.type}; ferry models produce float32 and int64 only`);
}
