/**
 * The names of a package graph's inputs and outputs (docs/FORMATS.md), one function per graph
 * kind. The exporter names the graph's tensors with these and every decoder feeds and fetches
 * them, so a name lives here and nowhere else.
 */

export const INPUT_IDS = 'input_ids';
export const ATTENTION_MASK = 'attention_mask';
export const POSITION_IDS = 'position_ids';
export const LOGITS = 'logits';

/** The names of one graph: every input and output, and which of them carry the state. */
export interface GraphNames {
  /** Every input, in graph order. */
  readonly inputs: readonly string[];
  /** Every output, in graph order. */
  readonly outputs: readonly string[];
  /** The state inputs, in order: per layer h, c (LSTM) or key, value (Transformer). */
  readonly past: readonly string[];
  /** The outputs that are the next call's `past`, pairwise with it. */
  readonly present: readonly string[];
}

export interface TransformerNames extends GraphNames {
  /** `new_key_values.*`, pairwise with `past`: this call's K/V alone; empty unless the graph keeps a server cache. */
  readonly newKeyValues: readonly string[];
}

export const lstmPastH = (layer: number) => `past_h.${layer}`;
export const lstmPastC = (layer: number) => `past_c.${layer}`;
export const lstmPresentH = (layer: number) => `present_h.${layer}`;
export const lstmPresentC = (layer: number) => `present_c.${layer}`;

export type KvPart = 'key' | 'value';
export const KV_PARTS: readonly KvPart[] = ['key', 'value'];
export const pastKeyValue = (layer: number, part: KvPart) => `past_key_values.${layer}.${part}`;
export const presentKeyValue = (layer: number, part: KvPart) => `present.${layer}.${part}`;
export const newKeyValue = (layer: number, part: KvPart) => `new_key_values.${layer}.${part}`;

const perLayer = (layers: number, names: (layer: number) => string[]) => Array.from({ length: layers }, (_, l) => names(l)).flat();

/** LSTM LM: `input_ids` and h / c per layer in; `logits` and the next h / c out. */
export function lstmNames(layers: number, options: { withCell?: boolean } = {}): GraphNames {
  const withCell = options.withCell ?? true;
  const past = perLayer(layers, (l) => (withCell ? [lstmPastH(l), lstmPastC(l)] : [lstmPastH(l)]));
  const present = perLayer(layers, (l) => (withCell ? [lstmPresentH(l), lstmPresentC(l)] : [lstmPresentH(l)]));
  return { inputs: [INPUT_IDS, ...past], outputs: [LOGITS, ...present], past, present };
}

/**
 * Transformer LM, the HF Optimum / transformers.js convention: ids, mask, positions and the past
 * K/V per layer in; `logits` and the concatenated K/V (`present.*`) out. With `newKeyValues` (a
 * graph for a runtime that keeps its own cache) it also outputs this call's K/V alone, last.
 */
export function transformerNames(layers: number, options: { newKeyValues?: boolean } = {}): TransformerNames {
  const past = perLayer(layers, (l) => KV_PARTS.map((part) => pastKeyValue(l, part)));
  const present = perLayer(layers, (l) => KV_PARTS.map((part) => presentKeyValue(l, part)));
  const newKeyValues = options.newKeyValues ? perLayer(layers, (l) => KV_PARTS.map((part) => newKeyValue(l, part))) : [];
  return {
    inputs: [INPUT_IDS, ATTENTION_MASK, POSITION_IDS, ...past],
    outputs: [LOGITS, ...present, ...newKeyValues],
    past,
    present,
    newKeyValues,
  };
}

/**
 * Whether a Transformer graph offers a runtime that keeps the KV cache itself what it needs:
 * `new_key_values.*`, so a step fetches `logits` and those only, never `present.*`.
 */
export function graphKeepsOwnCache(outputNames: readonly string[]): boolean {
  return outputNames.includes(newKeyValue(0, 'key'));
}

/** Whether an output is one of the concatenated K/V (`present.*`) a server-side cache never fetches. */
export function isPresentKeyValue(name: string): boolean {
  return /^present\.\d+\.(key|value)$/.test(name);
}

/**
 * T5 encoder (HF Optimum's `encoder_model.onnx`): the source ids and their mask in, the
 * encoder's output states out.
 */
export const LAST_HIDDEN_STATE = 'last_hidden_state';
export function t5EncoderNames(): GraphNames {
  return { inputs: [INPUT_IDS, ATTENTION_MASK], outputs: [LAST_HIDDEN_STATE], past: [], present: [] };
}

export const ENCODER_ATTENTION_MASK = 'encoder_attention_mask';
export const ENCODER_HIDDEN_STATES = 'encoder_hidden_states';
export const USE_CACHE_BRANCH = 'use_cache_branch';
export type Seq2SeqCache = 'decoder' | 'encoder';
export const SEQ2SEQ_CACHES: readonly Seq2SeqCache[] = ['decoder', 'encoder'];
export const pastSeq2Seq = (layer: number, cache: Seq2SeqCache, part: KvPart) => `past_key_values.${layer}.${cache}.${part}`;
export const presentSeq2Seq = (layer: number, cache: Seq2SeqCache, part: KvPart) => `present.${layer}.${cache}.${part}`;

/**
 * T5 decoder in Optimum's merged form (`decoder_model_merged.onnx`, what transformers.js runs):
 * the target ids, the encoder's mask and states, per layer the self-attention cache
 * (`...decoder.key|value`) and the cross-attention cache (`...encoder.key|value`), and
 * `use_cache_branch` in; `logits` and the presents out. With `use_cache_branch` false (the first
 * step, every past empty) the graph computes the cross-attention cache from the encoder states;
 * with it true it passes the past one through.
 */
export function t5DecoderNames(layers: number): GraphNames {
  const kv = (name: typeof pastSeq2Seq) => perLayer(layers, (l) => SEQ2SEQ_CACHES.flatMap((cache) => KV_PARTS.map((part) => name(l, cache, part))));
  const past = kv(pastSeq2Seq);
  const present = kv(presentSeq2Seq);
  return {
    inputs: [ENCODER_ATTENTION_MASK, INPUT_IDS, ENCODER_HIDDEN_STATES, ...past, USE_CACHE_BRANCH],
    outputs: [LOGITS, ...present],
    past,
    present,
  };
}
