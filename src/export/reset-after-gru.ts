/**
 * Keras 2's GRU default, `reset_after: true` (the reset gate applied after the recurrent matmul,
 * two biases), which tfjs refuses to build. Loading renames such layers to a ferry class: a tfjs
 * RNN whose cell computes reset_after, so that tfjs loads the model and verification has a
 * reference to compare with (masks, goBackwards and Bidirectional come from tfjs's RNN). It
 * converts to ONNX GRU with linear_before_reset = 1, the same formula.
 */
import * as tf from '@tensorflow/tfjs';
import { RESET_AFTER_GRU } from './converters/recurrent.ts';

interface LayerJson {
  class_name?: string;
  className?: string;
  config?: Record<string, unknown> & { layers?: LayerJson[]; layer?: LayerJson };
}

/** Renames every reset_after GRU of a Keras topology (nested models and wrappers included); returns their names. */
export function renameResetAfterGrus(topology: unknown): string[] {
  const renamed: string[] = [];
  const visit = (layer: LayerJson | undefined) => {
    if (!layer || typeof layer !== 'object') return;
    const config = layer.config;
    if ((layer.class_name ?? layer.className) === 'GRU' && (config?.reset_after === true || config?.resetAfter === true)) {
      if (layer.class_name) layer.class_name = RESET_AFTER_GRU;
      else layer.className = RESET_AFTER_GRU;
      renamed.push(String(config!.name));
    }
    if (Array.isArray(config)) (config as LayerJson[]).forEach(visit);
    config?.layers?.forEach(visit);
    visit(config?.layer);
  };
  const root = topology as { model_config?: LayerJson; config?: unknown };
  visit(root.model_config ?? (root as LayerJson));
  return renamed;
}

/** Reads the topology through `handler` with the reset_after GRUs renamed. */
export function withResetAfterGrus(handler: tf.io.IOHandler, renamed: string[]): tf.io.IOHandler {
  return {
    load: async () => {
      const artifacts = await handler.load!();
      renamed.push(...renameResetAfterGrus(artifacts.modelTopology));
      return artifacts;
    },
  };
}

type Activation = { apply(x: tf.Tensor): tf.Tensor };
interface GruCellFields {
  units: number;
  activation: Activation;
  recurrentActivation: Activation;
  kernel: tf.LayerVariable;
  recurrentKernel: tf.LayerVariable;
  bias: tf.LayerVariable;
  kernelInitializer: unknown;
  recurrentInitializer: unknown;
  biasInitializer: unknown;
  resetAfter: boolean;
  useBias: boolean;
  built: boolean;
  addWeight(name: string, shape: number[], dtype: null, initializer: unknown): tf.LayerVariable;
}

// tfjs exports GRUCell only through its factory; its constructor refuses resetAfter, so the
// cell is built without it and the flag set after.
const GruCell = tf.layers.gruCell({ units: 1 }).constructor as new (args: Record<string, unknown>) => GruCellFields;

class ResetAfterGruCell extends GruCell {
  constructor(args: Record<string, unknown>) {
    super({ ...args, resetAfter: false });
    this.resetAfter = true;
    this.useBias = true;
  }

  build(inputShape: (number | null)[] | (number | null)[][]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    const width = 3 * this.units;
    this.kernel = this.addWeight('kernel', [shape[shape.length - 1]!, width], null, this.kernelInitializer);
    this.recurrentKernel = this.addWeight('recurrent_kernel', [this.units, width], null, this.recurrentInitializer);
    this.bias = this.addWeight('bias', [2, width], null, this.biasInitializer);
    this.built = true;
  }

  /** z, r, h gates: x W + b_in and h U + b_rec apart, the reset gate on the recurrent part of h. */
  call(inputs: tf.Tensor[]): tf.Tensor[] {
    return tf.tidy(() => {
      const [x, previous] = inputs as [tf.Tensor2D, tf.Tensor2D];
      const [inputBias, recurrentBias] = tf.unstack(this.bias.read());
      const [xz, xr, xh] = tf.split(tf.add(tf.matMul(x, this.kernel.read() as tf.Tensor2D), inputBias!), 3, -1);
      const [hz, hr, hh] = tf.split(tf.add(tf.matMul(previous, this.recurrentKernel.read() as tf.Tensor2D), recurrentBias!), 3, -1);
      const z = this.recurrentActivation.apply(tf.add(xz!, hz!));
      const r = this.recurrentActivation.apply(tf.add(xr!, hr!));
      const candidate = this.activation.apply(tf.add(xh!, tf.mul(r, hh!)));
      const h = tf.add(tf.mul(z, previous), tf.mul(tf.sub(1, z), candidate));
      return [h, h];
    });
  }
}

class ResetAfterGru extends tf.RNN {
  static override className = RESET_AFTER_GRU;

  constructor(args: Record<string, unknown>) {
    super({ ...args, cell: new ResetAfterGruCell(args) } as unknown as ConstructorParameters<typeof tf.RNN>[0]);
  }

  /** As tfjs's GRU: the cell comes from the layer's own config (RNN's would read a `cell` entry). */
  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), resetAfter: true, useBias: true };
  }
}

tf.serialization.registerClass(ResetAfterGru);
