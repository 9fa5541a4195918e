/**
 * LSTM, GRU and SimpleRNN (alone or in Bidirectional) to the ONNX LSTM / GRU / RNN ops — never
 * a Loop. ONNX wants time-major input (ORT CPU refuses layout=1), so the op sits between two
 * Transposes. Weights stay initializers so that ORT prepacks them.
 */
import { attr, type Graph } from '../graph.ts';
import { compactSteps, type CompactedSteps } from './masking.ts';
import { unsupportedOption } from './support.ts';
import type { ConvertContext, Converter, LayerCall, LayerWeight, TensorRef } from './types.ts';

type CellKind = 'LSTM' | 'GRU' | 'SimpleRNN';

/** The class a Keras reset_after GRU is loaded as (../reset-after-gru.ts). */
export const RESET_AFTER_GRU = 'FerryResetAfterGRU';

interface CellSpec {
  op: 'LSTM' | 'GRU' | 'RNN';
  gates: number;
  /** ONNX gate g takes tfjs gate order[g]. tfjs LSTM is i,f,c,o and ONNX i,o,f,c; GRU z,r,h matches. */
  order: number[];
  /** Which config keys give the activations, in ONNX order (f, g, h for LSTM). */
  activationKeys: string[];
  states: number;
}

const CELLS: Record<CellKind, CellSpec> = {
  LSTM: { op: 'LSTM', gates: 4, order: [0, 3, 1, 2], activationKeys: ['recurrentActivation', 'activation', 'activation'], states: 2 },
  GRU: { op: 'GRU', gates: 3, order: [0, 1, 2], activationKeys: ['recurrentActivation', 'activation'], states: 1 },
  SimpleRNN: { op: 'RNN', gates: 1, order: [0], activationKeys: ['activation'], states: 1 },
};

const DEFAULT_ACTIVATIONS: Record<string, string> = { activation: 'tanh', recurrentActivation: 'hardSigmoid' };

/** tfjs activation -> ONNX RNN activation with the alpha/beta it needs. */
const RNN_ACTIVATIONS: Record<string, { name: string; alpha?: number; beta?: number }> = {
  sigmoid: { name: 'Sigmoid' },
  tanh: { name: 'Tanh' },
  relu: { name: 'Relu' },
  hardSigmoid: { name: 'HardSigmoid', alpha: 0.2, beta: 0.5 },
  linear: { name: 'Affine', alpha: 1, beta: 0 },
  elu: { name: 'Elu', alpha: 1 },
  softsign: { name: 'Softsign' },
  softplus: { name: 'Softplus' },
};

function activationOf(call: LayerCall, config: Record<string, unknown>, key: string): { name: string; alpha?: number; beta?: number } {
  const value = config[key] ?? DEFAULT_ACTIVATIONS[key];
  const act = typeof value === 'string' ? RNN_ACTIVATIONS[value] : undefined;
  if (!act) {
    throw unsupportedOption(call, `${key} ${JSON.stringify(value)}`, `Recurrent layers convert with ${Object.keys(RNN_ACTIVATIONS).join(', ')}.`);
  }
  return act;
}

function checkOptions(call: LayerCall, config: Record<string, unknown>): void {
  if (config.stateful === true) throw unsupportedOption(call, 'stateful: true', 'Export a stateless copy; the language-model graph carries state as inputs and outputs.');
}

/** W [G*H, I], R [G*H, H] and B [2*G*H] for one direction, gate blocks reordered for ONNX. */
function directionWeights(spec: CellSpec, units: number, kernel: LayerWeight, recurrent: LayerWeight, bias: LayerWeight | undefined) {
  const inputSize = kernel.shape[0]!;
  const width = spec.gates * units;
  const w = new Float32Array(width * inputSize);
  const r = new Float32Array(width * units);
  const b = new Float32Array(2 * width);
  spec.order.forEach((source, target) => {
    for (let j = 0; j < units; j++) {
      const row = target * units + j;
      const col = source * units + j;
      for (let i = 0; i < inputSize; i++) w[row * inputSize + i] = kernel.data[i * width + col]!;
      for (let i = 0; i < units; i++) r[row * units + i] = recurrent.data[i * width + col]!;
      if (bias) b[row] = bias.data[col]!;
      // reset_after GRUs keep [input bias; recurrent bias], ONNX's Wb and Rb.
      if (bias && bias.data.length === 2 * width) b[width + row] = bias.data[width + col]!;
    }
  });
  return { w, r, b, inputSize };
}

interface Direction {
  config: Record<string, unknown>;
  weights: LayerWeight[];
}

