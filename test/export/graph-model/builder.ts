/**
 * Hand-built tfjs graph models for the tests: GraphDef nodes in the JSON form tensorflowjs_converter
 * writes (ints as strings, strings base64), weights in a shard, optionally quantized the way the
 * converter quantizes (uint8/uint16 affine with scale and min, float16).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TfAttrValue, TfNode, WeightSpec } from '../../../src/export/graph-model/format.ts';
import { mulberry32 } from '../../../src/random.ts';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export const a = {
  s: (v: string): TfAttrValue => ({ s: b64(v) }),
  i: (v: number): TfAttrValue => ({ i: String(v) }),
  f: (v: number): TfAttrValue => ({ f: v }),
  b: (v: boolean): TfAttrValue => ({ b: v }),
  type: (v: string): TfAttrValue => ({ type: v }),
  ints: (v: number[]): TfAttrValue => ({ list: { i: v.map(String) } }),
  strings: (v: string[]): TfAttrValue => ({ list: { s: v.map(b64) } }),
  shape: (dims: number[]): TfAttrValue => ({ shape: { dim: dims.map((d) => ({ size: String(d) })) } }),
};

export type Quantization = 'uint8' | 'uint16' | 'float16';

interface PendingWeight { spec: WeightSpec; values: number[] }

function floatToHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0]!;
  const sign = (bits >> 16) & 0x8000;
  const exponent = ((bits >> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) return sign | Math.round((mantissa | 0x800000) / 2 ** (14 - exponent));
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | Math.round(mantissa / 8192);
}

export class GraphModelBuilder {
  readonly nodes: TfNode[] = [];
  private readonly weights: PendingWeight[] = [];
  private readonly outputs: string[] = [];
  private readonly random = mulberry32(7);

  placeholder(name: string, dims: number[], dtype = 'DT_FLOAT'): string {
    this.nodes.push({ name, op: 'Placeholder', attr: { dtype: a.type(dtype), shape: a.shape(dims) } });
    return name;
  }

  /** A Const node with its weight; random values in [-1, 1) unless given. */
  constant(name: string, shape: number[], values?: number[], dtype: 'float32' | 'int32' | 'bool' = 'float32', quantization?: Quantization): string {
    const count = shape.reduce((x, y) => x * y, 1);
    const data = values ?? Array.from({ length: count }, () => this.random() * 2 - 1);
    const tfType = dtype === 'float32' ? 'DT_FLOAT' : dtype === 'int32' ? 'DT_INT32' : 'DT_BOOL';
    this.nodes.push({ name, op: 'Const', attr: { value: { tensor: { dtype: tfType, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } }, dtype: a.type(tfType) } });
    const spec: WeightSpec = { name, shape, dtype };
    if (quantization) {
      if (quantization === 'float16') spec.quantization = { dtype: 'float16', original_dtype: dtype };
      else {
        const min = Math.min(...data);
        const levels = quantization === 'uint8' ? 255 : 65535;
        const scale = (Math.max(...data) - min) / levels || 1;
        spec.quantization = { dtype: quantization, min, scale, original_dtype: dtype };
      }
    }
    this.weights.push({ spec, values: data });
    return name;
  }

  ints(name: string, values: number[], shape = [values.length]): string {
    return this.constant(name, shape, values, 'int32');
  }

  node(op: string, name: string, inputs: string[], attr: Record<string, TfAttrValue> = {}): string {
    this.nodes.push({ name, op, input: inputs, attr: { T: a.type('DT_FLOAT'), ...attr } });
    return name;
  }

  output(tensor: string): void {
    this.outputs.push(tensor);
  }

  private shard(): Buffer {
    const parts = this.weights.map(({ spec, values }) => {
      const q = spec.quantization;
      if (q?.dtype === 'float16') return Buffer.from(Uint16Array.from(values, floatToHalf).buffer);
      if (q) {
        const codes = values.map((v) => Math.round((v - q.min!) / q.scale!));
        return Buffer.from((q.dtype === 'uint8' ? Uint8Array.from(codes) : Uint16Array.from(codes)).buffer);
      }
      const typed = spec.dtype === 'float32' ? Float32Array.from(values) : spec.dtype === 'int32' ? Int32Array.from(values) : Uint8Array.from(values);
      return Buffer.from(typed.buffer);
    });
    return Buffer.concat(parts);
  }

  /** Writes model.json (+ group1-shard1of1.bin) into `dir`; returns the model.json path. */
  async write(dir: string): Promise<string> {
    const shardName = 'group1-shard1of1.bin';
    const signature = this.outputs.length
      ? { outputs: Object.fromEntries(this.outputs.map((o) => [o, { name: o.includes(':') ? o : `${o}:0` }])) }
      : undefined;
    const json = {
      format: 'graph-model',
      generatedBy: 'ferry tests',
      convertedBy: 'hand',
      modelTopology: { node: this.nodes, library: {}, versions: { producer: 1 } },
      weightsManifest: [{ paths: [shardName], weights: this.weights.map((w) => w.spec) }],
      ...(signature ? { signature } : {}),
    };
    await writeFile(path.join(dir, shardName), this.shard());
    const file = path.join(dir, 'model.json');
    await writeFile(file, JSON.stringify(json));
    return file;
  }
}
