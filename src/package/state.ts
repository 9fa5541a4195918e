/** The state a language-model package carries between calls, and the graph names that go with it. */
import { lstmNames, transformerNames, type GraphNames } from './io.ts';
import type { StateSpec } from './manifest.ts';

/** The part of a checkpoint's ModelConfig the state follows (train/models/config.ts). */
export type StateShape =
  | { arch: 'lstm'; numLayers: number; hiddenSize: number }
  | { arch: 'transformer'; nLayer: number; nHead: number; nEmbd: number };

export function stateSpecOf(config: Extract<StateShape, { arch: 'lstm' }>): Extract<StateSpec, { kind: 'lstm' }>;
export function stateSpecOf(config: Extract<StateShape, { arch: 'transformer' }>): Extract<StateSpec, { kind: 'kv' }>;
export function stateSpecOf(config: StateShape): StateSpec;
export function stateSpecOf(config: StateShape): StateSpec {
  return config.arch === 'lstm'
    ? { kind: 'lstm', layers: config.numLayers, hiddenSize: config.hiddenSize }
    : { kind: 'kv', layers: config.nLayer, heads: config.nHead, headDim: config.nEmbd / config.nHead };
}

/** The names every graph with this state has (a Transformer's `new_key_values.*` are optional). */
export function namesOfState(state: StateSpec): GraphNames {
  return state.kind === 'lstm' ? lstmNames(state.layers) : transformerNames(state.layers);
}
