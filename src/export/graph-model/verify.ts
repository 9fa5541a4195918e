/**
 * Parity of an exported graph model with tfjs's own GraphModel.execute on the cpu backend (the
 * wasm backend is not a trustworthy reference: on an SSD detector it returned 1 detection where
 * cpu returned 100). Inputs are seeded, in the range the model expects (0..255 for integer
 * images, 0..1 for float images); dynamic dims are checked at two sizes. Each output's largest
 * difference is measured relative to that output's scale (its largest finite magnitude, at least 1).
 *
 * A Sigmoid or Softmax output squashes its logits' scale to 1 but keeps their float32 rounding
 * (times the activation's slope): BlazePose's segmentation logits reach 700, where rounding of
 * 1e-5 of the logits' scale shows as 2e-3 of the mask. Such an output's scale is therefore at
 * least its logits' largest magnitude times the activation's largest slope (Sigmoid 1/4, Softmax
 * 1/2): the tolerance then allows the difference that a logits difference within the tolerance
 * would make where the activation is steepest, and no more.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { FerryError } from '../../errors.ts';
import { mulberry32 } from '../../random.ts';
import type { Graph, ValueInfo } from '../graph.ts';
import { createSession, runSession } from '../runner.ts';
import { parseTensorRef, type GraphModelIO } from './convert.ts';
import type { GraphModelJson } from './format.ts';
import type { GraphModelFiles } from './read.ts';

export const GRAPH_MODEL_TOLERANCE = 1e-4;

export interface GraphParityCase {
  name: string;
  maxAbsDiff: number;
  /**
   * The output's largest magnitude in tfjs, at least 1 (so near-zero outputs, e.g. sigmoid(-16),
   * compare absolutely); for a Sigmoid or Softmax output, at least slope x its logits' (see above).
   */
  scale: number;
  relative: number;
  /** A Sigmoid or Softmax output: the activation and its logits' largest magnitude in tfjs. */
  squashed?: { activation: string; logitsScale: number };
}

/** The largest slope of each squashing activation: |d output| <= slope x max |d logit|. */
const SQUASHING_SLOPE: Readonly<Record<string, number>> = { Sigmoid: 0.25, Softmax: 0.5 };

export interface SquashedOutput {
  /** The index of the output in GraphModelIO.outputs. */
  output: number;
  activation: string;
  /** The TF tensor of its logits (the activation's input). */
  logits: string;
}

/** The outputs produced by a Sigmoid or Softmax (through Identity nodes), with the tensor of their logits. */
export function squashedOutputs(json: GraphModelJson, io: GraphModelIO): SquashedOutput[] {
  const byName = new Map((json.modelTopology.node ?? []).map((n) => [n.name, n]));
  const found: SquashedOutput[] = [];
  io.outputs.forEach((o, output) => {
    let node = byName.get(parseTensorRef(o.tensor).node);
    const firstInput = () => (node?.input ?? []).find((ref) => !parseTensorRef(ref).control);
    for (let hops = 0; node?.op === 'Identity' && hops < byName.size; hops++) node = byName.get(parseTensorRef(firstInput() ?? '').node);
    const logits = firstInput();
    if (node && SQUASHING_SLOPE[node.op] !== undefined && logits) found.push({ output, activation: node.op, logits });
  });
  return found;
}

/** The largest finite magnitude: an infinity (a -inf mask reaching an output) would make every difference 0, a NaN the scale NaN. */
function largestMagnitude(values: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) largest = Math.max(largest, Math.abs(values[i]!));
  return largest;
}

export interface GraphParityReport {
  reference: 'tfjs cpu';
  tolerance: number;
  maxRelativeDiff: number;
  cases: GraphParityCase[];
}

/** tfjs loads the very bytes ferry read, from memory. */
export async function loadTfjsGraphModel(files: GraphModelFiles): Promise<tf.GraphModel> {
  const { json, groups } = files;
  const weightData = Buffer.concat(groups.map((g) => g.bytes));
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    format: 'graph-model',
    weightSpecs: groups.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
    weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength) as ArrayBuffer,
    signature: json.signature as object | undefined,
  };
  return tf.loadGraphModel(tf.io.fromMemory(artifacts));
}

/** Sizes for the dynamic dims of case `k` (0 or 1): batch 1 then 2; other dims 64 then 96. */
function concreteShape(input: ValueInfo, k: number): number[] {
  return input.shape.map((d, axis) => (typeof d === 'number' ? d : axis === 0 ? k + 1 : 64 + 32 * k));
}

export interface Feed { shape: number[]; data: Float32Array | Int32Array | Uint8Array; dtype: ValueInfo['dtype'] }

