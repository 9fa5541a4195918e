/**
 * `ferry.json`, the manifest of an ONNX package dir: one zod schema that `ferry export` writes
 * through and every runtime (Node server, browser, edge) reads through. docs/FORMATS.md's table of
 * its fields is generated from this file (scripts/formats-doc.ts; a test checks they agree).
 *
 * The schema is a union over `arch`, the package kind: a language model (`lstm`, `transformer`)
 * that ferry's decoders generate text with, a `t5` encoder-decoder (Optimum's two graphs) that
 * ferry's seq2seq decoder turns a source text into a target with, or a plain `model` whose
 * tensors go in and out as they are. A new kind is one more member of the union.
 */
import { z } from 'zod';

export const PACKAGE_FORMAT = 'ferry-onnx';
export const PACKAGE_VERSION = 1;
export const MANIFEST_FILE = 'ferry.json';

export const PRECISIONS = ['fp32', 'int8', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];
/** The files an export writes: fp32 always, the others when asked for. */
export type PrecisionFiles = { fp32: string; int8: string | null; fp16: string | null };

/** Element types by their ONNX names in lower case (TensorProto.DataType). */
export const TENSOR_DTYPES = ['float32', 'float16', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string'] as const;
export type TensorDtype = (typeof TENSOR_DTYPES)[number];

const dim = z.union([z.string().min(1), z.number().int().nonnegative()]).describe('a fixed size, or the name of a dynamic dim');

export const tensorSpecSchema = z.object({
  name: z.string().min(1).describe('the graph input or output name'),
  dtype: z.enum(TENSOR_DTYPES).describe('element type'),
  shape: z.array(dim).describe('dims: numbers are fixed, strings name dynamic dims'),
});
export type TensorSpec = z.infer<typeof tensorSpecSchema>;

export const plainTensorSpecSchema = tensorSpecSchema.extend({
  batchDim: z.number().int().nonnegative().nullable().describe('the index in `shape` of the batch dim, or null when the tensor has none'),
}).refine((t) => t.batchDim === null || t.batchDim < t.shape.length, { message: 'batchDim must index a dim of shape', path: ['batchDim'] });
export type PlainTensorSpec = z.infer<typeof plainTensorSpecSchema>;

export const lstmStateSchema = z.object({
  kind: z.literal('lstm'),
  layers: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
});
export const kvStateSchema = z.object({
  kind: z.literal('kv'),
  layers: z.number().int().positive(),
  heads: z.number().int().positive(),
  headDim: z.number().int().positive(),
});
export const stateSpecSchema = z.discriminatedUnion('kind', [lstmStateSchema, kvStateSchema]);
export type StateSpec = z.infer<typeof stateSpecSchema>;

const filesSchema = z.object({
  fp32: z.string().min(1),
  int8: z.string().min(1).nullable().optional(),
  fp16: z.string().min(1).nullable().optional(),
}).describe('the model file of each precision, relative to the package dir; null where not exported');

/**
 * What export measured for one precision. Open: a check may add its own figures (the int8
 * checks do), and an older reader keeps what it does not know.
 */
const parityEntrySchema = z.object({
  maxAbsDiff: z.number().optional(),
  tolerance: z.number().optional(),
  cases: z.array(z.object({ name: z.string(), maxAbsDiff: z.number() })).optional(),
  perplexity: z.number().optional(),
  fp32Perplexity: z.number().optional(),
  perplexityChange: z.number().optional(),
  bytes: z.number().optional(),
  fp32Bytes: z.number().optional(),
  tokens: z.number().optional(),
  incrementalMaxAbsDiff: z.number().optional(),
  incrementalTolerance: z.number().optional(),
}).loose();
export type ParityEntry = z.infer<typeof parityEntrySchema>;

const paritySchema = z.record(z.string(), parityEntrySchema)
  .describe('per precision (fp32, int8, fp16): what verification measured against tfjs; {} with --no-verify');

const generationSchema = z.object({
  temperature: z.number().nonnegative().optional(),
  topK: z.number().int().nonnegative().optional(),
  topP: z.number().gt(0).max(1).optional(),
  maxTokens: z.number().int().positive().optional(),
}).loose();

/** The fields every package kind has. */
const commonFields = {
  format: z.literal(PACKAGE_FORMAT).describe(`always "${PACKAGE_FORMAT}"`),
  version: z.literal(PACKAGE_VERSION).describe('the manifest version this ferry reads'),
  name: z.string().min(1).describe('the model id it is served under'),
  files: filesSchema,
  opset: z.number().int().positive().optional().describe('the ONNX opset of the files'),
  target: z.enum(['cpu', 'wasm', 'webgpu']).optional().describe('the runtime the export was shaped for'),
  cpuOnlyNodes: z.array(z.string()).default([]).describe('node names that must run on the CPU EP for the target'),
  parity: paritySchema.optional(),
  producer: z.string().optional().describe('"ferry <version>"'),
  exportedAt: z.string().optional().describe('ISO 8601 time of the export'),
};

const languageModelFields = {
  ...commonFields,
  model: z.object({ vocabSize: z.number().int().positive() }).loose().describe("the checkpoint's ModelConfig"),
  contextLength: z.number().int().positive().nullable().describe('most positions the model sees; null when unbounded (LSTM)'),
  inputs: z.array(tensorSpecSchema).min(1).describe('the graph inputs, in graph order; names from src/package/io.ts'),
  outputs: z.array(tensorSpecSchema).min(1).describe('the graph outputs, in graph order'),
  generation: generationSchema.default({}).describe('default sampling settings: temperature, topK, topP, maxTokens'),
  training: z.record(z.string(), z.unknown()).nullable().optional().describe("the checkpoint's training record"),
};

export const lstmManifestSchema = z.object({
  arch: z.literal('lstm').describe('an LSTM language model'),
  ...languageModelFields,
  state: lstmStateSchema.describe('h and c per layer, [batch, hiddenSize] each'),
  attention: z.null().optional().describe('null: an LSTM has no attention'),
}).loose();

export const transformerManifestSchema = z.object({
  arch: z.literal('transformer').describe('a Transformer language model'),
  ...languageModelFields,
  state: kvStateSchema.describe('a KV cache per layer, [batch, heads, past, headDim]'),
  attention: z.enum(['decomposed', 'mha', 'gqa', 'attention23']).describe('the attention form of the graph'),
}).loose();

export const plainModelManifestSchema = z.object({
  arch: z.literal('model').describe('a plain model: named tensors in and out, no tokenizer'),
  ...commonFields,
  inputs: z.array(plainTensorSpecSchema).min(1).describe('the graph inputs, named after the source model'),
  outputs: z.array(plainTensorSpecSchema).min(1).describe('the graph outputs'),
  source: z.string().optional().describe('what was exported, e.g. "tfjs-layers"'),
}).loose();

export const t5ManifestSchema = z.object({
  arch: z.literal('t5').describe('a T5 encoder-decoder: a source text in, a target text out'),
  ...commonFields,
  files: filesSchema.describe('the merged decoder of each precision (onnx/decoder_model_merged.onnx, int8 _quantized, fp16 _fp16 as Optimum names them); null where not exported'),
  encoderFiles: filesSchema.describe('the encoder of each precision (onnx/encoder_model.onnx, _quantized, _fp16); null where not exported; the same precisions as files'),
  hfConfig: z.string().min(1).describe("Hugging Face's config.json of the model, relative to the package dir"),
  model: z.object({
    vocabSize: z.number().int().positive(),
    nHeads: z.number().int().positive(),
    dKv: z.number().int().positive(),
    nDecoderLayers: z.number().int().positive(),
    maxSourceLength: z.number().int().positive(),
  }).loose().describe("the T5Config it was built from (src/train/models/t5-config.ts); maxSourceLength bounds a prompt's tokens, eos included"),
  generation: generationSchema.default({}).describe('default sampling settings: temperature, topK, topP, maxTokens'),
}).loose().superRefine((m, ctx) => {
  // A precision runs both graphs: a decoder without its encoder (or the reverse) cannot be served.
  for (const precision of ['int8', 'fp16'] as const) {
    if (!m.files[precision] !== !m.encoderFiles[precision]) {
      ctx.addIssue({ code: 'custom', path: ['encoderFiles', precision], message: `files.${precision} and encoderFiles.${precision} must both name a file or both be null` });
    }
  }
});

export const manifestSchema = z.discriminatedUnion('arch', [lstmManifestSchema, transformerManifestSchema, t5ManifestSchema, plainModelManifestSchema]);

/** A manifest as read (defaults filled in). */
export type Manifest = z.infer<typeof manifestSchema>;
/** A manifest as written: what export builds and checks against the schema before writing. */
export type ManifestInput = z.input<typeof manifestSchema>;
export type LanguageModelManifest = Extract<Manifest, { arch: 'lstm' | 'transformer' }>;
export type PlainModelManifest = Extract<Manifest, { arch: 'model' }>;
export type T5Manifest = Extract<Manifest, { arch: 't5' }>;
export type PackageArch = Manifest['arch'];

export function isLanguageModel(manifest: Manifest): manifest is LanguageModelManifest {
  return manifest.arch === 'lstm' || manifest.arch === 'transformer';
}
