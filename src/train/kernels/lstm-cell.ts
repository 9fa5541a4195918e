/**
 * The elementwise parts of one LSTM time step, forward and backward, as heap loops. The step's
 * nonlinearities stay in wasm's SIMD sigmoid: with the cell-input columns of the weights doubled,
 * one sigmoid over z gives all four gates, since tanh(z) = 2 sigmoid(2z) - 1, and a second
 * sigmoid over 2c gives tanh(c). Between them these kernels do the gate algebra that took tfjs
 * seven kernels forward and six back per step (wasm's tanh alone cost 130 us a call).
 *
 * Layouts: gates s [B, 4H] in blocks i, f, g, o, with the g block holding sigmoid(2 z_g); dy is
 * the layer's output gradient [B, T, H]. The loops are plain functions of typed arrays (V8 runs
 * them about twice as fast as the same loop over destructured kernel arguments).
 */
import type { HeapKernel } from './heap-kernel.ts';

export const LSTM_CELL_KERNEL = 'FerryLstmCell';
export const LSTM_OUTPUT_KERNEL = 'FerryLstmOutput';
export const LSTM_STEP_GRAD_KERNEL = 'FerryLstmStepGrad';

/** c = f cPrev + i g and 2c, from the gates s [B, 4H] and cPrev [B, H]. */
function cellStep(s: Float32Array, cPrev: Float32Array, c: Float32Array, twoC: Float32Array, batch: number, units: number): void {
  for (let b = 0; b < batch; b++) {
    const row = b * 4 * units;
    const k0 = b * units;
    for (let j = 0; j < units; j++) {
      const cell = s[row + units + j]! * cPrev[k0 + j]! + s[row + j]! * (2 * s[row + 2 * units + j]! - 1);
      c[k0 + j] = cell;
      twoC[k0 + j] = 2 * cell;
    }
  }
}

/** h = o tanh(c) from the gates s [B, 4H] and sigmoid(2c) [B, H]. */
function outputStep(s: Float32Array, cellSigmoid: Float32Array, h: Float32Array, batch: number, units: number): void {
  for (let b = 0; b < batch; b++) {
    const row = b * 4 * units + 3 * units;
    const k0 = b * units;
    for (let j = 0; j < units; j++) h[k0 + j] = s[row + j]! * (2 * cellSigmoid[k0 + j]! - 1);
  }
}

/** One step back through time; see lstmStepGradKernel. dyRowStride is T H, dyOffset t H. */
function gradStep(
  dy: Float32Array, dyOffset: number, dyRowStride: number, dhNext: Float32Array, dcNext: Float32Array,
  s: Float32Array, cPrev: Float32Array, cellSigmoid: Float32Array, dz: Float32Array, dcPrev: Float32Array, batch: number, units: number,
): void {
  for (let b = 0; b < batch; b++) {
    const row = b * 4 * units;
    const k0 = b * units;
    const dyRow = b * dyRowStride + dyOffset;
    for (let j = 0; j < units; j++) {
      const k = k0 + j;
      const i = s[row + j]!;
      const f = s[row + units + j]!;
      const g = 2 * s[row + 2 * units + j]! - 1;
      const o = s[row + 3 * units + j]!;
      const tanhC = 2 * cellSigmoid[k]! - 1;
      const dh = dy[dyRow + j]! + dhNext[k]!;
      const dc = dcNext[k]! + dh * o * (1 - tanhC * tanhC);
      dz[row + j] = dc * g * i * (1 - i);
      dz[row + units + j] = dc * cPrev[k]! * f * (1 - f);
      dz[row + 2 * units + j] = dc * i * (1 - g * g);
      dz[row + 3 * units + j] = dh * tanhC * o * (1 - o);
      dcPrev[k] = dc * f;
    }
  }
}

/** Inputs gates [B, 4H], cPrev [B, H]; outputs c = f cPrev + i g and 2c, both [B, H]. */
export const lstmCellKernel: HeapKernel<Record<string, never>> = {
  kernelName: LSTM_CELL_KERNEL,
  inputNames: ['gates', 'cPrev'],
  outputShapes: ([, cPrev]) => [cPrev!.shape, cPrev!.shape],
  compute: ([s, cPrev], [c, twoC], [, shape]) => cellStep(s as Float32Array, cPrev as Float32Array, c!, twoC!, shape![0]!, shape![1]!),
};

/** Inputs gates [B, 4H], cellSigmoid = sigmoid(2c) [B, H]; output h = o tanh(c) [B, H]. */
export const lstmOutputKernel: HeapKernel<Record<string, never>> = {
  kernelName: LSTM_OUTPUT_KERNEL,
  inputNames: ['gates', 'cellSigmoid'],
  outputShapes: ([, cellSigmoid]) => [cellSigmoid!.shape],
  compute: ([s, sc], [h], [, shape]) => outputStep(s as Float32Array, sc as Float32Array, h!, shape![0]!, shape![1]!),
};

/**
 * Step `step` of backpropagation through time. Inputs dy [B, T, H] (the layer's whole output
 * gradient), dhNext and dcNext [B, H] (from step t + 1; zeros at the last step), and the step's
 * gates [B, 4H], cPrev [B, H] (zeros at step 0) and cellSigmoid [B, H]; outputs dz [B, 4H] (the
 * gradient of the unscaled pre-activations) and dc f [B, H] for step t - 1:
 *   dh = dy_t + dhNext;  dc = dcNext + dh o (1 - tanh(c)^2);
 *   dz = [dc g i(1-i) | dc c_{t-1} f(1-f) | dc i (1-g^2) | dh tanh(c) o(1-o)].
 */
export const lstmStepGradKernel: HeapKernel<{ step: number }> = {
  kernelName: LSTM_STEP_GRAD_KERNEL,
  inputNames: ['dy', 'dhNext', 'dcNext', 'gates', 'cPrev', 'cellSigmoid'],
  outputShapes: ([, , , gates, cPrev]) => [gates!.shape, cPrev!.shape],
  compute: ([dy, dhNext, dcNext, s, cPrev, sc], [dz, dcPrev], [dyShape], { step }) => {
    const [batch, steps, units] = dyShape as [number, number, number];
    gradStep(dy as Float32Array, step * units, steps * units, dhNext as Float32Array, dcNext as Float32Array,
      s as Float32Array, cPrev as Float32Array, sc as Float32Array, dz!, dcPrev!, batch, units);
  },
};
