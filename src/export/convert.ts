/**
 * Walks a tfjs Layers model (Sequential or functional, shared layers included) call by call in
 * dependency order and converts each call with the converter registered for its class.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import { Graph, type Dim, type DType } from './graph.ts';
import { propagatedMask } from './converters/masking.ts';
import { converterFor } from './converters/registry.ts';
import type { ConvertContext, LayerCall, LayerWeight, Target, TensorRef } from './converters/types.ts';
import { cancelTransposes } from './transposes.ts';

// The tfjs internals the walk reads (public in tfjs-layers' JS, protected in its typings).
interface TfNode {
  inboundLayers: TfLayer[];
  nodeIndices: number[];
  tensorIndices: number[];
  inputShapes: (number | null)[] | (number | null)[][];
  outputShapes: (number | null)[] | (number | null)[][];
  outputTensors: { dtype: string }[];
}
interface TfLayer {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: TfNode[];
  weights: { originalName: string; shape: number[]; read(): tfTypes.Tensor }[];
}
interface TfContainer {
  layers: TfLayer[];
  inputLayers: TfLayer[];
  outputLayers: TfLayer[];
  outputLayersNodeIndices: number[];
  outputLayersTensorIndices: number[];
  containerNodes: Set<string>;
  inputs: { dtype: string; shape: (number | null)[] }[];
  outputs: { shape: (number | null)[] }[];
}

/** How the graph's inputs and outputs are named: after the tfjs model, or as a language model. */
export interface GraphIO {
  inputs(g: Graph, model: { name: string; dtype: string; shape: (number | null)[] }[]): TensorRef[];
  outputs(g: Graph, results: TensorRef[], names: string[]): void;
  lm?: ConvertContext['lm'];
}

export interface ConvertOptions {
  opset: number;
  target: Target;
  io?: GraphIO;
  name?: string;
}

export interface ConvertedGraph {
  graph: Graph;
  cpuOnlyNodes: string[];
}

export function symbolicShape(shape: (number | null)[]): Dim[] {
  return shape.map((d, i) => (d !== null ? d : i === 0 ? 'batch_size' : i === 1 ? 'sequence_length' : `dim_${i}`));
}

function onnxDtype(dtype: string): DType {
  return dtype === 'int32' ? 'int32' : dtype === 'bool' ? 'bool' : 'float32';
}

/** Inputs and outputs named after the tfjs model (a foreign model.json). */
export const modelNamedIO: GraphIO = {
  inputs: (g, inputs) =>
    inputs.map((input) => ({ name: g.addInput(input.name, onnxDtype(input.dtype), symbolicShape(input.shape)), dtype: onnxDtype(input.dtype), shape: input.shape })),
  outputs: (g, results, names) =>
    results.forEach((ref, i) => g.addOutput(ref.name, names[i]!, ref.dtype, symbolicShape(ref.shape))),
};

function containerOf(model: tfTypes.LayersModel): TfContainer {
  const sequential = model as unknown as { model?: TfContainer; build?: () => void; getClassName(): string };
  if (sequential.getClassName() === 'Sequential') {
    if (!sequential.model) sequential.build?.();
    return sequential.model!;
  }
  return model as unknown as TfContainer;
}

function asList<T>(shapes: T[] | T[][]): T[][] {
  return Array.isArray(shapes[0]) ? (shapes as T[][]) : [shapes as T[]];
}

function layerWeights(layer: TfLayer): LayerWeight[] {
  return layer.weights.map((v) => {
    const t = v.read();
    return { name: v.originalName, shape: [...t.shape], data: t.dataSync() as Float32Array };
  });
}

const NESTED_MODELS = new Set(['Sequential', 'Model', 'Functional']);

