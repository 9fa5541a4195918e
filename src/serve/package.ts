import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FerryError } from '../errors.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';

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

/** An ONNX package dir (docs/FORMATS.md), checked and ready for a runtime. */
export interface ModelPackage {
  readonly dir: string;
  readonly id: string;
  readonly manifest: Manifest & { state: StateSpec };
  readonly tokenizer: Tokenizer;
  readonly modelPath: string;
  readonly precision: Precision;
}

export async function loadPackage(dir: string, options: { precision?: Precision } = {}): Promise<ModelPackage> {
  const manifestPath = path.join(dir, 'ferry.json');
  const raw = await readJson(manifestPath, dir, 'ferry.json');
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
    throw new FerryError('not_generative', `${dir}: a ${manifest.arch} model without a state spec cannot generate text`, {
      hint: 'serve an LSTM or Transformer language model exported by `ferry export`',
    });
  }
  checkIo(manifest, manifest.state, manifestPath);

  const precision = options.precision ?? 'fp32';
  const file = manifest.files[precision];
  if (!file) {
    throw new FerryError('missing_precision', `${dir} has no ${precision} model (ferry.json field "files.${precision}" is empty)`, {
      hint: `export it with the matching --quantize option, or serve ${Object.entries(manifest.files).filter(([, f]) => f).map(([p]) => p).join(' or ')}`,
    });
  }
  const modelPath = path.resolve(dir, file);
  await stat(modelPath).catch((cause: unknown) => {
    throw new FerryError('missing_model_file', `${dir}: ferry.json names ${file}, which does not exist`, { hint: 're-export the package', cause });
  });

  let tokenizer: Tokenizer;
  try {
    tokenizer = loadTokenizer(await readJson(path.join(dir, 'tokenizer.json'), dir, 'tokenizer.json'));
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError('bad_tokenizer', `${dir}/tokenizer.json: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (tokenizer.vocabSize > manifest.model.vocabSize) {
    throw new FerryError('bad_tokenizer', `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${manifest.model.vocabSize}`, {
      hint: 'the tokenizer.json belongs to another model; re-export the package',
    });
  }
  return { dir, id: manifest.name, manifest: manifest as ModelPackage['manifest'], tokenizer, modelPath, precision };
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

async function readJson(file: string, dir: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new FerryError('not_a_package', `${dir} is not an ONNX package dir: ${what} is missing`, {
      hint: 'pass a directory written by `ferry export` (it holds ferry.json, tokenizer.json and onnx/model.onnx)',
      status: 404,
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new FerryError('bad_manifest', `${file} is not valid JSON: ${(cause as Error).message}`, { hint: 're-export the package', cause });
  }
}