function seededInput(input: ValueInfo, shape: number[], random: () => number): Feed {
  const size = shape.reduce((a, b) => a * b, 1);
  const isImage = shape.length === 4 && (shape[3] === 3 || shape[3] === 1 || shape[1] === 3);
  switch (input.dtype) {
    case 'uint8': return { shape, dtype: 'uint8', data: Uint8Array.from({ length: size }, () => Math.floor(random() * 256)) };
    case 'int32': return { shape, dtype: 'int32', data: Int32Array.from({ length: size }, () => Math.floor(random() * (isImage ? 256 : 4))) };
    case 'bool': return { shape, dtype: 'bool', data: Uint8Array.from({ length: size }, () => (random() < 0.5 ? 1 : 0)) };
    default: return { shape, dtype: 'float32', data: Float32Array.from({ length: size }, () => (isImage ? random() : random() * 2 - 1)) };
  }
}

export function ortTensor(feed: Feed): ort.Tensor {
  if (feed.dtype === 'bool') return new ort.Tensor('bool', feed.data as Uint8Array, feed.shape);
  return new ort.Tensor(feed.dtype as 'float32', feed.data as Float32Array, feed.shape);
}

export function tfTensor(feed: Feed): tf.Tensor {
  if (feed.dtype === 'float32') return tf.tensor(feed.data, feed.shape, 'float32');
  if (feed.dtype === 'bool') return tf.tensor(Array.from(feed.data, Boolean), feed.shape, 'bool');
  return tf.tensor(Int32Array.from(feed.data), feed.shape, 'int32');
}

