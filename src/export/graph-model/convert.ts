/**
 * Converts a graph model's GraphDef into ferry's Graph: the nodes the outputs need, in dependency
 * order, each by the converter registered for its TF op. Everything is checked before the first
 * node converts, so an unsupported op fails the export with its name and node, never a partial graph.
 */
import { FerryError } from '../../errors.ts';
import { Graph, type Dim } from '../graph.ts';
import { attrShape, attrType } from './attributes.ts';
import { constantValue, OpContext, type Value } from './context.ts';
import { shapeOf, type GraphModelJson, type Tensor, type TfNode } from './format.ts';
import { OP_CONVERTERS, TF1_CONTROL_FLOW } from './registry.ts';
import { cancelTransposes } from '../transposes.ts';

export interface GraphModelIO {
  /** ONNX input name -> the TF tensor it feeds ("node:0"). */
  inputs: { name: string; tensor: string; node: TfNode }[];
  /** ONNX output name -> the TF tensor it reads. */
  outputs: { name: string; tensor: string }[];
}

/** "node", "node:1", "^node" (control) -> node name and output index. */
export function parseTensorRef(ref: string): { node: string; index: number; control: boolean } {
  const control = ref.startsWith('^');
  const bare = control ? ref.slice(1) : ref;
  const match = /^(.*?):(\d+)$/.exec(bare);
  return match ? { node: match[1]!, index: Number(match[2]), control } : { node: bare, index: 0, control };
}

const onnxName = (tensor: string) => tensor.replace(/:0$/, '').replace(/:(\d+)$/, '_$1');

/** The model's inputs and outputs: its signature where it has one, as tfjs reads it, else placeholders and leaves. */
export function graphModelIO(json: GraphModelJson): GraphModelIO {
  const nodes = json.modelTopology.node ?? [];
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const signature = json.signature;
  const placeholders = nodes.filter((n) => n.op === 'Placeholder' || n.op === 'PlaceholderWithDefault');
  const inputNodes = Object.values(signature?.inputs ?? {}).map((entry) => byName.get(parseTensorRef(entry.name).node)).filter((n): n is TfNode => n !== undefined);
  const inputs = (inputNodes.length ? inputNodes : placeholders.filter((n) => n.op === 'Placeholder')).map((node) => ({ name: node.name, tensor: `${node.name}:0`, node }));
  let outputs = Object.values(signature?.outputs ?? {}).map((entry) => entry.name).filter((name) => byName.has(parseTensorRef(name).node));
  if (outputs.length === 0) {
    const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map((ref) => parseTensorRef(ref).node)));
    outputs = nodes.filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp' && !n.op.startsWith('Placeholder')).map((n) => `${n.name}:0`);
  }
  return { inputs, outputs: outputs.map((tensor) => ({ name: onnxName(tensor), tensor })) };
}

/** The nodes the outputs depend on, each after its inputs. */
function reachableInOrder(byName: Map<string, TfNode>, outputs: string[]): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: { node: TfNode; next: number }[] = [];
  const push = (name: string) => {
    const node = byName.get(name);
    if (!node) throw new FerryError('export_bad_graph', `the graph refers to node ${name}, which it does not define`, { hint: 'model.json is damaged: convert the model again.', status: 422 });
    if (state.has(name)) return;
    state.set(name, 'open');
    stack.push({ node, next: 0 });
  };
  for (const out of outputs) {
    push(parseTensorRef(out).node);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const inputs = top.node.input ?? [];
      if (top.next < inputs.length) {
        const ref = parseTensorRef(inputs[top.next++]!);
        // NextIteration feeds a Merge backwards: a loop, refused by name before the walk needs an order.
        if (!ref.control && state.get(ref.node) !== 'open') push(ref.node);
        continue;
      }
      stack.pop();
      state.set(top.node.name, 'done');
      order.push(top.node);
    }
  }
  return order;
}

/** Ops the walk itself handles: weights and fed inputs. */
const WALK_OPS = new Set(['Const', 'Placeholder']);
const hasConverter = (op: string) => WALK_OPS.has(op) || OP_CONVERTERS[op] !== undefined;

function unsupported(nodes: TfNode[]): FerryError | undefined {
  const loop = nodes.find((n) => TF1_CONTROL_FLOW.includes(n.op));
  if (loop) {
    return new FerryError('export_control_flow', `node ${loop.name} (${loop.op}) is TF1 control flow (a while loop or cond: ${TF1_CONTROL_FLOW.join('/')}), which ferry does not convert to ONNX Loop/If yet`, {
      hint: 'Export the model from TensorFlow without the loop (e.g. without its non-max suppression post-processing) and run that step outside the graph.',
      status: 422,
    });
  }
  const missing = new Map<string, string>();
  for (const n of nodes) if (!hasConverter(n.op) && !missing.has(n.op)) missing.set(n.op, n.name);
  if (missing.size === 0) return undefined;
  const list = [...missing].map(([op, node]) => `${op} (node ${node})`).join(', ');
  return new FerryError('export_unsupported_op', `the graph model uses ops ferry cannot convert yet: ${list}`, {
    hint: 'Run `ferry inspect model.json` for the full list; open an issue with the model.json to get them added.',
    status: 422,
  });
}

