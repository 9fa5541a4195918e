/**
 * tfjs's LayerNormalization computed with broadcasting. tfjs tiles mean, variance, gamma and beta
 * to the input's shape before a batchNorm, so its gradient goes through Tile and Pow; over the
 * last axis the same result needs neither. Saved as class `LayerNormalization` (same config and
 * weights), so model.json stays the standard format. Other axes run tfjs's implementation.
 */
import * as tf from '@tensorflow/tfjs';
import { layerNorm } from './fused.ts';

type Kwargs = Record<string, unknown>;
type LayerNormalizationArgs = { axis?: number | number[]; epsilon?: number; center?: boolean; scale?: boolean; name?: string };
type TfjsLayerNormalization = tf.layers.Layer & {
  axis: number[];
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
};

const TfjsLayerNormalization = tf.layers.layerNormalization({}).constructor as new (args: LayerNormalizationArgs) => TfjsLayerNormalization;

export class FerryLayerNormalization extends TfjsLayerNormalization {
  static className = 'LayerNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const input = Array.isArray(inputs) ? inputs[0]! : inputs;
    const lastAxisOnly = this.axis.length === 1 && this.axis[0] === input.rank - 1;
    if (!lastAxisOnly || !this.center || !this.scale) return super.call(inputs, kwargs);
    return tf.tidy(() => layerNorm(input, this.gamma.read(), this.beta.read(), this.epsilon));
  }
}

tf.serialization.registerClass(FerryLayerNormalization as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);
