/**
 * The T5 encoder and merged decoder graphs, in Hugging Face Optimum's layout (names:
 * src/package/io.ts `t5EncoderNames`, `t5DecoderNames`), built from the Hugging Face state-dict
 * names of src/train/models/t5.ts's `t5Weights`, every linear a Dense kernel [in, out]. The math is
 * src/train/models/t5-config.ts's: pre-norm RMS, no attention scaling, the relative position bias of
 * the first layer added in every layer, gated GELU (tanh), and the tied head scaled by dModel^-0.5.
 */
import { ATTENTION_MASK, ENCODER_ATTENTION_MASK, ENCODER_HIDDEN_STATES, INPUT_IDS, LAST_HIDDEN_STATE, LOGITS, pastSeq2Seq, presentSeq2Seq, USE_CACHE_BRANCH, type KvPart } from '../../package/index.ts';
import type { T5Config } from '../../train/models/t5-config.ts';
import { attr, Graph, LOWEST_FLOAT32 } from '../graph.ts';
import { relativeBiasByDistance } from './buckets.ts';

export type T5WeightMap = ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

const EPSILON = 1e-6;

interface KeyValue {
  key: string;
  value: string;
}

function read(weights: T5WeightMap, name: string) {
  const w = weights.get(name);
  if (!w) throw new Error(`the T5 weights lack ${name}`);
  return w;
}

/**
 * The model's weights as initializers of `g`, each named after its state-dict entry; a list of
 * names gives one initializer of those [in, out_i] kernels side by side, [in, sum of out_i],
 * made once (both branches of the merged decoder read it).
 */
function weightsOf(g: Graph, weights: T5WeightMap) {
  const joined = new Map<string, string>();
  return (names: string | readonly string[]): string => {
    if (typeof names === 'string') {
      const w = read(weights, names);
      return g.addInitializer(names, 'float32', [...w.shape], w.data);
    }
    const key = names.join('+');
    if (!joined.has(key)) {
      const parts = names.map((name) => read(weights, name));
      const rows = parts[0]!.shape[0]!;
      const cols = parts.reduce((sum, w) => sum + w.shape[1]!, 0);
      const data = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        let at = r * cols;
        for (const w of parts) {
          const width = w.shape[1]!;
          data.set(w.data.subarray(r * width, (r + 1) * width), at);
          at += width;
        }
      }
      joined.set(key, g.addInitializer(key, 'float32', [rows, cols], data));
    }
    return joined.get(key)!;
  };
}

type Weight = ReturnType<typeof weightsOf>;

/**
 * The graph-building steps both stacks share: nodes go into `g` (a graph or an If branch),
 * weights through `weight` (always the outer graph's initializers).
 */
