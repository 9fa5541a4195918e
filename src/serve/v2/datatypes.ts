/**
 * The Open Inference Protocol's tensor datatypes and the ONNX element types they stand for.
 * Every v2 datatype ONNX has is here; BF16 is not (onnxruntime takes no bfloat16 from JavaScript).
 */
import type { TensorDType } from '../../package/session.ts';

export const V2_DATATYPES = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<string, TensorDType>;

export type V2Datatype = keyof typeof V2_DATATYPES;

const BY_DTYPE = Object.fromEntries(Object.entries(V2_DATATYPES).map(([v2, dtype]) => [dtype, v2])) as Record<TensorDType, V2Datatype>;

export function isV2Datatype(name: string): name is V2Datatype {
  return Object.hasOwn(V2_DATATYPES, name);
}

export function v2DatatypeOf(dtype: TensorDType): V2Datatype {
  return BY_DTYPE[dtype];
}

/** Bytes per element in the binary-tensor extension (BYTES elements carry their own lengths). */
export const ELEMENT_BYTES: Record<Exclude<TensorDType, 'string'>, number> = {
  bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8,
};
