import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { fusedAdamWStep, hasFusedAdamW } from './kernels/adamw.ts';
import { squaredNorm } from './kernels/squared-norm.ts';

/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), computed as PyTorch's torch.optim.AdamW:
 *   p <- p * (1 - lr * wd)                      (only for parameters that decay)
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Written with tf ops over the model's variables, so its state can be saved byte for byte and a
 * resumed run continues exactly where it stopped.
 */
export interface Parameter {
  /** The layer-scoped weight name, e.g. `dense/kernel` or `block_0/ln1/gamma`. */
  name: string;
  variable: tf.Variable;
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** Which parameters decay; by default matrices other than embeddings (see `decaysByDefault`). */
  decays?: (parameter: Parameter) => boolean;
}

export interface AdamW {
  /** Updates done so far (t in the bias corrections). */
  readonly step: number;
  readonly parameters: readonly Parameter[];
  /** Which of `parameters` decay, in the same order. */
  readonly decayMask: readonly boolean[];
  /**
   * One update; `gradients` in the order of `parameters`, each multiplied by `scale` (a scalar
   * tensor, e.g. gradientClip's) when given. Does not dispose the gradients or the scale.
   */
  applyGradients(gradients: readonly tf.Tensor[], learningRate: number, scale?: tf.Scalar): void;
  /** The whole state (step, moments, hyperparameters) as one binary blob (`optimizer.bin`). */
  saveState(): Promise<Uint8Array>;
  loadState(bytes: Uint8Array): void;
  dispose(): void;
}

export const DEFAULT_ADAMW: Omit<AdamWOptions, 'decays'> = {
  beta1: 0.9,
  beta2: 0.99,
  epsilon: 1e-8,
  weightDecay: 0.1,
};

/**
 * nanoGPT's first rule: weight matrices decay; biases, LayerNorm gains/offsets (all rank 1) and
 * embedding tables (token and position) do not.
 */
export function decaysByDefault({ name, variable }: Parameter): boolean {
  return variable.shape.length >= 2 && !/(^|\/)embeddings$/.test(name);
}

export function createAdamW(parameters: readonly Parameter[], options: AdamWOptions): AdamW {
  const { beta1, beta2, epsilon, weightDecay } = options;
  const decays = options.decays ?? decaysByDefault;
  const decayMask = parameters.map((parameter) => weightDecay > 0 && decays(parameter));
  const firstMoments = parameters.map(({ variable }) => tf.variable(tf.zerosLike(variable), false));
  const secondMoments = parameters.map(({ variable }) => tf.variable(tf.zerosLike(variable), false));
  let step = 0;

  function applyGradients(gradients: readonly tf.Tensor[], learningRate: number, scale?: tf.Scalar): void {
    if (gradients.length !== parameters.length) {
      throw new Error(`AdamW got ${gradients.length} gradients for ${parameters.length} parameters`);
    }
    step += 1;
    const stepSize = learningRate / (1 - beta1 ** step);
    const secondCorrection = Math.sqrt(1 - beta2 ** step);
    const decayFactor = 1 - learningRate * weightDecay;
    if (hasFusedAdamW()) {
      // One kernel per parameter instead of eleven ops (wasm): the same formula, in float64.
      tf.tidy(() => {
        const gradientScale = scale ?? tf.scalar(1);
        parameters.forEach(({ variable }, index) => {
          const attrs = { beta1, beta2, epsilon, stepSize, secondCorrection, decayFactor: decayMask[index] ? decayFactor : 1 };
          const [nextParam, nextM, nextV] = fusedAdamWStep(variable, gradients[index]!, firstMoments[index]!, secondMoments[index]!, gradientScale, attrs);
          variable.assign(nextParam);
          firstMoments[index]!.assign(nextM);
          secondMoments[index]!.assign(nextV);
        });
      });
      return;
    }
    tf.tidy(() => {
      parameters.forEach(({ variable }, index) => {
        const gradient = scale === undefined ? gradients[index]! : tf.mul(gradients[index]!, scale);
        const m = firstMoments[index]!;
        const v = secondMoments[index]!;
        const nextM = tf.add(tf.mul(m, beta1), tf.mul(gradient, 1 - beta1));
        const nextV = tf.add(tf.mul(v, beta2), tf.mul(tf.square(gradient), 1 - beta2));
        const denominator = tf.add(tf.div(tf.sqrt(nextV), secondCorrection), epsilon);
        const decayed = decayMask[index] ? tf.mul(variable, decayFactor) : variable;
        variable.assign(tf.sub(decayed, tf.mul(tf.div(nextM, denominator), stepSize)));
        m.assign(nextM);
        v.assign(nextV);
      });
    });
  }

  async function saveState(): Promise<Uint8Array> {
    const header = {
      format: 'ferry-adamw',
      version: 1,
      step,
      beta1,
      beta2,
      epsilon,
      weightDecay,
      parameters: parameters.map(({ name, variable }, index) => ({
        name,
        shape: variable.shape,
        decays: decayMask[index],
      })),
    };
    const moments: Float32Array[] = [];
    for (let index = 0; index < parameters.length; index += 1) {
      moments.push((await firstMoments[index]!.data()) as Float32Array);
      moments.push((await secondMoments[index]!.data()) as Float32Array);
    }
    return encodeState(header, moments);
  }

  function loadState(bytes: Uint8Array): void {
    const { header, data } = decodeState(bytes);
    const saved = header.parameters as { name: string; shape: number[] }[];
    if (saved.length !== parameters.length) {
      throw new FerryError(
        'optimizer_state_mismatch',
        `optimizer state holds ${saved.length} parameters but the model has ${parameters.length}`,
        { hint: 'resume from a checkpoint of the same model configuration' },
      );
    }
    let offset = 0;
    parameters.forEach(({ name, variable }, index) => {
      const shape = saved[index]!.shape;
      if (shape.join('x') !== variable.shape.join('x')) {
        throw new FerryError(
          'optimizer_state_mismatch',
          `optimizer state for ${name} has shape [${shape}] but the model's is [${variable.shape}]`,
          { hint: 'resume from a checkpoint of the same model configuration' },
        );
      }
      const size = variable.size;
      firstMoments[index]!.assign(tf.tensor(data.subarray(offset, offset + size), variable.shape));
      offset += size;
      secondMoments[index]!.assign(tf.tensor(data.subarray(offset, offset + size), variable.shape));
      offset += size;
    });
    step = header.step as number;
  }

  function dispose(): void {
    for (const moment of [...firstMoments, ...secondMoments]) moment.dispose();
  }

  return {
    get step() {
      return step;
    },
    parameters,
    decayMask,
    applyGradients,
    saveState,
    loadState,
    dispose,
  };
}