function splitWeights(call: LayerCall, weights: LayerWeight[], useBias: boolean): [LayerWeight, LayerWeight, LayerWeight | undefined] {
  const expected = useBias ? 3 : 2;
  if (weights.length !== expected) throw unsupportedOption(call, `${weights.length} weights where ${expected} were expected`);
  return [weights[0]!, weights[1]!, useBias ? weights[2] : undefined];
}

interface RecurrentOutputs {
  /** [T, dirs, B, H] */
  y: string;
  /** [dirs, B, H] */
  yh: string;
  yc?: string;
  nodeName: string;
}

function emitRecurrentOp(
  call: LayerCall,
  ctx: ConvertContext,
  kind: CellKind,
  directions: Direction[],
  timeMajorX: string,
  initial: { h?: string; c?: string },
  lengths = '',
): RecurrentOutputs {
  const g = ctx.graph;
  const spec = CELLS[kind];
  const units = directions[0]!.config.units as number;
  const parts = directions.map((d) => {
    checkOptions(call, d.config);
    const [kernel, recurrent, bias] = splitWeights(call, d.weights, d.config.useBias !== false);
    return directionWeights(spec, units, kernel, recurrent, bias);
  });
  const dirs = parts.length;
  const width = spec.gates * units;
  const inputSize = parts[0]!.inputSize;
  const concat = (key: 'w' | 'r' | 'b') => {
    const len = parts[0]![key].length;
    const out = new Float32Array(len * dirs);
    parts.forEach((p, i) => out.set(p[key], i * len));
    return out;
  };
  const activations = directions.flatMap((d) => spec.activationKeys.map((key) => activationOf(call, d.config, key)));
  const alphas = activations.filter((a) => a.alpha !== undefined).map((a) => a.alpha!);
  const betas = activations.filter((a) => a.beta !== undefined).map((a) => a.beta!);
  const attributes = {
    hidden_size: attr.int(units),
    direction: attr.string(dirs === 2 ? 'bidirectional' : 'forward'),
    activations: attr.strings(activations.map((a) => a.name)),
    ...(alphas.length ? { activation_alpha: attr.floats(alphas) } : {}),
    ...(betas.length ? { activation_beta: attr.floats(betas) } : {}),
    // Keras 2's reset_after GRU (reset-after-gru.ts) is ONNX's linear_before_reset.
    ...(kind === 'GRU' ? { linear_before_reset: attr.int(directions[0]!.config.resetAfter === true ? 1 : 0) } : {}),
  };
  const inputs = [
    timeMajorX,
    g.float('W', [dirs, width, inputSize], concat('w')),
    g.float('R', [dirs, width, units], concat('r')),
    g.float('B', [dirs, 2 * width], concat('b')),
    lengths,
    initial.h ?? '',
  ];
  if (kind === 'LSTM') inputs.push(initial.c ?? '');
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const outputs = g.node(spec.op, inputs, attributes, { outputs: spec.states + 1, name: spec.op });
  const nodeName = g.producerOf(outputs[0]!)!.name;
  if (ctx.target === 'webgpu' && activations.some((a) => !['Sigmoid', 'Tanh', 'Relu'].includes(a.name))) ctx.cpuOnlyNodes.push(nodeName);
  return { y: outputs[0]!, yh: outputs[1]!, yc: outputs[2], nodeName };
}

/** Reverses `x` along `axis`. */
function reverse(g: Graph, x: string, axis: number): string {
  return g.op('Slice', [x, g.int64('starts', [-1]), g.int64('ends', [Number.MIN_SAFE_INTEGER]), g.int64('axes', [axis]), g.int64('steps', [-1])]);
}

/** The time-major input of the op, and (for a masked input) the compacted steps with their lengths (masking.ts). */
function timeMajorInput(g: Graph, input: TensorRef, backwards: boolean): { x: string; compacted?: CompactedSteps } {
  if (!input.mask) {
    const x = g.transpose(input.name, [1, 0, 2]);
    return { x: backwards ? reverse(g, x, 0) : x };
  }
  const x = backwards ? reverse(g, input.name, 1) : input.name;
  const compacted = compactSteps(g, x, backwards ? reverse(g, input.mask, 1) : input.mask);
  return { x: g.transpose(compacted.x, [1, 0, 2]), compacted };
}

