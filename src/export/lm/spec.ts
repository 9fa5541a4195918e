/** What a runtime must know to drive a language-model graph: its state, shapes and context. */
import type { StateSpec } from '../../package/index.ts';
import type { ModelConfig } from '../../train/models/index.ts';

export type LanguageModelSpec =
  | { arch: 'lstm'; vocabSize: number; layers: number; hiddenSize: number; withCell: boolean }
  | { arch: 'transformer'; vocabSize: number; layers: number; heads: number; headDim: number; contextLength: number };

export function languageModelSpec(config: ModelConfig): LanguageModelSpec {
  return config.arch === 'lstm'
    ? { arch: 'lstm', vocabSize: config.vocabSize, layers: config.numLayers, hiddenSize: config.hiddenSize, withCell: true }
    : { arch: 'transformer', vocabSize: config.vocabSize, layers: config.nLayer, heads: config.nHead, headDim: config.nEmbd / config.nHead, contextLength: config.blockSize };
}

/** The manifest's state spec of a language model (src/package), which ferry's decoders take. */
export function stateOfSpec(spec: LanguageModelSpec): StateSpec {
  return spec.arch === 'lstm'
    ? { kind: 'lstm', layers: spec.layers, hiddenSize: spec.hiddenSize }
    : { kind: 'kv', layers: spec.layers, heads: spec.heads, headDim: spec.headDim };
}
