import type { DType, Graph } from '../graph.ts';

/** A tensor flowing through the graph: its ONNX name, dtype and the static shape tfjs knows (null = dynamic). */
export interface TensorRef {
  name: string;
  dtype: DType;
  shape: (number | null)[];
  /** A Keras mask over the time axis, float [B, T] (1 = a real step), set by Embedding(maskZero) and Masking (masking.ts). */
  mask?: string;
}

export interface LayerWeight {
  /** The tfjs variable name, e.g. `lstm_LSTM1/kernel`. */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** One call of a tfjs layer (a layer shared by several calls is converted once per call). */
export interface LayerCall {
  name: string;
  className: string;
  config: Record<string, unknown>;
  weights: LayerWeight[];
  /** Which call of the layer this is (0 for unshared layers). */
  nodeIndex: number;
  inputShapes: (number | null)[][];
  outputShapes: (number | null)[][];
}

/** Recurrent state the language-model graph feeds in and reads out (for the n-th recurrent layer). */
export interface RecurrentStateIO {
  initialH: string;
  initialC?: string;
  /** Declares Y_h / Y_c ([batch, hidden] each) as graph outputs. */
  present(yh: string, yc?: string): void;
}

/** Attention inputs shared by every Transformer block of a language-model graph. */
export interface AttentionIO {
  form: AttentionForm;
  /** Decomposed form: read the past on its own and give the new K/V as outputs too (see lm/transformer.ts). */
  newKeyValues: boolean;
  /** Float [batch, 1, seq, total]: 0 where a query may attend, the lowest float where not (fused forms). */
  maskBias?: string;
  /** Bool [batch, 1, seq, total]. */
  allowed: string;
  /** Int64 [batch, seq]. */
  positionIds: string;
  /** The graph input `attention_mask`, int64 [batch, past + seq] (relative positions derive key positions from it). */
  attentionMask: string;
  /**
   * Past K/V inputs of block `i` ([batch, heads, past, headDim]) and the present K/V outputs;
   * `fresh` is the K/V of this call's tokens alone ([batch, heads, seq, headDim]), where the form
   * can give it without the cache.
   */
  past(block: number): { key: string; value: string };
  present(block: number, key: string, value: string, fresh?: { key: string; value: string }): void;
  /** GQA's int32 inputs: total length per batch row minus one, and the total length. */
  seqlensK?: string;
  totalSequenceLength?: string;
}

export type AttentionForm = 'decomposed' | 'mha' | 'gqa' | 'attention23';
export type Target = 'cpu' | 'wasm' | 'webgpu';

export interface ConvertContext {
  graph: Graph;
  target: Target;
  /** Set for ferry language models: recurrent layers take and give state, blocks use the KV cache. */
  lm?: {
    recurrentState(index: number, hidden: number, withCell: boolean): RecurrentStateIO;
    attention?: AttentionIO;
  };
  /** Counters for the n-th recurrent layer / Transformer block met so far. */
  counters: { recurrent: number; block: number };
  /** Nodes that must run on CPU for the target (e.g. a HardSigmoid LSTM on WebGPU). */
  cpuOnlyNodes: string[];
}

export type Converter = (call: LayerCall, inputs: TensorRef[], ctx: ConvertContext) => Omit<TensorRef, 'shape'>[];
