export { describeCorpus, readCorpus, hashCorpus } from './corpus.ts';
export { prepareTokens, type PreparedTokens } from './token-cache.ts';
export { arrayTokenSource, fileTokenSource, subTokenSource, type TokenSource } from './token-source.ts';
export { splitTrainVal, checkHoldsBlock } from './split.ts';
export { createRng, type Rng, type RngState } from './rng.ts';
export { sampleBatch, sequentialBatches, type Batch, type BatchShape } from './batches.ts';