function compare(name: string, actual: ArrayLike<number | bigint>, expected: ArrayLike<number>, squashed?: GraphParityCase['squashed']): GraphParityCase {
  let scale = Math.max(1, largestMagnitude(expected));
  if (squashed) scale = Math.max(scale, SQUASHING_SLOPE[squashed.activation]! * squashed.logitsScale);
  let max = actual.length === expected.length ? 0 : Infinity;
  for (let i = 0; i < expected.length && max !== Infinity; i++) {
    // The same infinity (a -inf mask constant reaching an output) or NaN on both sides agrees.
    const [a, e] = [Number(actual[i]), expected[i]!];
    const d = a === e || (Number.isNaN(a) && Number.isNaN(e)) ? 0 : Math.abs(a - e);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return { name, maxAbsDiff: max, scale, relative: max / scale, ...(squashed ? { squashed } : {}) };
}

/** Seeded inputs for every graph input, at the dynamic-dim sizes of case `k` (0 or 1). */
export function seededFeeds(graph: Graph, k: number, random: () => number): Feed[] {
  return graph.inputs.map((input) => seededInput(input, concreteShape(input, k), random));
}

/** The most elements one seeded input may have: verification holds each input and output in memory on both sides. */
export const MAX_FEED_ELEMENTS = 2 ** 26;

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * tfjs's values of `tensors` for every case, before onnxruntime runs: when tfjs cannot load or run
 * model.json itself, the model is at fault and the user hears that, not what onnxruntime makes of
 * the export.
 */
async function tfjsOutputs(files: GraphModelFiles, io: GraphModelIO, tensors: string[], cases: Feed[][]): Promise<Values[][]> {
  const failed = (stage: string, error: unknown, inputs = '') => new FerryError('export_tfjs_failed', `tfjs cannot ${stage} ${files.modelJsonPath} itself${inputs}: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 400)}`, {
    hint: 'model.json does not run in tfjs either, so it is damaged or was converted wrongly: convert it again with tensorflowjs_converter. --no-verify writes the package without this check.',
    status: 422,
    cause: error,
  });
  let model: tf.GraphModel;
  try {
    model = await loadTfjsGraphModel(files);
  } catch (error) {
    throw failed('load', error);
  }
  try {
    return cases.map((feeds) => {
      const inputs = Object.fromEntries(io.inputs.map((v, i) => [v.node.name, tfTensor(feeds[i]!)]));
      try {
        const result = model.execute(inputs, tensors);
        const list = Array.isArray(result) ? result : [result];
        try {
          // Copies in the tensor's own dtype: an int32 output (indices, shapes) compares exactly.
          return list.map((t) => (t.dataSync() as Values).slice());
        } finally {
          tf.dispose(list);
        }
      } catch (error) {
        throw failed('run', error, ` (on inputs ${feeds.map((f) => `[${f.shape}]`).join(' ')})`);
      } finally {
        tf.dispose(Object.values(inputs));
      }
    });
  } finally {
    model.dispose();
  }
}

/** Runs both sides on the same feeds; one case per output and input size. */
export async function verifyGraphModel(files: GraphModelFiles, io: GraphModelIO, graph: Graph, onnx: Uint8Array, options: { tolerance?: number; log?: (line: string) => void } = {}): Promise<GraphParityReport> {
  const log = options.log ?? (() => {});
  const tolerance = options.tolerance ?? GRAPH_MODEL_TOLERANCE;
  const squashed = squashedOutputs(files.json, io);
  const random = mulberry32(20261204);
  const dynamic = graph.inputs.some((v) => v.shape.some((d) => typeof d !== 'number'));
  const sizes = (dynamic ? [0, 1] : [0]).map((k) => graph.inputs.map((input) => concreteShape(input, k)));
  for (const shapes of sizes) {
    shapes.forEach((shape, i) => {
      const count = shape.reduce((a, b) => a * b, 1);
      if (count > MAX_FEED_ELEMENTS) {
        throw new FerryError('export_verify_too_large', `input ${graph.inputs[i]!.name} has the shape [${shape}] in verification: ${count.toExponential(2)} elements, more than the ${MAX_FEED_ELEMENTS} ferry feeds to tfjs and onnxruntime`, {
          hint: 'Check the input shape in model.json; a model this large can be written with --no-verify (unchecked).',
          status: 422,
        });
      }
    });
  }
  const feeds = sizes.map((_, k) => seededFeeds(graph, k, random));
  const previousBackend = tf.engine().backendName as string | null;
  await tf.setBackend('cpu');
  let expected: Values[][];
  try {
    expected = await tfjsOutputs(files, io, [...io.outputs.map((o) => o.tensor), ...squashed.map((s) => s.logits)], feeds);
  } finally {
    if (previousBackend && previousBackend !== 'cpu') await tf.setBackend(previousBackend);
  }
  // ONNX nodes are scoped by the TF node they come from: onnxruntime's errors name it.
  const nodeNames = (files.json.modelTopology.node ?? []).map((n) => n.name);
  const session = await createSession(onnx, 1, nodeNames);
  const cases: GraphParityCase[] = [];
  /** The cases where tfjs's own output holds NaN. */
  const nan: string[] = [];
  try {
    for (const [k, caseFeeds] of feeds.entries()) {
      const out = await runSession(session, Object.fromEntries(graph.inputs.map((v, i) => [v.name, ortTensor(caseFeeds[i]!)])), nodeNames);
      const list = expected[k]!;
      const size = caseFeeds.map((f) => `[${f.shape}]`).join(' ');
      const logitsScales = new Map(squashed.map((s, i) => [s.output, { activation: s.activation, logitsScale: largestMagnitude(list[io.outputs.length + i]!) }]));
      io.outputs.forEach((o, i) => {
        cases.push(compare(`${o.name}, input ${size}`, out[o.name]!.data as ArrayLike<number>, list[i]!, logitsScales.get(i)));
        if (list[i]!.some(Number.isNaN)) nan.push(cases.at(-1)!.name);
      });
    }
  } finally {
    await session.release();
  }
  for (const c of cases) {
    const why = c.squashed ? `, ${SQUASHING_SLOPE[c.squashed.activation]} x its logits' ${c.squashed.logitsScale.toPrecision(3)} under the ${c.squashed.activation}` : '';
    log(`  ${c.name.padEnd(56)} max |diff| ${c.maxAbsDiff.toExponential(2)} (scale ${c.scale.toPrecision(3)}${why}, relative ${c.relative.toExponential(2)})`);
  }
  const worst = Math.max(...cases.map((c) => c.relative));
  if (!(worst <= tolerance)) {
    // NaN in tfjs's own outputs comes from the model (an infinite weight), and where it lands is up
    // to each runtime's arithmetic: the user hears that, not an exporter bug and a NaN "difference".
    if (nan.length) {
      throw new FerryError('export_parity', `tfjs's own outputs hold NaN on seeded inputs (${nan.join('; ')}), so ferry cannot compare the ONNX graph with them`, {
        hint: "The model computes NaN from ordinary inputs (an infinite weight in the shards?): check the model's weights. Use --no-verify to write the file anyway.",
        status: 422,
      });
    }
    const bad = cases.filter((c) => !(c.relative <= tolerance)).map((c) => `${c.name}: ${c.relative.toExponential(2)}`);
    throw new FerryError('export_parity', `The ONNX graph differs from tfjs (cpu) by more than ${tolerance} relative to the output's scale: ${bad.join('; ')}`, {
      hint: 'This is an exporter bug for this model: please report it with the model.json. Use --no-verify to write the file anyway.',
      status: 500,
    });
  }
  return { reference: 'tfjs cpu', tolerance, maxRelativeDiff: worst, cases };
}