export function convertModel(model: tfTypes.LayersModel, options: ConvertOptions): ConvertedGraph {
  const net = containerOf(model);
  const graph = new Graph(options.name ?? model.name, options.opset);
  const io = options.io ?? modelNamedIO;
  const ctx: ConvertContext = { graph, target: options.target, lm: io.lm, counters: { recurrent: 0, block: 0 }, cpuOnlyNodes: [] };
  const inputRefs = io.inputs(graph, net.inputLayers.map((layer, i) => ({ name: layer.name, dtype: net.inputs[i]!.dtype, shape: net.inputs[i]!.shape })));
  const results = walk(net, inputRefs, ctx);
  const names = net.outputLayers.map((layer, i) =>
    net.outputLayers.filter((l) => l === layer).length > 1 ? `${layer.name}_${net.outputLayersTensorIndices[i]}` : layer.name,
  );
  io.outputs(graph, results, names);
  cancelTransposes(graph);
  return { graph, cpuOnlyNodes: ctx.cpuOnlyNodes };
}

/** Converts the calls of one container (the model, or a model used as a layer inside it) on `inputRefs`; returns its outputs. */
function walk(net: TfContainer, inputRefs: TensorRef[], ctx: ConvertContext): TensorRef[] {
  const graph = ctx.graph;
  const tensors = new Map<string, TensorRef>();
  const key = (layer: string, node: number, tensor: number) => `${layer}\u0000${node}\u0000${tensor}`;
  net.inputLayers.forEach((layer, i) => tensors.set(key(layer.name, 0, 0), inputRefs[i]!));

  const pending: { layer: TfLayer; nodeIndex: number }[] = [];
  for (const layer of net.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    layer.inboundNodes.forEach((_, nodeIndex) => {
      if (net.containerNodes.has(`${layer.name}_ib-${nodeIndex}`)) pending.push({ layer, nodeIndex });
    });
  }
  const weightCache = new Map<TfLayer, LayerWeight[]>();
  while (pending.length > 0) {
    const ready = pending.findIndex(({ layer, nodeIndex }) => {
      const node = layer.inboundNodes[nodeIndex]!;
      return node.inboundLayers.every((l, i) => tensors.has(key(l.name, node.nodeIndices[i]!, node.tensorIndices[i]!)));
    });
    if (ready < 0) throw new Error(`tfjs graph has a cycle or a dangling input at ${pending[0]!.layer.name}`);
    const { layer, nodeIndex } = pending.splice(ready, 1)[0]!;
    const node = layer.inboundNodes[nodeIndex]!;
    const inputs = node.inboundLayers.map((l, i) => tensors.get(key(l.name, node.nodeIndices[i]!, node.tensorIndices[i]!))!);
    const outputShapes = asList(node.outputShapes);
    let outputs: Omit<TensorRef, 'shape'>[];
    if (NESTED_MODELS.has(layer.getClassName())) {
      outputs = graph.inScope(layer.name, () => walk(containerOf(layer as unknown as tfTypes.LayersModel), inputs, ctx));
    } else {
      if (!weightCache.has(layer)) weightCache.set(layer, layerWeights(layer));
      const call: LayerCall = {
        name: layer.name,
        className: layer.getClassName(),
        config: layer.getConfig(),
        weights: weightCache.get(layer)!,
        nodeIndex,
        inputShapes: asList(node.inputShapes),
        outputShapes,
      };
      const converter = converterFor(call);
      outputs = graph.inScope(layer.name, () => converter(call, inputs, ctx)).map((ref, i) => ({ ...ref, mask: ref.mask ?? propagatedMask(call, inputs[0], i) }));
    }
    if (outputs.length !== outputShapes.length) {
      throw new Error(`converter for ${layer.getClassName()} gave ${outputs.length} outputs; tfjs has ${outputShapes.length}`);
    }
    outputs.forEach((ref, i) => tensors.set(key(layer.name, nodeIndex, i), { ...ref, shape: outputShapes[i]! }));
  }
  return net.outputLayers.map((layer, i) => tensors.get(key(layer.name, net.outputLayersNodeIndices[i]!, net.outputLayersTensorIndices[i]!))!);
}
