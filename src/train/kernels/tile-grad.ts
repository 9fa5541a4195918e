/**
 * The gradient of Tile as one reshape and one sum. tfjs's own adds up one slice per repetition
 * (768 slices for a LayerNormalization over a [12, 64, 128] batch), which dominated training
 * steps on wasm. Output index rep * size + i along each axis comes from x[i], so dy reshaped to
 * [reps0, size0, reps1, size1, ...] summed over the reps axes is dx. Registered for every backend.
 */
import * as tf from '@tensorflow/tfjs';

export const tileGradConfig: tf.GradConfig = {
  kernelName: tf.Tile,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const reps = (attrs as unknown as { reps: number[] }).reps;
    return {
      x: () => {
        const interleaved = x.shape.flatMap((size, axis) => [reps[axis]!, size]);
        const repAxes = x.shape.map((_, axis) => 2 * axis);
        return tf.reshape(tf.sum(tf.reshape(dy as tf.Tensor, interleaved), repAxes), x.shape);
      },
    };
  },
};
