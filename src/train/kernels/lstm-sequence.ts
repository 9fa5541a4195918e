/**
 * A whole LSTM layer's time loop, forward and backward, inside one wasm kernel each. Per step
 * the forward pass runs h @ R (ferry's gemm, R packed once per sequence), wasm's
 * SIMD sigmoid over all four gates (the cell-input columns of the weights are doubled, so that
 * tanh(z) = 2 sigmoid(2z) - 1), the cell update in JavaScript, a second sigmoid for tanh(c) and
 * the output; the backward pass runs the step's gradient in JavaScript and dz @ R^T. Every step
 * writes into the sequence outputs directly. Run as tfjs ops, a step cost 6 kernels forward and
 * 2 back, each with ~25 us of engine bookkeeping (tensor records, tape, saved-tensor clones),
 * and the per-step tensors had to be stacked.
 *
 * Layouts: projected [T*B, 4H] (x K' + b' for all steps, time-major); gates [T, B, 4H] in blocks
 * i, f, g, o, the g block holding sigmoid(2 z_g); cells, cellSigmoids (sigmoid(2c)) and hiddens
 * [T, B, H]; dy [B, T, H] (the layer's output gradient); dz [T, B, 4H], the gradient of the
 * unscaled pre-activations.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { packRightMatrix } from './gemm.ts';
import { wasmHeap } from './wasm-heap.ts';

export const LSTM_SEQUENCE_KERNEL = 'FerryLstmSequence';
export const LSTM_SEQUENCE_GRAD_KERNEL = 'FerryLstmSequenceGrad';

/** No previous cell (the first step starts from zeros). */
const NONE = -1;

/** c = f cPrev + i g (g = 2 s_g - 1) and 2c, for one step; offsets index `heap`. */
function cellStep(heap: Float32Array, gates: number, cPrev: number, cells: number, twoC: number, batch: number, units: number): void {
  for (let b = 0; b < batch; b++) {
    const row = gates + b * 4 * units;
    const k0 = b * units;
    for (let j = 0; j < units; j++) {
      const previous = cPrev === NONE ? 0 : heap[cPrev + k0 + j]!;
      const cell = heap[row + units + j]! * previous + heap[row + j]! * (2 * heap[row + 2 * units + j]! - 1);
      heap[cells + k0 + j] = cell;
      heap[twoC + k0 + j] = 2 * cell;
    }
  }
}

/** h = o tanh(c) with tanh(c) = 2 sigmoid(2c) - 1, for one step. */
function outputStep(heap: Float32Array, gates: number, cellSigmoids: number, hiddens: number, batch: number, units: number): void {
  for (let b = 0; b < batch; b++) {
    const row = gates + b * 4 * units + 3 * units;
    const k0 = b * units;
    for (let j = 0; j < units; j++) heap[hiddens + k0 + j] = heap[row + j]! * (2 * heap[cellSigmoids + k0 + j]! - 1);
  }
}

/**
 * One step back through time. dh = dy_t + dhNext; dc = dcNext + dh o (1 - tanh(c)^2);
 * dz = [dc g i(1-i) | dc c_{t-1} f(1-f) | dc i (1-g^2) | dh tanh(c) o(1-o)]; dcNext becomes dc f.
 */
function gradStep(heap: Float32Array, dy: number, dyRowStride: number, dhNext: number, dcNext: number,
  gates: number, cPrev: number, cellSigmoids: number, dz: number, batch: number, units: number): void {
  for (let b = 0; b < batch; b++) {
    const row = b * 4 * units;
    const k0 = b * units;
    const dyRow = dy + b * dyRowStride;
    for (let j = 0; j < units; j++) {
      const k = k0 + j;
      const i = heap[gates + row + j]!;
      const f = heap[gates + row + units + j]!;
      const g = 2 * heap[gates + row + 2 * units + j]! - 1;
      const o = heap[gates + row + 3 * units + j]!;
      const tanhC = 2 * heap[cellSigmoids + k]! - 1;
      const previous = cPrev === NONE ? 0 : heap[cPrev + k]!;
      const dh = heap[dyRow + j]! + heap[dhNext + k]!;
      const dc = heap[dcNext + k]! + dh * o * (1 - tanhC * tanhC);
      heap[dz + row + j] = dc * g * i * (1 - i);
      heap[dz + row + units + j] = dc * previous * f * (1 - f);
      heap[dz + row + 2 * units + j] = dc * i * (1 - g * g);
      heap[dz + row + 3 * units + j] = dh * tanhC * o * (1 - o);
      heap[dcNext + k] = dc * f;
    }
  }
}

type SequenceArgs = { inputs: { projected: tf.TensorInfo; recurrent: tf.TensorInfo }; attrs: { steps: number }; backend: BackendWasm };