/**
 * Gradient clipping as PyTorch's clip_grad_norm_: the global L2 norm of `gradients` and the
 * factor that scales them to at most `maxNorm` (maxNorm / (norm + 1e-6), capped at 1; 1 when
 * `maxNorm <= 0`). The factor goes to `applyGradients`, which scales each gradient as it reads
 * it instead of writing scaled copies.
 */
export function gradientClip(gradients: readonly tf.Tensor[], maxNorm: number): { norm: tf.Scalar; scale: tf.Scalar } {
  return tf.tidy(() => {
    const norm = tf.sqrt(squaredNorm(gradients)) as tf.Scalar;
    const scale = maxNorm > 0 ? tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1) as tf.Scalar : tf.scalar(1);
    return { norm, scale };
  });
}

// optimizer.bin: "FRYADAMW", u32 header length, header JSON, zero padding to 4 bytes, then
// float32 little-endian m and v of each parameter in order.
const MAGIC = 'FRYADAMW';

function encodeState(header: object, arrays: Float32Array[]): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const dataOffset = Math.ceil((MAGIC.length + 4 + headerBytes.length) / 4) * 4;
  const dataLength = arrays.reduce((total, array) => total + array.length, 0);
  const bytes = new Uint8Array(dataOffset + dataLength * 4);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(MAGIC.length, headerBytes.length, true);
  bytes.set(headerBytes, MAGIC.length + 4);
  const data = new Float32Array(bytes.buffer, dataOffset, dataLength);
  let offset = 0;
  for (const array of arrays) {
    data.set(array, offset);
    offset += array.length;
  }
  return bytes;
}

function decodeState(bytes: Uint8Array): { header: Record<string, unknown>; data: Float32Array } {
  const corrupt = (why: string) =>
    new FerryError('optimizer_state_corrupt', `optimizer.bin is not a ferry AdamW state: ${why}`, {
      hint: 'resume from an intact checkpoint (DIR/last), or start a new run',
    });
  if (bytes.length < MAGIC.length + 4 || new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) {
    throw corrupt('wrong magic bytes');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (headerEnd > bytes.length) throw corrupt('truncated header');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, headerEnd))) as Record<string, unknown>;
  if (header.format !== 'ferry-adamw' || header.version !== 1) throw corrupt(`unknown format ${String(header.format)}`);
  const dataOffset = Math.ceil(headerEnd / 4) * 4;
  const expected = (header.parameters as { shape: number[] }[]).reduce(
    (total, { shape }) => total + 2 * shape.reduce((product, dim) => product * dim, 1),
    0,
  );
  if (bytes.length - dataOffset !== expected * 4) throw corrupt(`expected ${expected * 4} bytes of moments`);
  // Copy so the floats are aligned whatever the buffer the bytes came in.
  const data = new Float32Array(bytes.slice(dataOffset).buffer);
  return { header, data };
}
