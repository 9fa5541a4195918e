/**
 * Stateful LSTM training (truncated backpropagation through time, `--stateful`): the training
 * split is cut into `batchSize` streams of consecutive text, row b of step k reads window
 * k mod W of stream b (W windows per stream), and the LSTM state each row ends a step with is its
 * initial state at the next step, detached (gradients stop at the window's start). The state
 * starts at zero and returns to zero whenever the windows wrap around to the streams' starts.
 * The carried state goes into the checkpoint's state.json, so a resumed run goes on exactly.
 *
 * The forward pass runs the model's own layers (so the saved model is the usual one) with the
 * LSTM recurrence written out in tfjs ops, which take an initial state; ferry's fused LSTM kernel
 * starts from zero only, so stateful steps are slower than stateless ones.
 */
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import type { TokenSource } from './data/index.ts';
import { crossEntropy, type LstmConfig } from './models/index.ts';
import type { StepGradients } from './parallel/gradients.ts';
import { type Shard, withSeededRandom } from './parallel/shard.ts';

export interface StatefulBatch extends Shard {
  /** The windows are the streams' first: the carried state starts from zero again. */
  reset: boolean;
}

/** The batch of step `step`: window `step mod W` of each of `batchSize` streams. */
export function statefulBatch(tokens: TokenSource, shape: { blockSize: number; batchSize: number }, step: number): StatefulBatch {
  const { blockSize, batchSize } = shape;
  const streamLength = Math.floor((tokens.length - 1) / batchSize);
  const windows = Math.floor(streamLength / blockSize);
  if (windows < 1) {
    throw new FerryError('corpus_too_short', `--stateful cuts the ${tokens.length} training tokens into ${batchSize} streams of ${streamLength}, shorter than one window of ${blockSize}.`, {
      hint: 'Lower --batch-size or --block-size, or train on more text.',
    });
  }
  const window = step % windows;
  const inputs = new Int32Array(batchSize * blockSize);
  const targets = new Int32Array(batchSize * blockSize);
  for (let row = 0; row < batchSize; row++) {
    const start = row * streamLength + window * blockSize;
    const ids = tokens.slice(start, start + blockSize + 1);
    inputs.set(ids.subarray(0, blockSize), row * blockSize);
    targets.set(ids.subarray(1), row * blockSize);
  }
  return { inputs, targets, rows: batchSize, reset: window === 0 };
}

type CellWeights = { kernel: tf.LayerVariable; recurrentKernel: tf.LayerVariable; bias: tf.LayerVariable };

/**
 * Logits [B, T, vocab] of `ids` [B, T] from the initial states (h, c per layer, [B, H] each),
 * and the states after the last token. Gates in tfjs's order i, f, c, o; sigmoid and tanh.
 */
export function statefulForward(model: tf.LayersModel, config: LstmConfig, ids: tf.Tensor2D, states: readonly tf.Tensor2D[], training: boolean): { logits: tf.Tensor; states: tf.Tensor2D[] } {
  const [batch, steps] = ids.shape;
  const hidden = config.hiddenSize;
  const embedding = model.getLayer('token_embedding');
  let x = embedding.apply(ids) as tf.Tensor;
  const finals: tf.Tensor2D[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const cell = (model.getLayer(`lstm_${layer}`) as unknown as { cell: CellWeights }).cell;
    const inputWidth = x.shape[2]!;
    const projected = tf.reshape(tf.add(tf.matMul(tf.reshape(x, [-1, inputWidth]), cell.kernel.read()), cell.bias.read()), [batch, steps, 4 * hidden]);
    let h = states[2 * layer]!;
    let c = states[2 * layer + 1]!;
    const outputs: tf.Tensor[] = [];
    for (const zx of tf.unstack(projected, 1)) {
      const [i, f, g, o] = tf.split(tf.add(zx, tf.matMul(h, cell.recurrentKernel.read())), 4, 1);
      c = tf.add(tf.mul(tf.sigmoid(f!), c), tf.mul(tf.sigmoid(i!), tf.tanh(g!)));
      h = tf.mul(tf.sigmoid(o!), tf.tanh(c));
      outputs.push(h);
    }
    finals.push(h, c);
    x = tf.stack(outputs, 1);
  }
  x = model.getLayer('dropout').apply(x, { training }) as tf.Tensor;
  const head = config.tieWeights ? embedding : model.getLayer('lm_head');
  return { logits: head.apply(x) as tf.Tensor, states: finals };
}

export interface StatefulGradients extends StepGradients {
  compute(batch: StatefulBatch, stepSeed: number): Promise<{ loss: number; grads: tf.Tensor[] }>;
  /** The carried state, h then c per layer, each [batchSize * hiddenSize] row-major. */
  carried(): number[][];
  restore(values: readonly (readonly number[])[]): void;
}

export function isStateful(gradients: StepGradients): gradients is StatefulGradients {
  return 'carried' in gradients;
}

export function createStatefulGradients(model: tf.LayersModel, variables: readonly tf.Variable[], config: LstmConfig, batchSize: number): StatefulGradients {
  const shape: [number, number] = [batchSize, config.hiddenSize];
  const zeros = () => Array.from({ length: 2 * config.numLayers }, () => tf.zeros(shape) as tf.Tensor2D);
  let states = zeros();
  return {
    threads: 1,
    shards: 1,
    async compute(batch, stepSeed) {
      if (batch.reset) {
        tf.dispose(states);
        states = zeros();
      }
      const ids = tf.tensor2d(batch.inputs, [batch.rows, config.blockSize], 'int32');
      const targets = tf.tensor2d(batch.targets, [batch.rows, config.blockSize], 'int32');
      let next: tf.Tensor2D[] = [];
      try {
        const { value, grads } = withSeededRandom(stepSeed, () => tf.variableGrads(() => {
          const out = statefulForward(model, config, ids, states, true);
          // Kept past the tape: the next step starts from these values, with no gradient into this step.
          next = out.states.map((s) => tf.keep(s.clone()));
          return crossEntropy(out.logits, targets);
        }, [...variables]));
        tf.dispose(states);
        states = next;
        const loss = (await value.data())[0]!;
        value.dispose();
        return { loss, grads: variables.map((variable) => grads[variable.name] ?? tf.zerosLike(variable)) };
      } finally {
        tf.dispose([ids, targets]);
      }
    },
    carried: () => states.map((s) => Array.from(s.dataSync())),
    restore(values) {
      if (values.length !== states.length || values.some((v) => v.length !== shape[0] * shape[1])) {
        throw new FerryError('checkpoint_incomplete', `The checkpoint's carried LSTM state does not fit ${config.numLayers} layers of ${batchSize} x ${config.hiddenSize}.`, {
          hint: 'Resume with the batch size the run was started with, or start a new run.',
        });
      }
      tf.dispose(states);
      states = values.map((v) => tf.tensor2d(Float32Array.from(v), shape));
    },
    async close() {
      tf.dispose(states);
    },
  };
}
