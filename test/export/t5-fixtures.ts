// A tiny T5's seeded random weights under Hugging Face's state-dict names (linears as Dense
// kernels [in, out], as src/train/models/t5.ts's t5Weights gives them), and a reference forward
// pass in plain TypeScript, written from src/train/models/t5-config.ts's math, that the ONNX
// graphs are checked against.
import type { T5WeightMap } from '../../src/export/t5/graph.ts';
import { mulberry32 } from '../../src/random.ts';
import { relativePositionBucket, t5StateDict, type T5Config } from '../../src/train/models/t5-config.ts';

export function tinyT5Config(overrides: Partial<T5Config> = {}): T5Config {
  return {
    arch: 't5', vocabSize: 40, dModel: 16, dKv: 4, dFf: 24, nHeads: 3, nEncoderLayers: 2, nDecoderLayers: 2,
    relativeBuckets: 8, relativeMaxDistance: 12, dropout: 0, tieWeights: false, maxSourceLength: 32, maxTargetLength: 16,
    ...overrides,
  };
}

/**
 * Uniform draws under the state-dict names: norms 1 +- 0.2, the embedding and the bias tables
 * +-1, every linear +-0.5 (larger than training's initialisation, so that every path shows).
 */
export function randomT5Weights(config: T5Config, seed: number): T5WeightMap {
  const random = mulberry32(seed);
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { name, shape, std } of t5StateDict(config)) {
    const [scale, offset] = std === 'ones' ? [0.2, 1] : name === 'shared.weight' || name.endsWith('relative_attention_bias.weight') ? [1, 0] : [0.5, 0];
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + (random() * 2 - 1) * scale);
    weights.set(name, { shape, data });
  }
  return weights;
}

type Matrix = number[][];

/** The reference: one unpadded row at a time, every position recomputed, float64. */
export function referenceT5(config: T5Config, weights: T5WeightMap) {
  const { nHeads, dKv, dModel } = config;
  const w = (name: string) => {
    const entry = weights.get(name);
    if (!entry) throw new Error(`no ${name}`);
    return entry;
  };
  const matmul = (x: Matrix, name: string): Matrix => {
    const { shape, data } = w(name);
    const outDim = shape[1]!;
    return x.map((row) => Array.from({ length: outDim }, (_, j) => row.reduce((sum, v, i) => sum + v * data[i * outDim + j]!, 0)));
  };
  const rmsNorm = (x: Matrix, name: string): Matrix => {
    const scale = w(name).data;
    return x.map((row) => {
      const inverse = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / row.length + 1e-6);
      return row.map((v, i) => v * inverse * scale[i]!);
    });
  };
  const add = (a: Matrix, b: Matrix) => a.map((row, t) => row.map((v, i) => v + b[t]![i]!));
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const feedForward = (x: Matrix, prefix: string) => {
    const gate = matmul(x, `${prefix}.wi_0.weight`);
    const linear = matmul(x, `${prefix}.wi_1.weight`);
    return matmul(gate.map((row, t) => row.map((v, i) => gelu(v) * linear[t]![i]!)), `${prefix}.wo.weight`);
  };
  const attention = (queries: Matrix, keysFrom: Matrix, prefix: string, allowed: (q: number, k: number) => boolean, bias?: (h: number, q: number, k: number) => number) => {
    const q = matmul(queries, `${prefix}.q.weight`);
    const k = matmul(keysFrom, `${prefix}.k.weight`);
    const v = matmul(keysFrom, `${prefix}.v.weight`);
    const context = queries.map(() => new Array<number>(nHeads * dKv).fill(0));
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < q.length; i++) {
        const scores = k.map((key, j) => {
          if (!allowed(i, j)) return -Infinity;
          let s = bias ? bias(h, i, j) : 0;
          for (let e = 0; e < dKv; e++) s += q[i]![h * dKv + e]! * key[h * dKv + e]!;
          return s;
        });
        const top = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - top));
        const total = exps.reduce((a, b) => a + b, 0);
        for (let j = 0; j < k.length; j++) for (let e = 0; e < dKv; e++) context[i]![h * dKv + e]! += (exps[j]! / total) * v[j]![h * dKv + e]!;
      }
    }
    return matmul(context, `${prefix}.o.weight`);
  };
  const positionBias = (stack: 'encoder' | 'decoder') => {
    const table = w(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`).data;
    return (h: number, q: number, k: number) => table[relativePositionBucket(k - q, stack === 'encoder', config.relativeBuckets, config.relativeMaxDistance) * nHeads + h]!;
  };
  const embed = (ids: readonly number[]) => ids.map((id) => Array.from(w('shared.weight').data.subarray(id * dModel, (id + 1) * dModel)));

  function encode(source: readonly number[]): Matrix {
    let h = embed(source);
    const bias = positionBias('encoder');
    for (let i = 0; i < config.nEncoderLayers; i++) {
      const b = `encoder.block.${i}`;
      const x = rmsNorm(h, `${b}.layer.0.layer_norm.weight`);
      h = add(h, attention(x, x, `${b}.layer.0.SelfAttention`, () => true, bias));
      h = add(h, feedForward(rmsNorm(h, `${b}.layer.1.layer_norm.weight`), `${b}.layer.1.DenseReluDense`));
    }
    return rmsNorm(h, 'encoder.final_layer_norm.weight');
  }

  /** Teacher-forced logits [target length][vocab] of decoder inputs `ids` over the encoder states. */
  function decode(encoded: Matrix, ids: readonly number[]): Matrix {
    let h = embed(ids);
    const bias = positionBias('decoder');
    for (let i = 0; i < config.nDecoderLayers; i++) {
      const b = `decoder.block.${i}`;
      const x = rmsNorm(h, `${b}.layer.0.layer_norm.weight`);
      h = add(h, attention(x, x, `${b}.layer.0.SelfAttention`, (q, k) => k <= q, bias));
      h = add(h, attention(rmsNorm(h, `${b}.layer.1.layer_norm.weight`), encoded, `${b}.layer.1.EncDecAttention`, () => true));
      h = add(h, feedForward(rmsNorm(h, `${b}.layer.2.layer_norm.weight`), `${b}.layer.2.DenseReluDense`));
    }
    const y = rmsNorm(h, 'decoder.final_layer_norm.weight');
    if (!config.tieWeights) return matmul(y, 'lm_head.weight');
    const table = w('shared.weight').data;
    return y.map((row) => Array.from({ length: config.vocabSize }, (_, v) => row.reduce((s, x, e) => s + x * dModel ** -0.5 * table[v * dModel + e]!, 0)));
  }

  return { encode, decode };
}
