/** What a runtime must know to drive a language-model graph: its state, shapes and context. */
export type LanguageModelSpec =
  | { arch: 'lstm'; vocabSize: number; layers: number; hiddenSize: number; withCell: boolean }
  | { arch: 'transformer'; vocabSize: number; layers: number; heads: number; headDim: number; contextLength: number };
