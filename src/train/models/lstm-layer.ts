/**
 * tfjs's LSTM layer with a fused forward pass and a hand-written backward pass through time.
 *
 * It is the same layer to everything else: serialized as class `LSTM` with the same config and
 * weights (kernel [I,4H], recurrentKernel [H,4H], bias [4H]; gates i, f, c, o), so model.json stays
 * the standard tfjs format and loading any model.json with an LSTM uses it. tfjs's own version
 * multiplies the inputs step by step and lets autodiff walk ~40 small ops per step; here the
 * input projection is one matMul for all steps, the recurrent weight gradient another, and the
 * step loop keeps only what the recurrence needs. Configurations it does not cover (masks, state,
 * dropout inside the cell, other activations, ...) run tfjs's implementation.
 */
import * as tf from '@tensorflow/tfjs';
import { hasFusedKernel, runFused } from '../kernels/heap-kernel.ts';
import { LSTM_SEQUENCE_GRAD_KERNEL, LSTM_SEQUENCE_KERNEL } from '../kernels/lstm-sequence.ts';

type Kwargs = Record<string, unknown>;

/** The LSTMCell fields the fused pass reads (public on the tfjs class, untyped on RNN.cell). */
type LstmCell = {
  units: number;
  kernel: tf.LayerVariable;
  recurrentKernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  useBias: boolean;
  dropout: number;
  recurrentDropout: number;
  activation: { getClassName(): string };
  recurrentActivation: { getClassName(): string };
};

const TfjsLSTM = tf.layers.lstm({ units: 1 }).constructor as new (args: tf.LSTMLayerArgs) => tf.RNN;

export class FerryLSTM extends TfjsLSTM {
  static className = 'LSTM';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0]! : null) : inputs;
    if (input === null || !this.canFuse(kwargs)) return super.call(inputs, kwargs);
    const cell = this.cell as unknown as LstmCell;
    return tf.tidy(() => {
      const lstm = hasFusedKernel(LSTM_SEQUENCE_KERNEL) && input.dtype === 'float32' ? heapLstm : fusedLstm;
      const sequence = lstm(input, cell.kernel.read(), cell.recurrentKernel.read(), cell.bias!.read());
      return this.returnSequences ? sequence : tf.squeeze(tf.slice(sequence, [0, sequence.shape[1]! - 1, 0], [-1, 1, -1]), [1]);
    });
  }

  private canFuse(kwargs: Kwargs): boolean {
    const cell = this.cell as unknown as LstmCell;
    const training = kwargs.training === true;
    return !this.stateful && !this.goBackwards && !this.returnState
      && kwargs.mask == null && kwargs.initialState == null
      && cell.useBias && cell.bias !== null
      && (!training || (cell.dropout === 0 && cell.recurrentDropout === 0))
      && cell.activation.getClassName() === 'tanh' && cell.recurrentActivation.getClassName() === 'sigmoid';
  }
}

tf.serialization.registerClass(FerryLSTM as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);

/**
 * h_t, c_t of an LSTM over x [B,T,I] from zero state, returned as [B,T,H]:
 * z = x_t K + h_{t-1} R + b; i, f, o = sigmoid(z_i, z_f, z_o); g = tanh(z_c);
 * c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
 */
