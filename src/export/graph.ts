/**
 * A small typed ONNX graph under construction: named inputs and outputs with symbolic dims,
 * initializers kept as typed arrays (written as raw_data), nodes with unique names, and the
 * opset imports the nodes need. The writer turns it into a ModelProto.
 */

export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint64' | 'uint32' | 'uint16' | 'uint8' | 'bool' | 'string';
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  dtype: DType;
  shape: Dim[];
  doc?: string;
}

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export interface Initializer {
  name: string;
  dtype: DType;
  dims: number[];
  data: TensorData;
}

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: Initializer }
  /** An element type (Cast's `to`): written as its TensorProto.DataType number by the writer. */
  | { kind: 'dtype'; value: DType }
  /** A subgraph (If's branches), made with `Graph.branch`; it may read the outer graph's tensors. */
  | { kind: 'graph'; value: Graph };

export const attr = {
  int: (value: number): Attribute => ({ kind: 'int', value }),
  float: (value: number): Attribute => ({ kind: 'float', value }),
  string: (value: string): Attribute => ({ kind: 'string', value }),
  ints: (value: number[]): Attribute => ({ kind: 'ints', value }),
  floats: (value: number[]): Attribute => ({ kind: 'floats', value }),
  strings: (value: string[]): Attribute => ({ kind: 'strings', value }),
  dtype: (value: DType): Attribute => ({ kind: 'dtype', value }),
  graph: (value: Graph): Attribute => ({ kind: 'graph', value }),
};

export interface GraphNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
  doc?: string;
}

export interface NodeOptions {
  outputs?: number | string[];
  domain?: string;
  name?: string;
  doc?: string;
}

/** The most negative finite float32: masked attention scores (never -inf, which gives NaN rows). */
export const LOWEST_FLOAT32 = -3.4028234663852886e38;

export const MICROSOFT_DOMAIN = 'com.microsoft';

export class Graph {
  readonly name: string;
  readonly opset: number;
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers: Initializer[] = [];
  readonly nodes: GraphNode[] = [];
  readonly domains = new Map<string, number>();
  private readonly used: Set<string>;
  /** The same typed array (a shared layer's weight) becomes one initializer. */
  private readonly byData = new Map<TensorData, string>();
  private scope = '';

  constructor(name: string, opset: number, used = new Set<string>()) {
    this.name = name;
    this.opset = opset;
    this.used = used;
    this.domains.set('', opset);
  }

  /**
   * A subgraph for a control-flow node (If): it shares this graph's names, so that nothing it
   * defines shadows an outer tensor (ONNX forbids that), and may read every outer tensor.
   */
  branch(name: string): Graph {
    return new Graph(this.uniqueName(name), this.opset, this.used);
  }

