/**
 * The ferry.json manifest of an ONNX package dir (docs/FORMATS.md): its schema and the rules a
 * package must meet to generate text. No Node APIs: the browser and edge loaders use it too.
 */
import { z } from 'zod';
import { FerryError } from '../errors.ts';

const tensorSpec = z.object({
  name: z.string().min(1),
  dtype: z.enum(['int64', 'int32', 'float32', 'float16']),
  shape: z.array(z.union([z.string(), z.number().int()])),
});

const stateSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('lstm'), layers: z.number().int().positive(), hiddenSize: z.number().int().positive() }),
  z.object({ kind: z.literal('kv'), layers: z.number().int().positive(), heads: z.number().int().positive(), headDim: z.number().int().positive() }),
]);

const generationDefaults = z.object({
  temperature: z.number().nonnegative().optional(),
  topK: z.number().int().nonnegative().optional(),
  topP: z.number().gt(0).max(1).optional(),
  maxTokens: z.number().int().positive().optional(),
}).loose();

export const manifestSchema = z.object({
  format: z.literal('ferry-onnx'),
  version: z.literal(1),
  name: z.string().min(1),
  arch: z.enum(['lstm', 'transformer', 'foreign']),
  model: z.object({ vocabSize: z.number().int().positive() }).loose(),
  contextLength: z.number().int().positive().nullable(),
  files: z.object({
    fp32: z.string().min(1),
    int8: z.string().min(1).nullable().optional(),
    fp16: z.string().min(1).nullable().optional(),
  }),
  inputs: z.array(tensorSpec).min(1),
  outputs: z.array(tensorSpec).min(1),
  state: stateSpec.nullable().optional(),
  cpuOnlyNodes: z.array(z.string()).default([]),
  generation: generationDefaults.default({}),
}).loose();

export type Manifest = z.infer<typeof manifestSchema>;
export type StateSpec = z.infer<typeof stateSpec>;
export type Precision = 'fp32' | 'int8' | 'fp16';

/**
 * The checked manifest of a generative package. `manifestPath` names the file in messages (a
 * path on disk, or a URL).
 */
export function parseManifest(raw: unknown, manifestPath: string): Manifest & { state: StateSpec } {
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length ? issue.path.join('.') : '(root)';
    throw new FerryError('bad_manifest', `${manifestPath}: field "${field}": ${issue.message}`, {
      hint: 'ferry.json must be a ferry-onnx manifest (docs/FORMATS.md); re-export the model with `ferry export`',
    });
  }
  const manifest = parsed.data;
  if (manifest.arch === 'foreign' || !manifest.state) {
    throw new FerryError('not_generative', `${manifestPath}: a ${manifest.arch} model without a state spec cannot generate text`, {
      hint: 'use an LSTM or Transformer language model exported by `ferry export`',
    });
  }
  checkIo(manifest, manifest.state, manifestPath);
  return manifest as Manifest & { state: StateSpec };
}

/** The model file a manifest names for a precision, or a clear error when it has none. */
export function modelFileOf(manifest: Manifest, precision: Precision, source: string): string {
  const file = manifest.files[precision];
  if (!file) {
    throw new FerryError('missing_precision', `${source} has no ${precision} model (ferry.json field "files.${precision}" is empty)`, {
      hint: `export it with the matching --quantize option, or use ${Object.entries(manifest.files).filter(([, f]) => f).map(([p]) => p).join(' or ')}`,
    });
  }
  return file;
}

/** The input and output names generation feeds, per FORMATS.md; anything else is a wrong package. */
export function stateInputNames(state: StateSpec): { inputs: string[]; outputs: string[] } {
  const inputs = ['input_ids'];
  const outputs = ['logits'];
  for (let i = 0; i < state.layers; i++) {
    if (state.kind === 'lstm') {
      inputs.push(`past_h.${i}`, `past_c.${i}`);
      outputs.push(`present_h.${i}`, `present_c.${i}`);
    } else {
      inputs.push(`past_key_values.${i}.key`, `past_key_values.${i}.value`);
      outputs.push(`present.${i}.key`, `present.${i}.value`);
    }
  }
  if (state.kind === 'kv') inputs.push('attention_mask', 'position_ids');
  return { inputs, outputs };
}

function checkIo(manifest: Manifest, state: StateSpec, manifestPath: string): void {
  const expected = stateInputNames(state);
  const haveInputs = new Set(manifest.inputs.map((t) => t.name));
  const haveOutputs = new Set(manifest.outputs.map((t) => t.name));
  const missing = [
    ...expected.inputs.filter((n) => !haveInputs.has(n)).map((n) => `inputs: ${n}`),
    ...expected.outputs.filter((n) => !haveOutputs.has(n)).map((n) => `outputs: ${n}`),
  ];
  if (missing.length) {
    throw new FerryError('bad_manifest', `${manifestPath}: field "${missing[0]!.split(':')[0]}" lacks ${missing.map((m) => m.split(': ')[1]).join(', ')} for a ${state.kind} state of ${state.layers} layers`, {
      hint: 'the manifest and the state spec disagree; re-export the model with `ferry export`',
    });
  }
}
