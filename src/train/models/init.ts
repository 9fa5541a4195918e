/**
 * Weight initialisation: seeded initializers (the same seed gives the same model) and a fast
 * orthogonal initializer. tfjs's Orthogonal runs a QR decomposition on tensors and took 6 s for
 * one 256x1024 LSTM recurrent kernel on wasm (also on every load, before the saved weights
 * replace it); Gram-Schmidt on plain arrays takes milliseconds. It is registered as
 * `Orthogonal` with the same config, so model.json files stay standard.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../random.ts';

type OrthogonalArgs = { gain?: number; seed?: number };
type Initializer = ReturnType<typeof tf.initializers.randomNormal>;

/**
 * A [rows, cols] matrix with orthonormal rows (rows <= cols) or columns (rows > cols), times gain:
 * Gram-Schmidt of a Gaussian matrix, the distribution of Keras's QR-based Orthogonal.
 */
export function orthogonalMatrix(rows: number, cols: number, gain = 1, seed?: number): Float32Array {
  const uniform = seed === undefined ? Math.random : mulberry32(seed);
  const count = Math.min(rows, cols);
  const length = Math.max(rows, cols);
  const vectors = Array.from({ length: count }, () => {
    const v = new Float64Array(length);
    for (let i = 0; i < length; i++) v[i] = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
    return v;
  });
  for (let k = 0; k < count; k++) {
    const v = vectors[k]!;
    for (let pass = 0; pass < 2; pass++) { // twice is enough for orthogonality in floating point
      for (let j = 0; j < k; j++) {
        const u = vectors[j]!;
        let dot = 0;
        for (let i = 0; i < length; i++) dot += u[i]! * v[i]!;
        for (let i = 0; i < length; i++) v[i]! -= dot * u[i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < length; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < length; i++) v[i]! /= norm;
  }
  const out = new Float32Array(rows * cols);
  for (let k = 0; k < count; k++) {
    for (let i = 0; i < length; i++) {
      if (rows <= cols) out[k * cols + i] = gain * vectors[k]![i]!;
      else out[i * cols + k] = gain * vectors[k]![i]!;
    }
  }
  return out;
}

const TfjsOrthogonal = tf.initializers.orthogonal({}).constructor as new (args: OrthogonalArgs) => Initializer & { gain: number; seed?: number };

export class FerryOrthogonal extends TfjsOrthogonal {
  static className = 'Orthogonal';

  override apply(shape: number[], dtype?: tf.DataType): tf.Tensor {
    const cols = shape.at(-1) ?? 1;
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    return tf.tensor(orthogonalMatrix(rows, cols, this.gain, this.seed), shape, dtype ?? 'float32');
  }
}

tf.serialization.registerClass(FerryOrthogonal as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

/** Initializers that draw from `seed` in order (every call a new stream), or unseeded. */
export function seededInitializers(seed: number | undefined) {
  let stream = 0;
  const next = () => (seed === undefined ? undefined : (seed * 1_000_003 + stream++) % 2 ** 31);
  return {
    /** The seed for a custom layer's own initializers. */
    seed: next,
    normal: (stddev: number) => tf.initializers.randomNormal({ mean: 0, stddev, seed: next() }),
    glorotUniform: () => tf.initializers.glorotUniform({ seed: next() }),
    orthogonal: () => new FerryOrthogonal({ gain: 1, seed: next() }),
  };
}
