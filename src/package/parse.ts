/** Reading a manifest: the schema's verdict as one FerryError naming the field, and the checks generation needs. */
import { FerryError } from '../errors.ts';
import { isLanguageModel, manifestSchema, PACKAGE_FORMAT, type LanguageModelManifest, type Manifest, type Precision } from './manifest.ts';
import { namesOfState } from './state.ts';

/** Any package kind. `source` names the file in messages (a path on disk, or a URL). */
export function parseManifest(raw: unknown, source: string): Manifest {
  const bad = (field: string, message: string) => new FerryError('bad_manifest', `${source}: field "${field}": ${message}`, {
    hint: 'ferry.json must be a ferry-onnx manifest (docs/FORMATS.md); re-export the model with `ferry export`',
  });
  // The format first: another file named ferry.json (a checkpoint's) would otherwise be told about its arch.
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== PACKAGE_FORMAT) throw bad('format', `expected "${PACKAGE_FORMAT}", got ${JSON.stringify(format) ?? 'nothing'}`);
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw bad(issue.path.length ? issue.path.join('.') : '(root)', issue.message);
  }
  return parsed.data;
}

/** A package ferry's decoders can generate text with: a language model whose I/O matches its state. */
export function parseLanguageModelManifest(raw: unknown, source: string): LanguageModelManifest {
  const manifest = parseManifest(raw, source);
  if (!isLanguageModel(manifest)) {
    if (manifest.arch === 't5') throw t5NotServed(source, 'this decoder');
    throw new FerryError('not_generative', `${source}: a plain model (arch "${manifest.arch}") cannot generate text`, {
      hint: 'use an LSTM or Transformer language model exported by `ferry export`',
    });
  }
  checkStateIo(manifest, source);
  return manifest;
}

/** What code that runs language models only (a decoder-only decoder) says of a T5 package; serving, the browser client and the edge worker run T5 through src/serve/t5-model.ts. */
export function t5NotServed(source: string, where: string): FerryError {
  return new FerryError('t5_not_served', `${source} is a T5 encoder-decoder (arch "t5"), which ${where} does not run`, {
    hint: 'serve it with `ferry serve DIR` (POST /v1/completions, the prompt is the source text) or run `ferry generate DIR --prompt TEXT`',
  });
}

/** The model file a manifest names for a precision, or a clear error when it has none. */
export function modelFileOf(manifest: Manifest, precision: Precision, source: string): string {
  const file = manifest.files[precision];
  if (!file) {
    throw new FerryError('missing_precision', `${source} has no ${precision} model (ferry.json field "files.${precision}" is empty)`, {
      hint: `export it again with ${precision === 'fp16' ? '--fp16' : '--quantize int8'}, or use ${Object.entries(manifest.files).filter(([, f]) => f).map(([p]) => p).join(' or ')}`,
    });
  }
  return file;
}

function checkStateIo(manifest: LanguageModelManifest, source: string): void {
  const expected = namesOfState(manifest.state);
  const haveInputs = new Set(manifest.inputs.map((t) => t.name));
  const haveOutputs = new Set(manifest.outputs.map((t) => t.name));
  const missingInputs = expected.inputs.filter((n) => !haveInputs.has(n));
  const missingOutputs = expected.outputs.filter((n) => !haveOutputs.has(n));
  const [field, missing] = missingInputs.length ? ['inputs', missingInputs] : ['outputs', missingOutputs];
  if (missing.length) {
    throw new FerryError('bad_manifest', `${source}: field "${field}" lacks ${missing.join(', ')} for a ${manifest.state.kind} state of ${manifest.state.layers} layers`, {
      hint: 'the manifest and the state spec disagree; re-export the model with `ferry export`',
    });
  }
}
