/**
 * The weight names of ferry's custom layers (the suffix of each tfjs variable name). model.json
 * stores them and the exporter's converters (src/export/converters/ferry.ts) look them up, so
 * they are a contract between this folder and src/export. No tfjs here: the exporter imports
 * this file alone.
 */

/** FerryTransformerBlock's weights, in the order the layer creates them (docs/FORMATS.md). */
export const BLOCK_WEIGHTS = {
  ln1Gamma: 'ln1/gamma',
  ln1Beta: 'ln1/beta',
  qkvKernel: 'attn/qkv/kernel',
  qkvBias: 'attn/qkv/bias',
  projKernel: 'attn/proj/kernel',
  projBias: 'attn/proj/bias',
  ln2Gamma: 'ln2/gamma',
  ln2Beta: 'ln2/beta',
  fcKernel: 'mlp/fc/kernel',
  fcBias: 'mlp/fc/bias',
  mlpProjKernel: 'mlp/proj/kernel',
  mlpProjBias: 'mlp/proj/bias',
} as const;

/** The table of FerryTiedEmbedding and of a learned FerryPositionEmbedding. */
export const EMBEDDINGS_WEIGHT = 'embeddings';