function recurrentLayer(kind: CellKind): Converter {
  return (call, inputs, ctx) => {
    const g = ctx.graph;
    const config = call.config;
    const units = config.units as number;
    const spec = CELLS[kind];
    const { x, compacted } = timeMajorInput(g, inputs[0]!, config.goBackwards === true);

    let initial: { h?: string; c?: string } = {};
    let state: ReturnType<NonNullable<ConvertContext['lm']>['recurrentState']> | undefined;
    if (inputs.length > 1) {
      initial = { h: g.unsqueeze(inputs[1]!.name, [0]), c: inputs[2] ? g.unsqueeze(inputs[2].name, [0]) : undefined };
    } else if (ctx.lm) {
      state = ctx.lm.recurrentState(ctx.counters.recurrent++, units, kind === 'LSTM');
      initial = { h: g.unsqueeze(state.initialH, [0]), c: state.initialC ? g.unsqueeze(state.initialC, [0]) : undefined };
    }

    const out = emitRecurrentOp(call, ctx, kind, [{ config, weights: call.weights }], x, initial, compacted?.lengths);
    const sequences = config.returnSequences === true;
    const needsState = config.returnState === true || state !== undefined;
    const h = needsState || !sequences ? g.squeeze(out.yh, [0]) : undefined;
    const c = needsState && out.yc ? g.squeeze(out.yc, [0]) : undefined;
    state?.present(h!, c);
    const steps = sequences ? g.transpose(g.squeeze(out.y, [1]), [1, 0, 2]) : undefined;
    const y = steps === undefined ? h! : compacted ? compacted.forward(steps) : steps;
    const results: Omit<TensorRef, 'shape'>[] = [{ name: y, dtype: 'float32' }];
    if (config.returnState === true) {
      results.push({ name: h!, dtype: 'float32' });
      if (spec.states === 2) results.push({ name: c!, dtype: 'float32' });
    }
    return results;
  };
}

const bidirectional: Converter = (call, inputs, ctx) => {
  const g = ctx.graph;
  const inner = call.config.layer as { className?: string; class_name?: string; config: Record<string, unknown> };
  const innerClass = inner.className ?? inner.class_name;
  const kind = (innerClass === RESET_AFTER_GRU ? 'GRU' : innerClass) as CellKind;
  if (!(kind in CELLS)) throw unsupportedOption(call, `wrapping ${kind}`, 'Bidirectional converts around LSTM, GRU and SimpleRNN.');
  const config = inner.config;
  if (config.goBackwards === true) throw unsupportedOption(call, 'an inner layer with goBackwards: true');
  if (inputs.length > 1) throw unsupportedOption(call, 'initial states');
  const mergeMode = call.config.mergeMode === undefined ? 'concat' : (call.config.mergeMode as string | null);
  const half = call.weights.length / 2;
  const { x, compacted } = timeMajorInput(g, inputs[0]!, false);
  const out = emitRecurrentOp(call, ctx, kind, [
    { config, weights: call.weights.slice(0, half) },
    { config, weights: call.weights.slice(half) },
  ], x, {}, compacted?.lengths);

  // Both directions side by side on axis `dirAxis`: [B, T, 2, H] for sequences, [B, 2, H] for the last step.
  const sequences = config.returnSequences === true;
  const dirAxis = sequences ? 2 : 1;
  const split = (both: string, i: number) => g.squeeze(g.slice(both, dirAxis, i, i + 1), [dirAxis]);
  let both = sequences ? g.transpose(out.y, [2, 0, 1, 3]) : g.transpose(out.yh, [1, 0, 2]);
  if (sequences && compacted) {
    const steps = [compacted.forward(split(both, 0)), compacted.backward(split(both, 1))];
    both = g.op('Concat', steps.map((s) => g.unsqueeze(s, [2])), { axis: attr.int(2) });
  }
  const direction = (i: number) => split(both, i);
  let merged: string[];
  switch (mergeMode) {
    case 'concat': merged = [g.reshape(both, sequences ? [0, 0, -1] : [0, -1])]; break;
    case 'sum': merged = [g.reduce('ReduceSum', both, [dirAxis], false)]; break;
    case 'ave': merged = [g.reduce('ReduceMean', both, [dirAxis], false)]; break;
    case 'mul': merged = [g.op('Mul', [direction(0), direction(1)])]; break;
    case null: merged = [direction(0), direction(1)]; break;
    default: throw unsupportedOption(call, `mergeMode ${JSON.stringify(mergeMode)}`, 'Supported merge modes: concat, sum, mul, ave, null.');
  }
  const results = merged.map((name) => ({ name, dtype: 'float32' as const }));
  if (config.returnState === true) {
    for (let d = 0; d < 2; d++) {
      results.push({ name: g.squeeze(g.slice(out.yh, 0, d, d + 1), [0]), dtype: 'float32' });
      if (out.yc) results.push({ name: g.squeeze(g.slice(out.yc, 0, d, d + 1), [0]), dtype: 'float32' });
    }
  }
  return results;
};

export const recurrentConverters: Record<string, Converter> = {
  LSTM: recurrentLayer('LSTM'),
  GRU: recurrentLayer('GRU'),
  [RESET_AFTER_GRU]: recurrentLayer('GRU'),
  SimpleRNN: recurrentLayer('SimpleRNN'),
  Bidirectional: bidirectional,
};
