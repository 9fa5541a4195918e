/**
 * The tfjs graph-model format (`"format": "graph-model"`, what tensorflowjs_converter writes from a
 * SavedModel or frozen graph): `modelTopology` is a TF GraphDef in JSON, weights live in shards
 * listed by `weightsManifest`. These are the parts ferry reads.
 */
import type { DType } from '../graph.ts';

export interface TfAttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: TfShape;
  tensor?: { dtype?: string; tensorShape?: TfShape };
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; b?: boolean[]; type?: string[]; shape?: TfShape[] };
  func?: unknown;
}

export interface TfShape {
  dim?: { size?: string | number }[];
  unknownRank?: boolean;
}

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttrValue>;
}

export interface SignatureEntry {
  name: string;
  dtype?: string;
  tensorShape?: TfShape;
}

export interface GraphModelJson {
  format: 'graph-model';
  modelTopology: { node?: TfNode[]; library?: { function?: { signature?: { name?: string } }[] } };
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  signature?: { inputs?: Record<string, SignatureEntry>; outputs?: Record<string, SignatureEntry> };
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

/** A weight decoded to the dtype the graph computes in (quantized weights are dequantized). */
export interface Tensor {
  dtype: DType;
  dims: number[];
  data: Float32Array | Int32Array | Uint8Array | BigInt64Array;
}

export function isGraphModelJson(json: unknown): json is GraphModelJson {
  const record = json as { format?: unknown; modelTopology?: { node?: unknown } } | null;
  return typeof record === 'object' && record !== null && (record.format === 'graph-model' || Array.isArray(record.modelTopology?.node));
}

/** TF's DataType names as ONNX's (by name, as tfjs writes them). */
const TF_DTYPES: Record<string, DType> = {
  DT_FLOAT: 'float32',
  DT_HALF: 'float16',
  DT_INT32: 'int32',
  DT_INT64: 'int64',
  DT_INT8: 'int8',
  DT_UINT8: 'uint8',
  DT_BOOL: 'bool',
};

export function onnxDtypeOf(tfDtype: string | undefined): DType | undefined {
  return tfDtype === undefined ? undefined : TF_DTYPES[tfDtype];
}

/** TF dims (-1 or '-1' for unknown) as numbers, null where dynamic; undefined for an unknown rank. */
export function shapeOf(shape: TfShape | undefined): (number | null)[] | undefined {
  if (!shape || shape.unknownRank) return undefined;
  return (shape.dim ?? []).map((d) => {
    const size = Number(d.size ?? -1);
    return size < 0 ? null : size;
  });
}