  /** A name not used yet in this graph, derived from `base`. */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /**
   * A copy whose lists can be rewritten without touching this graph (initializer data is shared).
   * Subgraphs (If branches) are copied too and share the copy's names, as `branch` makes them.
   */
  clone(used = new Set<string>()): Graph {
    const copy = new Graph(this.name, this.opset, used);
    copy.inputs.push(...this.inputs.map((v) => ({ ...v })));
    copy.outputs.push(...this.outputs.map((v) => ({ ...v })));
    copy.initializers.push(...this.initializers.map((i) => ({ ...i })));
    const attributes = (a: Record<string, Attribute>) => Object.fromEntries(Object.entries(a).map(([k, v]): [string, Attribute] => [k, v.kind === 'graph' ? { kind: 'graph', value: v.value.clone(used) } : v]));
    copy.nodes.push(...this.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attributes: attributes(n.attributes) })));
    for (const [domain, version] of this.domains) copy.domains.set(domain, version);
    for (const name of this.used) copy.used.add(name);
    return copy;
  }

  /** Runs `build` with node and tensor names prefixed by `scope` (the tfjs layer name). */
  inScope<T>(scope: string, build: () => T): T {
    const outer = this.scope;
    this.scope = outer ? `${outer}/${scope}` : scope;
    try {
      return build();
    } finally {
      this.scope = outer;
    }
  }

  private scoped(base: string): string {
    return this.uniqueName(this.scope ? `${this.scope}/${base}` : base);
  }

  addInput(name: string, dtype: DType, shape: Dim[], doc?: string): string {
    if (this.used.has(name)) throw new Error(`graph name ${name} is already taken`);
    this.used.add(name);
    this.inputs.push({ name, dtype, shape, doc });
    return name;
  }

  /** Declares `tensor` a graph output named `name` (an Identity when the names differ). */
  addOutput(tensor: string, name: string, dtype: DType, shape: Dim[], doc?: string): string {
    let source = tensor;
    if (source !== name) {
      if (this.used.has(name)) throw new Error(`graph name ${name} is already taken`);
      this.used.add(name);
      this.nodes.push({ name: this.uniqueName(`${name}/Identity`), opType: 'Identity', domain: '', inputs: [source], outputs: [name], attributes: {} });
      source = name;
    }
    this.outputs.push({ name: source, dtype, shape, doc });
    return source;
  }

  /**
   * Declares `tensor`, made by a node of this graph, a graph output named `name` by renaming it
   * where it is made and read (subgraphs included): addOutput's Identity is a copy on every run,
   * which for a cache passed back each step is megabytes.
   */
  outputAs(tensor: string, name: string, dtype: DType, shape: Dim[], doc?: string): string {
    const producer = this.producerOf(tensor);
    if (!producer) return this.addOutput(tensor, name, dtype, shape, doc);
    if (this.used.has(name)) throw new Error(`graph name ${name} is already taken`);
    this.used.add(name);
    const rename = (g: Graph): void => {
      for (const node of g.nodes) {
        node.inputs = node.inputs.map((input) => (input === tensor ? name : input));
        node.outputs = node.outputs.map((output) => (output === tensor ? name : output));
        for (const a of Object.values(node.attributes)) if (a.kind === 'graph') rename(a.value);
      }
      for (const output of g.outputs) if (output.name === tensor) output.name = name;
    };
    rename(this);
    this.outputs.push({ name, dtype, shape, doc });
    return name;
  }

  /** Reorders the graph outputs: those named in `first` lead, in that order. */
  orderOutputs(first: string[]): void {
    const rank = (v: ValueInfo) => {
      const i = first.indexOf(v.name);
      return i < 0 ? first.length : i;
    };
    this.outputs.sort((a, b) => rank(a) - rank(b));
  }

  addInitializer(base: string, dtype: DType, dims: number[], data: TensorData): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`initializer ${base}: ${data.length} values for dims [${dims}]`);
    const known = this.byData.get(data);
    if (known !== undefined) return known;
    const name = this.scoped(base);
    this.initializers.push({ name, dtype, dims, data });
    this.byData.set(data, name);
    return name;
  }

  float(base: string, dims: number[], data: Float32Array | number[]): string {
    return this.addInitializer(base, 'float32', dims, data instanceof Float32Array ? data : Float32Array.from(data));
  }

  int64(base: string, values: number[], dims: number[] = [values.length]): string {
    return this.addInitializer(base, 'int64', dims, BigInt64Array.from(values.map(BigInt)));
  }

  scalarFloat(base: string, value: number): string {
    return this.addInitializer(base, 'float32', [], Float32Array.of(value));
  }

  scalarInt64(base: string, value: number): string {
    return this.addInitializer(base, 'int64', [], BigInt64Array.of(BigInt(value)));
  }

  /** Adds a node; returns its output names. */
  node(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, options: NodeOptions = {}): string[] {
    const domain = options.domain ?? '';
    if (domain !== '' && !this.domains.has(domain)) this.domains.set(domain, 1);
    const name = this.scoped(options.name ?? opType);
    const outputs = Array.isArray(options.outputs)
      ? options.outputs
      : Array.from({ length: options.outputs ?? 1 }, (_, i) => this.uniqueName(`${name}_output_${i}`));
    this.nodes.push({ name, opType, domain, inputs, outputs, attributes, doc: options.doc });
    return outputs;
  }

  /** Adds a node with one output; returns that output's name. */
  op(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, options: Omit<NodeOptions, 'outputs'> = {}): string {
    return this.node(opType, inputs, attributes, options)[0]!;
  }

  /** The name of the node that produced `tensor`. */
  producerOf(tensor: string): GraphNode | undefined {
    return this.nodes.find((n) => n.outputs.includes(tensor));
  }

  // Helpers for ops whose signature changed across opsets.

  unsqueeze(x: string, axes: number[]): string {
    return this.op('Unsqueeze', [x, this.int64('axes', axes)]);
  }

  squeeze(x: string, axes: number[]): string {
    return this.op('Squeeze', [x, this.int64('axes', axes)]);
  }

  reduce(opType: 'ReduceMean' | 'ReduceMax' | 'ReduceSum', x: string, axes: number[], keepdims: boolean): string {
    const keep = { keepdims: attr.int(keepdims ? 1 : 0) };
    if (opType === 'ReduceSum' || this.opset >= 18) return this.op(opType, [x, this.int64('axes', axes)], keep);
    return this.op(opType, [x], { ...keep, axes: attr.ints(axes) });
  }

  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm: attr.ints(perm) });
  }

  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.int64('shape', shape)]);
  }

  /** x[..., start:end] along `axis` with static bounds. */
  slice(x: string, axis: number, start: number, end: number): string {
    return this.op('Slice', [x, this.int64('starts', [start]), this.int64('ends', [end]), this.int64('axes', [axis])]);
  }
}