const fusedLstm = tf.customGrad(((x: tf.Tensor3D, kernel: tf.Tensor2D, recurrent: tf.Tensor2D, bias: tf.Tensor1D, save: tf.GradSaveFunc) => {
  const [batch, steps, inputDim] = x.shape;
  const units = recurrent.shape[0];
  const projected = tf.add(tf.matMul(tf.reshape(tf.transpose(x, [1, 0, 2]), [steps * batch, inputDim]), kernel), bias);
  const projectedSteps = tf.unstack(tf.reshape(projected, [steps, batch, 4 * units]));
  const gates: tf.Tensor2D[][] = [[], [], [], []];
  const cells: tf.Tensor2D[] = [];
  const cellTanhs: tf.Tensor2D[] = [];
  const hiddens: tf.Tensor2D[] = [];
  let h: tf.Tensor2D = tf.zeros([batch, units]);
  let c: tf.Tensor2D = tf.zeros([batch, units]);
  for (let t = 0; t < steps; t++) {
    const z = t === 0 ? projectedSteps[t]! : tf.add(projectedSteps[t]!, tf.matMul(h, recurrent));
    const [zi, zf, zg, zo] = tf.split(z, 4, 1) as tf.Tensor2D[];
    const i = tf.sigmoid(zi!), f = tf.sigmoid(zf!), g = tf.tanh(zg!), o = tf.sigmoid(zo!);
    c = tf.add(tf.mul(f, c), tf.mul(i, g));
    const cellTanh = tf.tanh(c);
    h = tf.mul(o, cellTanh);
    [i, f, g, o].forEach((gate, k) => gates[k]!.push(gate));
    cells.push(c);
    cellTanhs.push(cellTanh);
    hiddens.push(h);
  }
  const hiddenSequence = tf.stack(hiddens); // [T,B,H]
  save([x, kernel, recurrent, ...gates.map((gate) => tf.stack(gate)), tf.stack(cells), tf.stack(cellTanhs), hiddenSequence]);
  return {
    value: tf.transpose(hiddenSequence, [1, 0, 2]) as tf.Tensor3D,
    gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => lstmBackward(dy, saved),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, kernel: tf.Tensor, recurrent: tf.Tensor, bias: tf.Tensor) => tf.Tensor3D;

/**
 * Backpropagation through time for fusedLstm: gradients of x, kernel, recurrent kernel and bias.
 * Every factor that does not depend on the recurrence is computed for all steps at once, so a
 * step costs one matMul and six small ops:
 *   dc_t = dc_{t+1} f_{t+1} + dh_t o (1 - tanh(c)^2),   dh_t = dy_t + dz_{t+1} R^T,
 *   dz_t = [dc g i(1-i) | dc c_{t-1} f(1-f) | dc i (1-g^2) | dh tanh(c) o(1-o)].
 */
function lstmBackward(dy: tf.Tensor3D, saved: tf.Tensor[]): tf.Tensor[] {
  const [x, kernel, recurrent, I, F, G, O, C, TC, hiddens] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, ...tf.Tensor3D[]];
  const [batch, steps] = x.shape;
  const units = recurrent.shape[0];
  const previousCells = tf.concat([tf.zeros([1, batch, units]), tf.slice(C!, [0, 0, 0], [steps - 1, batch, units])], 0);
  const gateFactors = tf.unstack(tf.concat([
    tf.mul(G!, tf.mul(I!, tf.sub(1, I!))),
    tf.mul(previousCells, tf.mul(F!, tf.sub(1, F!))),
    tf.mul(I!, tf.sub(1, tf.square(G!))),
    tf.mul(TC!, tf.mul(O!, tf.sub(1, O!))),
  ], 2));
  const cellFactors = tf.unstack(tf.mul(O!, tf.sub(1, tf.square(TC!))));
  const forgetGates = tf.unstack(F!);
  const dHidden = tf.unstack(tf.transpose(dy, [1, 0, 2]));
  const recurrentT = tf.transpose(recurrent);
  const dGates: tf.Tensor[] = new Array(steps);
  let dhNext: tf.Tensor | null = null;
  let dcNext: tf.Tensor | null = null;
  for (let t = steps - 1; t >= 0; t--) {
    const dh: tf.Tensor = dhNext === null ? dHidden[t]! : tf.add(dHidden[t]!, dhNext);
    const dcFromH = tf.mul(dh, cellFactors[t]!);
    const dc: tf.Tensor = dcNext === null ? dcFromH : tf.add(dcNext, dcFromH);
    const dz = tf.mul(tf.concat([dc, dc, dc, dh], 1), gateFactors[t]!);
    dGates[t] = dz;
    if (t > 0) {
      dhNext = tf.matMul(dz, recurrentT);
      dcNext = tf.mul(dc, forgetGates[t]!);
    }
  }
  return inputGradients(tf.stack(dGates) as tf.Tensor3D, x, kernel, hiddens!);
}

/**
 * Gradients of x, kernel, recurrent kernel and bias from dz [T, B, 4H] (the gradient of the
 * pre-activations at every step), each as one matMul or sum over all steps.
 */
function inputGradients(dGates: tf.Tensor3D, x: tf.Tensor3D, kernel: tf.Tensor2D, hiddens: tf.Tensor3D): tf.Tensor[] {
  const [batch, steps, inputDim] = x.shape;
  const units = kernel.shape[1] / 4;
  const dz = tf.reshape(dGates, [steps * batch, 4 * units]); // time-major rows
  const xRows = tf.reshape(tf.transpose(x, [1, 0, 2]), [steps * batch, inputDim]);
  const previousHidden = tf.reshape(tf.concat([tf.zeros([1, batch, units]), tf.slice(hiddens, [0, 0, 0], [steps - 1, batch, units])], 0), [steps * batch, units]);
  const dx = tf.transpose(tf.reshape(tf.matMul(dz, kernel, false, true), [steps, batch, inputDim]), [1, 0, 2]);
  return [dx, tf.matMul(xRows, dz, true, false), tf.matMul(previousHidden, dz, true, false), tf.sum(dz, 0)];
}

/**
 * fusedLstm with each direction's time loop in one wasm kernel (kernels/lstm-sequence.ts). The
 * cell-input columns of the weights are doubled so that sigmoid gives tanh: g = 2 sigmoid(2 z_g) - 1.
 */
const heapLstm = tf.customGrad(((x: tf.Tensor3D, kernel: tf.Tensor2D, recurrent: tf.Tensor2D, bias: tf.Tensor1D, save: tf.GradSaveFunc) => {
  const [batch, steps, inputDim] = x.shape;
  const units = recurrent.shape[0];
  const gateScale = tf.concat([tf.ones([2 * units]), tf.fill([units], 2), tf.ones([units])]);
  const xRows = tf.reshape(tf.transpose(x, [1, 0, 2]), [steps * batch, inputDim]);
  const projected = tf.add(tf.matMul(xRows, tf.mul(kernel, gateScale)), tf.mul(bias, gateScale));
  const [hiddens, gates, cells, cellSigmoids] = runFused(LSTM_SEQUENCE_KERNEL, { projected, recurrent: tf.mul(recurrent, gateScale) }, { steps });
  save([x, kernel, recurrent, hiddens!, gates!, cells!, cellSigmoids!]);
  return {
    value: tf.transpose(hiddens!, [1, 0, 2]) as tf.Tensor3D,
    gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => {
      const [savedX, savedKernel, savedRecurrent, savedHiddens, savedGates, savedCells, savedSigmoids] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, ...tf.Tensor3D[]];
      const inputs = { dy, gates: savedGates!, cells: savedCells!, cellSigmoids: savedSigmoids!, recurrentT: tf.transpose(savedRecurrent) };
      const [dz] = runFused(LSTM_SEQUENCE_GRAD_KERNEL, inputs);
      return inputGradients(dz as tf.Tensor3D, savedX, savedKernel, savedHiddens!);
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, kernel: tf.Tensor, recurrent: tf.Tensor, bias: tf.Tensor) => tf.Tensor3D;