/** The ops that the outputs need and that ferry has no converter for (for `ferry inspect`). */
export function unsupportedOps(json: GraphModelJson): string[] {
  const byName = new Map((json.modelTopology.node ?? []).map((n) => [n.name, n]));
  const nodes = reachableInOrder(byName, graphModelIO(json).outputs.map((o) => o.tensor));
  return [...new Set(nodes.filter((n) => !hasConverter(n.op) || TF1_CONTROL_FLOW.includes(n.op)).map((n) => n.op))].sort();
}

function symbolic(shape: (number | null)[], input: string): Dim[] {
  return shape.map((d, i) => (d !== null ? d : i === 0 ? 'batch_size' : `${input}_dim_${i}`));
}

export function convertGraphModel(json: GraphModelJson, weights: Map<string, Tensor>, options: { opset: number; name: string }): Graph {
  const nodes = json.modelTopology.node ?? [];
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const io = graphModelIO(json);
  const order = reachableInOrder(byName, io.outputs.map((o) => o.tensor));
  const refusal = unsupported(order);
  if (refusal) throw refusal;

  const graph = new Graph(options.name, options.opset);
  const values = new Map<string, Value[]>();
  const signatureShapes = new Map(Object.values(json.signature?.inputs ?? {}).map((e) => [parseTensorRef(e.name).node, shapeOf(e.tensorShape)]));
  for (const input of io.inputs) {
    const { dtype, tfName } = attrType(input.node, 'dtype');
    if (!dtype) throw new FerryError('export_unknown_dtype', `input ${input.name} has dtype ${tfName}, which ferry cannot feed`, { hint: 'Inputs ferry exports: float32, float16, int32, int64, int8, uint8, bool.', status: 422 });
    const shape = signatureShapes.get(input.node.name) ?? attrShape(input.node, 'shape');
    if (!shape) throw new FerryError('export_unknown_shape', `input ${input.name} has no known rank`, { hint: 'Convert the model with a fixed-rank input signature.', status: 422 });
    values.set(input.node.name, [{ name: graph.addInput(input.name, dtype, symbolic(shape, input.name)), dtype, shape }]);
  }
  for (const node of order) {
    if (values.has(node.name)) continue;
    if (node.op === 'Const') {
      const tensor = weights.get(node.name);
      if (!tensor) {
        throw new FerryError('export_missing_weight', `node ${node.name} (Const) has no weight in the manifest`, { hint: 'model.json and its weight files do not belong together: convert the model again.', status: 422 });
      }
      values.set(node.name, [constantValue(tensor)]);
      continue;
    }
    const inputs = (node.input ?? []).map(parseTensorRef).filter((r) => !r.control).map((r) => {
      const value = values.get(r.node)?.[r.index];
      if (!value) throw new FerryError('export_bad_graph', `node ${node.name} (${node.op}) reads ${r.node}:${r.index}, which no converted node gives`, { hint: 'ferry converts only the first output of some ops: open an issue with the model.json.', status: 422 });
      return value;
    });
    const op = new OpContext(graph, node, inputs);
    values.set(node.name, graph.inScope(node.name, () => convertNode(node, op)));
  }
  for (const output of io.outputs) {
    const ref = parseTensorRef(output.tensor);
    const value = values.get(ref.node)?.[ref.index];
    if (!value) throw new FerryError('export_bad_graph', `output ${output.tensor} is not produced by the graph`, { hint: 'model.json is damaged: convert the model again.', status: 422 });
    const source = new OpContext(graph, byName.get(ref.node)!, [value]).name(0);
    if (!value.shape) throw new FerryError('export_unknown_shape', `output ${output.name}: ferry could not infer its rank`, { hint: 'Open an issue with the model.json.', status: 422 });
    graph.addOutput(source, output.name, value.dtype, symbolic(value.shape, output.name));
  }
  cancelTransposes(graph);
  return graph;
}

/**
 * One node through its converter. Converters check what a well-formed GraphDef can hold; a damaged
 * file can hold anything (a string where a list is, a list of objects), and what that throws must
 * reach the user as one line naming the node, not a TypeError's stack.
 */
function convertNode(node: TfNode, op: OpContext): Value[] {
  try {
    return OP_CONVERTERS[node.op]!(op);
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError('export_bad_graph', `node ${node.name} (${node.op}) cannot be converted: its attributes or inputs are not what a ${node.op} node holds (${error instanceof Error ? error.message : String(error)})`, {
      hint: 'model.json looks damaged: convert the model again with tensorflowjs_converter.',
      status: 422,
    });
  }
}
