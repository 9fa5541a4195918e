/**
 * Reads ONNX ModelProto bytes back into a Graph, so that a written package's fp32 file can be
 * quantized again (`ferry quantize`) without the checkpoint it came from. Reads what the writer
 * writes: raw_data initializers and the attribute kinds of graph.ts; anything else is refused.
 */
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import { FerryError } from '../errors.ts';
import { type Attribute, type DType, Graph, type Initializer, type TensorData, type ValueInfo } from './graph.ts';
import { DATA_TYPES } from './writer.ts';

const { onnx } = onnxProto;

const DTYPE_OF = new Map<number, DType>(Object.entries(DATA_TYPES).map(([dtype, code]) => [code, dtype as DType]));

// The initializer types ferry writes; graph inputs and outputs may have any type of graph.ts.
const ARRAYS: Partial<Record<DType, (buffer: ArrayBuffer) => TensorData>> = {
  float32: (b) => new Float32Array(b),
  float16: (b) => new Uint16Array(b),
  int64: (b) => new BigInt64Array(b),
  int32: (b) => new Int32Array(b),
  int8: (b) => new Int8Array(b),
  uint8: (b) => new Uint8Array(b),
  bool: (b) => new Uint8Array(b),
};

function unsupported(what: string): FerryError {
  return new FerryError('onnx_unsupported', `the ONNX file has ${what}, which ferry cannot read back`, {
    hint: 'Only files that ferry wrote can be read back; export the model again from its checkpoint.',
  });
}

function dtypeOf(code: number | null | undefined, where: string): DType {
  const dtype = DTYPE_OF.get(code ?? -1);
  if (!dtype) throw unsupported(`data type ${code} (${where})`);
  return dtype;
}

function tensor(t: proto.ITensorProto): Initializer {
  const dtype = dtypeOf(t.dataType, t.name ?? 'a tensor');
  if (!t.rawData) throw unsupported(`a tensor without raw_data (${t.name})`);
  const toArray = ARRAYS[dtype];
  if (!toArray) throw unsupported(`a ${dtype} initializer (${t.name})`);
  // A copy: the decoded bytes are a view into the whole file, at any alignment.
  const bytes = new Uint8Array(t.rawData);
  return { name: t.name ?? '', dtype, dims: (t.dims ?? []).map(Number), data: toArray(bytes.buffer) };
}

function attribute(a: proto.IAttributeProto): Attribute {
  const A = onnx.AttributeProto.AttributeType;
  const text = new TextDecoder();
  switch (a.type) {
    case A.INT: return { kind: 'int', value: Number(a.i) };
    case A.FLOAT: return { kind: 'float', value: a.f ?? 0 };
    case A.STRING: return { kind: 'string', value: text.decode(a.s ?? new Uint8Array()) };
    case A.INTS: return { kind: 'ints', value: (a.ints ?? []).map(Number) };
    case A.FLOATS: return { kind: 'floats', value: a.floats ?? [] };
    case A.STRINGS: return { kind: 'strings', value: (a.strings ?? []).map((s) => text.decode(s)) };
    case A.TENSOR: return { kind: 'tensor', value: tensor(a.t!) };
    default: throw unsupported(`attribute ${a.name} of type ${a.type}`);
  }
}

function valueInfo(v: proto.IValueInfoProto): ValueInfo {
  const type = v.type?.tensorType;
  return {
    name: v.name ?? '',
    dtype: dtypeOf(type?.elemType, v.name ?? 'a graph input or output'),
    shape: (type?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue))),
    ...(v.docString ? { doc: v.docString } : {}),
  };
}

export interface ReadModel {
  graph: Graph;
  docString: string;
  /** metadata_props, values as written (JSON text for non-strings). */
  properties: Record<string, string>;
}

export function readModel(bytes: Uint8Array): ReadModel {
  let model: proto.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new FerryError('onnx_unreadable', `the file is not an ONNX model (${(error as Error).message})`, { hint: 'Check that the package files are complete.', cause: error });
  }
  const source = model.graph;
  if (!source) throw unsupported('no graph');
  const opset = model.opsetImport.find((o) => !o.domain)?.version;
  const graph = new Graph(source.name ?? 'model', Number(opset ?? 17));
  for (const o of model.opsetImport) if (o.domain) graph.domains.set(o.domain, Number(o.version));
  for (const v of source.input ?? []) {
    const info = valueInfo(v);
    graph.addInput(info.name, info.dtype, info.shape, info.doc);
  }
  for (const t of source.initializer ?? []) {
    const init = tensor(t);
    graph.uniqueName(init.name);
    graph.initializers.push(init);
  }
  for (const n of source.node ?? []) {
    if ((n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length)) throw unsupported(`a subgraph in node ${n.name}`);
    for (const name of [n.name ?? '', ...(n.output ?? [])]) graph.uniqueName(name);
    graph.nodes.push({
      name: n.name ?? '',
      opType: n.opType ?? '',
      domain: n.domain ?? '',
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attributes: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? '', attribute(a)])),
      ...(n.docString ? { doc: n.docString } : {}),
    });
  }
  for (const v of source.output ?? []) graph.outputs.push(valueInfo(v));
  const properties = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  return { graph, docString: model.docString ?? '', properties };
}