/** Inputs projected [T*B, 4H], recurrent R' [H, 4H]; outputs hiddens, gates, cells, cellSigmoids. */
function lstmSequence({ inputs: { projected, recurrent }, attrs: { steps }, backend }: SequenceArgs): tf.TensorInfo[] {
  const [rows, width] = projected.shape as [number, number];
  const units = width / 4;
  const batch = rows / steps;
  const [hiddens, gates, cells, cellSigmoids] = [units, width, units, units].map((size) => backend.makeOutput([steps, batch, size], 'float32'));
  const z = backend.makeOutput([batch, width], 'float32');
  const twoC = backend.makeOutput([batch, units], 'float32');
  const heap = wasmHeap(backend);
  const gateStep = batch * width;
  const cellStepSize = batch * units;
  const [zId, twoCId] = [heap.id(z), heap.id(twoC)];
  const recurrentPacked = packRightMatrix(backend, { start: heap.start(recurrent), rowStride: width, columnStride: 1 }, units, width);
  const [projectedAt, zAt, twoCAt, gatesAt, cellsAt, sigmoidsAt, hiddensAt] = [projected, z, twoC, gates!, cells!, cellSigmoids!, hiddens!].map(heap.start);
  for (let t = 0; t < steps; t++) {
    const gatesView = heap.view(gates!, t * gateStep, gateStep);
    if (t === 0) {
      heap.sigmoid(heap.view(projected, 0, gateStep), gatesView);
    } else {
      recurrentPacked.multiplyBy({ start: hiddensAt! + (t - 1) * cellStepSize, rowStride: units, columnStride: 1 }, { start: zAt!, rowStride: width }, batch);
      const floats = heap.floats();
      const from = projectedAt! + t * gateStep;
      for (let e = 0; e < gateStep; e++) floats[zAt! + e]! += floats[from + e]!;
      heap.sigmoid(zId, gatesView);
    }
    const previous = t === 0 ? NONE : cellsAt! + (t - 1) * cellStepSize;
    cellStep(heap.floats(), gatesAt! + t * gateStep, previous, cellsAt! + t * cellStepSize, twoCAt!, batch, units);
    heap.sigmoid(twoCId, heap.view(cellSigmoids!, t * cellStepSize, cellStepSize));
    outputStep(heap.floats(), gatesAt! + t * gateStep, sigmoidsAt! + t * cellStepSize, hiddensAt! + t * cellStepSize, batch, units);
  }
  heap.release();
  recurrentPacked.dispose();
  backend.disposeData(z.dataId);
  backend.disposeData(twoC.dataId);
  return [hiddens!, gates!, cells!, cellSigmoids!];
}

type SequenceGradArgs = {
  inputs: { dy: tf.TensorInfo; gates: tf.TensorInfo; cells: tf.TensorInfo; cellSigmoids: tf.TensorInfo; recurrentT: tf.TensorInfo };
  backend: BackendWasm;
};

/** Inputs dy [B, T, H], the forward pass's gates, cells, cellSigmoids, and R^T [4H, H]; output dz [T, B, 4H]. */
function lstmSequenceGrad({ inputs: { dy, gates, cells, cellSigmoids, recurrentT }, backend }: SequenceGradArgs): tf.TensorInfo[] {
  const [batch, steps, units] = dy.shape as [number, number, number];
  const width = 4 * units;
  const dz = backend.makeOutput([steps, batch, width], 'float32');
  const dhNext = backend.makeOutput([batch, units], 'float32');
  const dcNext = backend.makeOutput([batch, units], 'float32');
  backend.typedArrayFromHeap(dhNext).fill(0);
  backend.typedArrayFromHeap(dcNext).fill(0);
  const heap = wasmHeap(backend);
  const gateStep = batch * width;
  const cellStepSize = batch * units;
  const recurrentTPacked = packRightMatrix(backend, { start: heap.start(recurrentT), rowStride: units, columnStride: 1 }, width, units);
  const [dyAt, dzAt, dhAt, dcAt, gatesAt, cellsAt, sigmoidsAt] = [dy, dz, dhNext, dcNext, gates, cells, cellSigmoids].map(heap.start);
  for (let t = steps - 1; t >= 0; t--) {
    const previous = t === 0 ? NONE : cellsAt! + (t - 1) * cellStepSize;
    gradStep(heap.floats(), dyAt! + t * units, steps * units, dhAt!, dcAt!, gatesAt! + t * gateStep, previous,
      sigmoidsAt! + t * cellStepSize, dzAt! + t * gateStep, batch, units);
    if (t > 0) recurrentTPacked.multiplyBy({ start: dzAt! + t * gateStep, rowStride: width, columnStride: 1 }, { start: dhAt!, rowStride: units }, batch);
  }
  recurrentTPacked.dispose();
  backend.disposeData(dhNext.dataId);
  backend.disposeData(dcNext.dataId);
  return [dz];
}

export const lstmSequenceConfigs: tf.KernelConfig[] = [
  { kernelName: LSTM_SEQUENCE_KERNEL, backendName: 'wasm', kernelFunc: lstmSequence as unknown as tf.KernelFunc },
  { kernelName: LSTM_SEQUENCE_GRAD_KERNEL, backendName: 'wasm', kernelFunc: lstmSequenceGrad as unknown as tf.KernelFunc },
];
