import { FerryError } from '../errors.ts';
import { buildRequests } from './completions.ts';
import { openModel } from './model.ts';
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
}

/**
 * `ferry generate`: one completion through the same validation, scheduler and text assembly as
 * the HTTP API, so that its output equals what the server returns for the same request.
 */
export async function generateText(dir: string, fields: Record<string, unknown>, options: GenerateOptions): Promise<string> {
  const flag = (field: string | null) => (field && options.flagOf?.[field.split(/[.[]/)[0]!]) ?? `--${field ?? 'prompt'}`;
  const parsed = completionRequestSchema.safeParse({ model: 'local', ...fields });
  if (!parsed.success) {
    const issue = mostSpecificIssue(parsed.error.issues[0]!);
    throw new FerryError('bad_flag', `${flag(fieldPath(issue.path))}: ${issue.message}`, { hint: 'see `ferry generate --help`' });
  }
  const runtime = await openRuntime(options.device, options.log);
  const model = await openModel(dir, { runtime, maxBatch: 1, maxQueue: 1, precision: options.precision });
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
    let text = '';
    for await (const event of model.scheduler.submit(request!)) {
      if (event.type !== 'text') continue;
      text += event.text;
      if (options.stream) options.write(event.text);
    }
    options.write(options.stream ? '\n' : `${text}\n`);
    return text;
  } finally {
    await model.close();
  }
}
