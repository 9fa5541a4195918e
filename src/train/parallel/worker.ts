/**
 * A gradient worker: its own tfjs backend and a copy of the model, built by the same model code as
 * the main thread's. Each step it loads the main thread's weights from shared memory, computes the
 * loss and gradients of each of its shards and writes them back, one block per shard.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../backend.ts';
import { createModel } from '../models/index.ts';
import { flatLayout, type FromWorker, type ToWorker, type WorkerSetup } from './protocol.ts';
import { shardGradients } from './shard.ts';
import { copyTensorInto, tensorFromShared } from './shared-values.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const reply = (message: FromWorker) => port.postMessage(message);

try {
  // The main thread runs the same model on the same backend and has shown tfjs's notices already.
  tf.env().set('PROD', true);
  await selectBackend(setup.backend);
  const model = createModel(setup.config);
  const shapes = model.weights.map((weight) => weight.shape as number[]);
  if (JSON.stringify(shapes) !== JSON.stringify(setup.weightShapes)) {
    throw new Error(`the worker's model has weights ${JSON.stringify(shapes)}, the main thread's ${JSON.stringify(setup.weightShapes)}`);
  }
  const weights = new Float32Array(setup.weights);
  const weightLayout = flatLayout(shapes);
  const grads = new Float32Array(setup.grads);
  const gradLayout = flatLayout(setup.trainable.map((index) => shapes[index]!));
  const variables = setup.trainable.map((index) => model.weights[index]!.read() as tf.Variable);

  const loadWeights = () =>
    tf.tidy(() => {
      model.weights.forEach((weight, index) => {
        const shape = shapes[index]!;
        const offset = weightLayout.offsets[index]!;
        weight.write(tensorFromShared(weights.subarray(offset, offset + tf.util.sizeFromShape(shape)), shape));
      });
    });

  port.on('message', (message: ToWorker) => {
    try {
      loadWeights();
      const losses = message.shards.map((shard, k) => {
        const { loss, grads: shardGrads } = shardGradients(model, variables, shard, message.blockSize, message.seeds[k]!, message.weights[k]!);
        shardGrads.forEach((grad, index) => copyTensorInto(grad, grads, k * gradLayout.length + gradLayout.offsets[index]!));
        const value = loss.dataSync()[0]!;
        tf.dispose([loss, ...shardGrads]);
        return value;
      });
      reply({ type: 'done', losses });
    } catch (error) {
      reply({ type: 'failed', message: (error as Error).message });
    }
  });
  reply({ type: 'ready' });
} catch (error) {
  reply({ type: 'failed', message: (error as Error).message });
}