function t5Ops(g: Graph, config: T5Config, weight: Weight, read: (name: string) => Float32Array) {
  const { nHeads, dKv } = config;
  const scalar = (x: string) => g.squeeze(x, [0]);
  const dimOf = (x: string, axis: number) => g.op('Shape', [x], { start: attr.int(axis), end: attr.int(axis + 1) });

  // x / sqrt(mean(x^2) + eps) * w, in the form ORT fuses into one SimplifiedLayerNormalization
  // (Pow 2 -> ReduceMean -> Add -> Sqrt -> Div -> Mul): 1 kernel instead of 7, 13 times a decoder step.
  const rmsNorm = (x: string, name: string) => {
    const meanSquare = g.reduce('ReduceMean', g.op('Pow', [x, g.scalarFloat('two', 2)]), [-1], true);
    const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.scalarFloat('epsilon', EPSILON)])]);
    return g.op('Mul', [g.op('Div', [x, rms]), weight(name)]);
  };
  const linear = (x: string, name: string) => g.op('MatMul', [x, weight(name)]);
  /**
   * Several linears of the same input as one MatMul over their kernels side by side, split
   * after: a decoder step runs a third fewer MatMul kernels (q, k, v; wi_0, wi_1; cross k, v).
   */
  const linears = (x: string, names: readonly string[]): string[] => {
    const product = g.op('MatMul', [x, weight(names)]);
    const widths = names.map((name) => read(name).length / config.dModel);
    return g.node('Split', [product, g.int64('split', widths)], { axis: attr.int(-1) }, { outputs: names.length });
  };
  /** [B, T, H*dKv] -> [B, H, T, dKv]. */
  const splitHeads = (x: string) => g.transpose(g.reshape(x, [0, 0, nHeads, dKv]), [0, 2, 1, 3]);
  const mergeHeads = (x: string) => g.reshape(g.transpose(x, [0, 2, 1, 3]), [0, 0, nHeads * dKv]);
  /** Softmax over the allowed keys of q k^T (+ bias), no 1/sqrt(dKv): T5 folds it into the weights. */
  const attention = (query: string, kv: KeyValue, allowed: string, bias?: string) => {
    const raw = g.op('MatMul', [query, g.transpose(kv.key, [0, 1, 3, 2])]);
    const scores = bias ? g.op('Add', [raw, bias]) : raw;
    const masked = g.op('Where', [allowed, scores, g.scalarFloat('lowest', LOWEST_FLOAT32)]);
    return g.op('MatMul', [g.op('Softmax', [masked], { axis: attr.int(-1) }), kv.value]);
  };
  /**
   * wo(gelu(wi0 x) * wi1 x), gelu's tanh form written as ORT's FastGeluFusion matches it (its
   * first formula: 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))), one FastGelu kernel
   * instead of eight elementwise ones.
   */
  const gatedGelu = (x: string, prefix: string) => {
    const [gate, linearPart] = linears(x, [`${prefix}.wi_0.weight`, `${prefix}.wi_1.weight`]) as [string, string];
    const cubic = g.op('Add', [g.op('Mul', [g.op('Mul', [gate, g.scalarFloat('gelu_cubic', 0.044715)]), gate]), g.scalarFloat('one', 1)]);
    const inner = g.op('Mul', [cubic, g.op('Mul', [gate, g.scalarFloat('gelu_scale', Math.sqrt(2 / Math.PI))])]);
    const gelu = g.op('Mul', [g.op('Mul', [gate, g.scalarFloat('half', 0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalarFloat('one', 1)])]);
    return linear(g.op('Mul', [gelu, linearPart]), `${prefix}.wo.weight`);
  };
  /**
   * The [1, H, queries, keys] bias of queries at `queryPositions` over keys at `keyPositions`:
   * the relative position, clamped to the table's range, gathers a row of the bias by distance.
   */
  const positionBias = (stack: 'encoder' | 'decoder', queryPositions: string, keyPositions: string) => {
    const { relativeBuckets, relativeMaxDistance: maxDistance } = config;
    const trained = read(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`);
    const table = g.float(`${stack}_bias_by_distance`, [2 * maxDistance + 1, nHeads], relativeBiasByDistance(trained, nHeads, stack === 'encoder', relativeBuckets, maxDistance));
    const relative = g.op('Sub', [g.unsqueeze(keyPositions, [0]), g.unsqueeze(queryPositions, [1])]);
    const row = g.op('Add', [g.op('Clip', [relative, g.scalarInt64('min_distance', -maxDistance), g.scalarInt64('max_distance', maxDistance)]), g.scalarInt64('offset', maxDistance)]);
    return g.unsqueeze(g.transpose(g.op('Gather', [table, row]), [2, 0, 1]), [0]);
  };
  const positions = (length: string, from?: string) => {
    const range = g.op('Range', [g.scalarInt64('zero', 0), scalar(length), g.scalarInt64('one', 1)]);
    return from ? g.op('Add', [range, from]) : range;
  };
  /** [B, 1, 1, S] true where the key is a real token. */
  const keyMask = (mask: string) => g.unsqueeze(g.op('Cast', [mask], { to: attr.dtype('bool') }), [1, 2]);
  return { rmsNorm, linear, linears, splitHeads, mergeHeads, attention, gatedGelu, positionBias, positions, keyMask, dimOf };
}

function embed(g: Graph, weight: (name: string) => string, ids: string): string {
  return g.op('Gather', [weight('shared.weight'), ids]);
}

/** `onnx/encoder_model.onnx`: input_ids, attention_mask -> last_hidden_state [batch, length, dModel]. */
export function t5EncoderGraph(config: T5Config, weights: T5WeightMap, opset: number): Graph {
  const g = new Graph('t5_encoder', opset);
  const weight = weightsOf(g, weights);
  const ops = t5Ops(g, config, weight, (name) => read(weights, name).data);
  const shape = ['batch_size', 'encoder_sequence_length'];
  const ids = g.addInput(INPUT_IDS, 'int64', shape);
  const mask = g.addInput(ATTENTION_MASK, 'int64', shape);
  const allowed = ops.keyMask(mask);
  const at = ops.positions(ops.dimOf(ids, 1));
  const bias = g.inScope('position_bias', () => ops.positionBias('encoder', at, at));
  let h = embed(g, weight, ids);
  for (let i = 0; i < config.nEncoderLayers; i++) {
    h = g.inScope(`encoder.block.${i}`, () => {
      const attn = `encoder.block.${i}.layer.0.SelfAttention`;
      const x = ops.rmsNorm(h, `encoder.block.${i}.layer.0.layer_norm.weight`);
      const [q, k, v] = ops.linears(x, ['q', 'k', 'v'].map((p) => `${attn}.${p}.weight`)).map(ops.splitHeads) as [string, string, string];
      const context = ops.attention(q, { key: k, value: v }, allowed, bias);
      const y = g.op('Add', [h, ops.linear(ops.mergeHeads(context), `${attn}.o.weight`)]);
      return g.op('Add', [y, ops.gatedGelu(ops.rmsNorm(y, `encoder.block.${i}.layer.1.layer_norm.weight`), `encoder.block.${i}.layer.1.DenseReluDense`)]);
    });
  }
  g.outputAs(ops.rmsNorm(h, 'encoder.final_layer_norm.weight'), LAST_HIDDEN_STATE, 'float32', ['batch_size', 'encoder_sequence_length', config.dModel]);
  return g;
}

/**
 * `onnx/decoder_model_merged.onnx`, laid out as Optimum merges its two decoders: one If on
 * `use_cache_branch` runs the decoder stack with the caches (true: the fed self-attention past
 * concatenated with this call's K/V, the fed cross-attention K/V) or without (false, the first
 * step: a self-attention past of length 0 whatever was fed, cross-attention K/V computed from the
 * encoder states). Both branches read the weights from the outer graph; the embedding, the final
 * norm and the head are outside. Each branch makes its caches under its own outputs, which are
 * the graph's: nothing copies a past through (a pass-through branch would copy every cache every
 * step). With the caches, `present.*.encoder.*` are empty (length 0): the cross-attention K/V do
 * not change after the first step, and transformers.js and ferry keep the first step's.
 */
export function t5DecoderGraph(config: T5Config, weights: T5WeightMap, opset: number): Graph {
  const { nDecoderLayers: layers, nHeads, dKv, dModel, vocabSize } = config;
  const g = new Graph('t5_decoder_merged', opset);
  const weight = weightsOf(g, weights);
  const ops = t5Ops(g, config, weight, (name) => read(weights, name).data);
  const encoderMask = g.addInput(ENCODER_ATTENTION_MASK, 'int64', ['batch_size', 'encoder_sequence_length']);
  const ids = g.addInput(INPUT_IDS, 'int64', ['batch_size', 'decoder_sequence_length']);
  const encoderStates = g.addInput(ENCODER_HIDDEN_STATES, 'float32', ['batch_size', 'encoder_sequence_length', dModel]);
  const pastShape = { decoder: ['batch_size', nHeads, 'past_decoder_sequence_length', dKv], encoder: ['batch_size', nHeads, 'encoder_sequence_length_out', dKv] };
  const past = Array.from({ length: layers }, (_, l) => {
    const input = (cache: 'decoder' | 'encoder', part: KvPart) => g.addInput(pastSeq2Seq(l, cache, part), 'float32', pastShape[cache]);
    return { decoder: { key: input('decoder', 'key'), value: input('decoder', 'value') }, encoder: { key: input('encoder', 'key'), value: input('encoder', 'value') } };
  });
  const useCache = g.addInput(USE_CACHE_BRANCH, 'bool', [1]);

  const length = ops.dimOf(ids, 1);
  const crossAllowed = ops.keyMask(encoderMask);
  const embedded = embed(g, weight, ids);
  const stack = { length, crossAllowed, embedded, encoderStates, past };
  const withCache = g.branch('with_cache');
  const firstStep = g.branch('first_step');
  const presentNames = Array.from({ length: layers }, (_, l) => (['decoder', 'encoder'] as const).flatMap((c) => (['key', 'value'] as const).map((p) => presentSeq2Seq(l, c, p)))).flat();
  for (const [branch, cached] of [[withCache, true], [firstStep, false]] as const) {
    const [hidden, ...caches] = decoderStack(branch, config, weight, (name) => read(weights, name).data, stack, cached);
    branch.outputAs(hidden!, `${branch.name}/hidden`, 'float32', ['batch_size', 'decoder_sequence_length', dModel]);
    caches.forEach((t, i) => {
      const shape = i % 4 < 2 ? ['batch_size', nHeads, `${branch.name}_decoder_length`, dKv] : ['batch_size', nHeads, `${branch.name}_encoder_length`, dKv];
      branch.outputAs(t, `${branch.name}/${presentNames[i]}`, 'float32', shape);
    });
  }
  const hiddenName = g.uniqueName('decoder_hidden');
  for (const name of presentNames) g.uniqueName(name);
  g.node('If', [useCache], { then_branch: attr.graph(withCache), else_branch: attr.graph(firstStep) }, { outputs: [hiddenName, ...presentNames], name: 'use_cache_branch' });

  const final = ops.rmsNorm(hiddenName, 'decoder.final_layer_norm.weight');
  const logits = config.tieWeights
    ? g.op('MatMul', [g.op('Mul', [final, g.scalarFloat('tied_scale', dModel ** -0.5)]), g.transpose(weight('shared.weight'), [1, 0])])
    : ops.linear(final, 'lm_head.weight');
  g.outputAs(logits, LOGITS, 'float32', ['batch_size', 'decoder_sequence_length', vocabSize]);
  const presentShape = { decoder: ['batch_size', nHeads, 'total_decoder_sequence_length', dKv], encoder: ['batch_size', nHeads, 'encoder_sequence_length_out', dKv] };
  // Optimum's order: logits, then per layer decoder key, value, encoder key, value.
  presentNames.forEach((name, i) => g.outputs.push({ name, dtype: 'float32', shape: i % 4 < 2 ? presentShape.decoder : presentShape.encoder }));
  return g;
}

type LayerCaches = { decoder: KeyValue; encoder: KeyValue };

/**
 * The decoder blocks in an If branch `b` (weights from the outer graph through `weight`): the
 * hidden states before the final norm, then per layer the self-attention key, value (past +
 * new) and the cross-attention key, value (computed from the encoder states on the first step;
 * empty with the caches).
 */
function decoderStack(
  b: Graph, config: T5Config, weight: Weight, readWeight: (name: string) => Float32Array,
  outer: { length: string; crossAllowed: string; embedded: string; encoderStates: string; past: LayerCaches[] }, cached: boolean,
): string[] {
  const ops = t5Ops(b, config, weight, readWeight);
  const pastLength = cached ? ops.dimOf(outer.past[0]!.decoder.key, 2) : b.int64('no_past', [0]);
  const queryAt = ops.positions(outer.length, b.squeeze(pastLength, [0]));
  const keyAt = ops.positions(b.op('Add', [pastLength, outer.length]));
  const causal = b.op('LessOrEqual', [b.unsqueeze(keyAt, [0]), b.unsqueeze(queryAt, [1])], {}, { name: 'causal' });
  const bias = b.inScope('position_bias', () => ops.positionBias('decoder', queryAt, keyAt));
  const caches: string[] = [];
  let h = outer.embedded;
  for (let i = 0; i < config.nDecoderLayers; i++) {
    h = b.inScope(`decoder.block.${i}`, () => {
      const block = `decoder.block.${i}`;
      const self = `${block}.layer.0.SelfAttention`;
      const past = outer.past[i]!;
      const x = ops.rmsNorm(h, `${block}.layer.0.layer_norm.weight`);
      const [q, k, v] = ops.linears(x, ['q', 'k', 'v'].map((p) => `${self}.${p}.weight`)).map(ops.splitHeads) as [string, string, string];
      const fresh = { key: k, value: v };
      const withPast = (part: KvPart) => (cached ? b.op('Concat', [past.decoder[part], fresh[part]], { axis: attr.int(2) }) : fresh[part]);
      const kv = { key: withPast('key'), value: withPast('value') };
      const selfContext = ops.attention(q, kv, causal, bias);
      const y = b.op('Add', [h, ops.linear(ops.mergeHeads(selfContext), `${self}.o.weight`)]);
      const cross = `${block}.layer.1.EncDecAttention`;
      const fromEncoder = () => {
        const [key, value] = ops.linears(outer.encoderStates, [`${cross}.k.weight`, `${cross}.v.weight`]).map(ops.splitHeads) as [string, string];
        return { key, value };
      };
      const crossKv = cached ? past.encoder : fromEncoder();
      const crossQuery = ops.splitHeads(ops.linear(ops.rmsNorm(y, `${block}.layer.1.layer_norm.weight`), `${cross}.q.weight`));
      const crossContext = ops.attention(crossQuery, crossKv, outer.crossAllowed);
      const z = b.op('Add', [y, ops.linear(ops.mergeHeads(crossContext), `${cross}.o.weight`)]);
      // The cross-attention caches only leave the first step; with the caches, empty ones.
      const none = (x: string) => b.slice(x, 2, 0, 0);
      caches.push(kv.key, kv.value, cached ? none(past.encoder.key) : crossKv.key, cached ? none(past.encoder.value) : crossKv.value);
      return b.op('Add', [z, ops.gatedGelu(ops.rmsNorm(z, `${block}.layer.2.layer_norm.weight`), `${block}.layer.2.DenseReluDense`)]);
    });
  }
  return [h, ...caches];
}
