import { z } from 'zod';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const tokenIds = z.array(z.number().int().nonnegative().max(MAX_SAFE)).min(1, 'a list of token ids needs at least one');
const NO_PROMPTS = 'an empty list holds no prompt: send a string, a list of strings, a list of token ids or a list of those';

/**
 * The body of POST /v1/completions: OpenAI's fields plus the extensions top_k, min_p,
 * repetition_penalty and ignore_eos (as vLLM names them). Unknown fields are refused (as OpenAI does), so a typo is never silently
 * ignored. Omitted sampling fields take the model's own defaults (ferry.json `generation`).
 */
export const completionRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  prompt: z.union([z.string(), z.array(z.string()).min(1, NO_PROMPTS), tokenIds.min(1, NO_PROMPTS), z.array(tokenIds).min(1, NO_PROMPTS)]).default(''),
  max_tokens: z.number().int().min(0).max(MAX_SAFE).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).max(MAX_SAFE).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  ignore_eos: z.boolean().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, 'logit_bias keys are token ids'), z.number().min(-100).max(100)).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4, 'at most 4 stop sequences')]).nullish(),
  seed: z.number().int().min(-MAX_SAFE).max(MAX_SAFE).nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  best_of: z.number().int().min(1).max(128).nullish(),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().nullish() }).nullish(),
  suffix: z.null({ error: 'not supported: ferry completes text after the prompt only (no insertion); leave suffix out' }).optional(),
  user: z.string().max(256).nullish(),
});

export type CompletionRequest = z.infer<typeof completionRequestSchema>;

type Issue = { code: string; path: PropertyKey[]; message: string; errors?: Issue[][]; keys?: string[] };

/**
 * The most specific problem in a zod error: for a union (a prompt may be a string, a list of
 * strings or token ids) the branch that got furthest, so that `param` points at the bad element.
 */
export function mostSpecificIssue(issue: Issue): Issue {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return issue;
  let best: Issue | undefined;
  for (const branch of issue.errors) {
    for (const inner of branch) {
      const candidate = mostSpecificIssue(inner);
      // The deepest issue; at equal depth one that says what is wrong with the value over "expected another type".
      const deeper = !best || candidate.path.length > best.path.length;
      const sharper = best !== undefined && candidate.path.length === best.path.length && best.code === 'invalid_type' && candidate.code !== 'invalid_type';
      if (deeper || sharper) best = candidate;
    }
  }
  if (!best || (best.path.length === 0 && best.code === 'invalid_type')) return issue;
  return { ...best, path: [...issue.path, ...best.path] };
}

/** `stop[1]`, `prompt[0][3]`: the field path of a zod issue, written as OpenAI's `param`. */
export function fieldPath(path: readonly PropertyKey[]): string | null {
  if (!path.length) return null;
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join('');
}
