// A ferry export plugin for a layer class tfjs does not know: PixelShuffle (depth to space, NHWC).
export const converters = {
  PixelShuffle: (call, [x], ctx) => {
    const g = ctx.graph;
    const channelsFirst = g.transpose(x.name, [0, 3, 1, 2]);
    // tf.depthToSpace reads the depth as (row, column, channel): ONNX's DCR mode.
    const shuffled = g.op('DepthToSpace', [channelsFirst], { blocksize: { kind: 'int', value: call.config.scale }, mode: { kind: 'string', value: 'DCR' } });
    return [{ name: g.transpose(shuffled, [0, 2, 3, 1]), dtype: 'float32' }];
  },
};

export function tfjsLayers(tf) {
  class PixelShuffle extends tf.layers.Layer {
    static className = 'PixelShuffle';

    constructor(config) {
      super(config);
      this.scale = config.scale;
    }

    computeOutputShape([batch, height, width, channels]) {
      const up = (d) => (d === null ? null : d * this.scale);
      return [batch, up(height), up(width), channels / (this.scale * this.scale)];
    }

    call(inputs) {
      return tf.depthToSpace(Array.isArray(inputs) ? inputs[0] : inputs, this.scale, 'NHWC');
    }

    getConfig() {
      return { ...super.getConfig(), scale: this.scale };
    }
  }
  return [PixelShuffle];
}
