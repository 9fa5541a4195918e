/** Serialises a Graph into ONNX ModelProto bytes with onnx-proto (protobufjs). */
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import type { Attribute, DType, Graph, Initializer, ValueInfo } from './graph.ts';

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;

export const DATA_TYPES: Record<DType, number> = {
  float32: T.FLOAT,
  float16: T.FLOAT16,
  float64: T.DOUBLE,
  int64: T.INT64,
  int32: T.INT32,
  int16: T.INT16,
  int8: T.INT8,
  uint64: T.UINT64,
  uint32: T.UINT32,
  uint16: T.UINT16,
  uint8: T.UINT8,
  bool: T.BOOL,
  string: T.STRING,
};

export const FERRY_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The IR version that goes with an opset (the oldest that allows it, so older checkers accept the file). */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

function tensorProto(init: Initializer): proto.ITensorProto {
  const bytes = new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
  return { name: init.name, dataType: DATA_TYPES[init.dtype], dims: init.dims, rawData: bytes };
}

function attributeProto(name: string, a: Attribute): proto.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int': return { name, type: A.INT, i: a.value };
    case 'float': return { name, type: A.FLOAT, f: a.value };
    case 'string': return { name, type: A.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints': return { name, type: A.INTS, ints: a.value };
    case 'floats': return { name, type: A.FLOATS, floats: a.value };
    case 'strings': return { name, type: A.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case 'tensor': return { name, type: A.TENSOR, t: tensorProto(a.value) };
    case 'dtype': return { name, type: A.INT, i: DATA_TYPES[a.value] };
    case 'graph': return { name, type: A.GRAPH, g: graphProto(a.value) };
  }
}

function valueInfoProto(v: ValueInfo): proto.IValueInfoProto {
  return {
    name: v.name,
    docString: v.doc,
    type: {
      tensorType: {
        elemType: DATA_TYPES[v.dtype],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** A GraphProto; the top graph's initializers are appended apart (serializeModelChunks), a subgraph's go inline. */
function graphProto(graph: Graph, { withInitializers = true } = {}): proto.IGraphProto {
  return {
    name: graph.name,
    input: graph.inputs.map(valueInfoProto),
    output: graph.outputs.map(valueInfoProto),
    initializer: withInitializers ? graph.initializers.map(tensorProto) : [],
    node: graph.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      docString: n.doc,
      attribute: Object.entries(n.attributes).map(([k, a]) => attributeProto(k, a)),
    })),
  };
}

export interface ModelMetadata {
  docString?: string;
  /** Stored in metadata_props (values that are not strings are written as JSON). */
  properties?: Record<string, unknown>;
}

/** Protobuf tag + length prefix of a length-delimited field. */
function fieldHeader(field: number, length: number): Uint8Array {
  const bytes = [(field << 3) | 2];
  for (let n = length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      bytes.push(n);
      break;
    }
    bytes.push((n % 128) | 128);
  }
  return Uint8Array.from(bytes);
}

const byteLength = (chunks: Uint8Array[]) => chunks.reduce((sum, c) => sum + c.byteLength, 0);

// Field numbers in onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.raw_data.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;

/**
 * The ModelProto as a list of chunks whose weight chunks are views of the initializers' own
 * typed arrays: a 10M-parameter model is written without copying its weights. Protobuf allows
 * fields in any order, so the initializers are appended after the rest of the graph.
 */
export function serializeModelChunks(graph: Graph, metadata: ModelMetadata = {}): Uint8Array[] {
  const model: proto.IModelProto = {
    irVersion: irVersionFor(graph.opset),
    producerName: 'ferry',
    producerVersion: FERRY_VERSION,
    docString: metadata.docString,
    opsetImport: [...graph.domains].map(([domain, version]) => ({ domain, version })),
    metadataProps: Object.entries(metadata.properties ?? {}).map(([key, value]) => ({
      key,
      value: typeof value === 'string' ? value : JSON.stringify(value),
    })),
  };
  const graphHead = onnx.GraphProto.encode(graphProto(graph, { withInitializers: false })).finish();
  const graphChunks: Uint8Array[] = [graphHead];
  for (const init of graph.initializers) {
    const head = onnx.TensorProto.encode({ name: init.name, dataType: DATA_TYPES[init.dtype], dims: init.dims }).finish();
    const raw = new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
    const rawHeader = fieldHeader(TENSOR_RAW_DATA, raw.byteLength);
    graphChunks.push(fieldHeader(GRAPH_INITIALIZER, head.byteLength + rawHeader.byteLength + raw.byteLength), head, rawHeader, raw);
  }
  return [onnx.ModelProto.encode(model).finish(), fieldHeader(MODEL_GRAPH, byteLength(graphChunks)), ...graphChunks];
}

/** The whole ModelProto in one buffer (for onnxruntime sessions made from bytes). */
export function serializeModel(graph: Graph, metadata: ModelMetadata = {}): Uint8Array {
  return Buffer.concat(serializeModelChunks(graph, metadata));
}
