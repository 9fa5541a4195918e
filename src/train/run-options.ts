/** What a run trains: its tokenizer and model config, from the flags, a preset, or (on resume) the run's own. */
import { FerryError } from '../errors.ts';
import { TOKENIZER_KINDS, trainTokenizer, type Tokenizer, type TokenizerKind } from '../tokenizer/index.ts';
import { readCorpus } from './data/index.ts';
import { mergeModelShape, PRESETS, resolveModelConfig, validateModelConfig, type ModelConfig } from './models/index.ts';

/** The options that choose a run's model (a subset of TrainOptions). */
export interface ModelChoice {
  out: string;
  arch?: string;
  preset?: string;
  model?: Record<string, unknown>;
}

/** The tokenizer a run uses: --tokenizer, else the preset's, else char; on resume the run's, which --tokenizer may only repeat. */
export function resolveTokenizerKind(given: string | undefined, presetName: string | undefined, saved: TokenizerKind | undefined): TokenizerKind {
  if (given !== undefined && !(TOKENIZER_KINDS as readonly string[]).includes(given)) {
    throw new FerryError('unknown_tokenizer', `Unknown tokenizer "${given}".`, { hint: `Valid tokenizers: ${TOKENIZER_KINDS.join(', ')}.` });
  }
  if (saved !== undefined) {
    if (given !== undefined && given !== saved) {
      throw new FerryError('resume_mismatch', `Cannot resume with --tokenizer ${given}: the run was trained with a ${saved} tokenizer.`, {
        hint: 'Drop --tokenizer, or start a new run in another --out.',
      });
    }
    return saved;
  }
  const preset = presetName === undefined ? undefined : PRESETS[presetName];
  return (given as TokenizerKind | undefined) ?? preset?.tokenizer ?? 'char';
}

export function presetVocabSize(presetName: string | undefined): number | undefined {
  return presetName === undefined ? undefined : PRESETS[presetName]?.vocabSize;
}

export async function buildTokenizer(corpus: string, kind: TokenizerKind, vocabSize: number | undefined): Promise<Tokenizer> {
  return trainTokenizer(kind, readCorpus(corpus), vocabSize === undefined ? {} : { vocabSize });
}

/** A new run's config from arch/preset/flags; on resume, the checkpoint's, which flags may only repeat. */
export function resolveConfig(options: ModelChoice, vocabSize: number, saved: ModelConfig | undefined): ModelConfig {
  const overrides = options.model ?? {};
  if (saved === undefined) {
    return resolveModelConfig({ arch: options.arch, preset: options.preset, overrides, vocabSize });
  }
  if (options.arch !== undefined && options.arch !== saved.arch) {
    throw new FerryError('resume_mismatch', `Cannot resume a ${saved.arch} checkpoint as --arch ${options.arch}.`, {
      hint: `The run in ${options.out} is a ${saved.arch} model; drop --arch, or start a new run in another --out.`,
    });
  }
  const wanted = options.preset === undefined
    ? validateModelConfig({ ...saved, ...definedOnly(overrides) })
    : resolveModelConfig({ arch: saved.arch, preset: options.preset, overrides, vocabSize: saved.vocabSize });
  const differing = (Object.keys(saved) as (keyof ModelConfig)[]).filter((key) => wanted[key] !== saved[key]);
  if (differing.length > 0) {
    const describe = differing.map((key) => `${key} ${String(saved[key])} -> ${String(wanted[key])}`).join(', ');
    throw new FerryError('resume_mismatch', `Cannot resume with a different model: ${describe}.`, {
      hint: 'A resumed run keeps its model; drop those flags, or start a new run in another --out.',
    });
  }
  return saved;
}

function definedOnly(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

/** A problem for a list of them: the error's message and hint on one line, without the final stop. */
export function problemOf(error: FerryError): string {
  return `${error.message.replace(/\.$/, '')}${error.hint ? ` (${error.hint.replace(/\.$/, '')})` : ''}`;
}

/**
 * Every problem of a new run's model flags, in flag names (empty when resolveConfig will succeed):
 * the arch or preset, and the flags that must agree with each other.
 */
export function modelProblems(options: ModelChoice, vocabSize: number): string[] {
  let shape: Record<string, unknown>;
  try {
    shape = mergeModelShape({ arch: options.arch, preset: options.preset, overrides: options.model ?? {}, vocabSize });
  } catch (error) {
    if (error instanceof FerryError) return [problemOf(error)];
    throw error;
  }
  const problems: string[] = [];
  const { nEmbd, nHead, hiddenSize, embeddingDim } = shape as Record<string, number>;
  if (shape.arch === 'transformer' && nHead! > 0 && nEmbd! > 0 && nEmbd! % nHead! !== 0) {
    problems.push(`--heads ${nHead} must divide --embd ${nEmbd} (for example --heads ${nearestDivisor(nEmbd!, nHead!)}, or --embd ${Math.max(1, Math.round(nEmbd! / nHead!)) * nHead!})`);
  }
  if (shape.arch === 'lstm' && shape.tieWeights === true && hiddenSize !== embeddingDim) {
    problems.push(`--tie-weights needs --hidden equal to --embd, got --hidden ${hiddenSize} and --embd ${embeddingDim}`);
  }
  if (problems.length > 0) return problems;
  try {
    validateModelConfig(shape);
  } catch (error) {
    if (error instanceof FerryError) return [problemOf(error)];
    throw error;
  }
  return [];
}

/** The divisor of `n` nearest to `near` (the larger one on a tie). */
function nearestDivisor(n: number, near: number): number {
  let best = 1;
  for (let d = 1; d <= n; d += 1) {
    if (n % d === 0 && Math.abs(d - near) <= Math.abs(best - near)) best = d;
  }
  return best;
}
