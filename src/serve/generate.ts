import { invalidOptions } from '../cli-flags.ts';
import { FerryError } from '../errors.ts';
import { buildRequests } from './completions.ts';
import { openModel } from './model.ts';
import { readManifest } from './package.ts';
import { openT5Model } from './t5-model.ts';
import { ApiError } from './openai-error.ts';
import type { Precision } from '../package/index.ts';
import { openRuntime } from './runtime/index.ts';
import type { Logger } from './runtime/types.ts';
import { completionRequestSchema, fieldPath, mostSpecificIssue } from './schema.ts';

export interface GenerateOptions {
  device: string;
  precision?: Precision;
  stream: boolean;
  /** Request field -> the CLI flag that sets it, for error messages. */
  flagOf?: Record<string, string>;
  write: (text: string) => void;
  log: Logger;
  /** Details for `--verbose` (why a device was not used). */
  verbose?: Logger;
}

type Issue = Parameters<typeof mostSpecificIssue>[0] & { minimum?: unknown; maximum?: unknown; inclusive?: boolean; expected?: string };

/** What a zod issue asks of a flag's value, in words: "a number >= 0", "a number <= 1". */
function expectation(issue: Issue): string {
  if (issue.code === 'too_small') return `a number ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
  if (issue.code === 'too_big') return `a number ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
  if (issue.code === 'invalid_type' && issue.expected === 'int') return 'a whole number';
  if (issue.code === 'invalid_type') return `a ${issue.expected ?? 'value of another type'}`;
  return `valid (${issue.message})`;
}

/**
 * `ferry generate`: one completion through the same validation, scheduler and text assembly as
 * the HTTP API, so that its output equals what the server returns for the same request.
 */
export async function generateText(dir: string, fields: Record<string, unknown>, options: GenerateOptions): Promise<string> {
  const flag = (field: string | null) => (field && options.flagOf?.[field.split(/[.[]/)[0]!]) ?? `--${field ?? 'prompt'}`;
  const parsed = completionRequestSchema.safeParse({ model: 'local', ...fields });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((first) => {
      const issue = mostSpecificIssue(first);
      const field = fieldPath(issue.path);
      return `${flag(field)} must be ${expectation(issue)}, got ${JSON.stringify(field === null ? undefined : fields[field.split(/[.[]/)[0]!])}`;
    });
    throw invalidOptions(problems, 'generate');
  }
  const runtime = await openRuntime(options.device, options.log, { verbose: options.verbose });
  const manifest = await readManifest(dir);
  const model = manifest.arch === 't5'
    ? await openT5Model(dir, manifest, { runtime, maxBatch: 1, maxQueue: 1, precision: options.precision })
    : await openModel(dir, { runtime, maxBatch: 1, maxQueue: 1, precision: options.precision });
  options.log(`${model.id} (${model.arch}) on ${model.provider}`);
  try {
    const [request] = (() => {
      try {
        return buildRequests(parsed.data, model, { maxTokens: Number.MAX_SAFE_INTEGER, timeoutMs: 24 * 3600 * 1000 }, new AbortController().signal);
      } catch (error) {
        if (error instanceof ApiError) throw new FerryError('bad_flag', error.param ? error.message.replace(error.param, flag(error.param)) : error.message);
        throw error;
      }
    })();
    // Like `ferry sample`: the prompt, then its continuation, so the text reads as one; a T5
    // model's output is a text of its own (the target), printed alone.
    const prompt = typeof parsed.data.prompt === 'string' && manifest.arch !== 't5' ? parsed.data.prompt : '';
    if (options.stream) options.write(prompt);
    let text = '';
    // A Transformer goes on past its context in a sliding window: only --max-tokens or the end-of-text token stop it.
    for await (const event of model.scheduler.submit(request!)) {
      if (event.type !== 'text') continue;
      text += event.text;
      if (options.stream) options.write(event.text);
    }
    options.write(options.stream ? '\n' : `${prompt}${text}\n`);
    return text;
  } finally {
    await model.close();
  }
}
