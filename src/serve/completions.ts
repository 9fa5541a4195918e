import { Channel } from './channel.ts';
import type { Metrics } from './metrics.ts';
import type { ServedModel } from './model.ts';
import { ApiError, toApiError } from './openai-error.ts';
import type { SamplingParams } from './sampling.ts';
import type { GenerationEvent, GenerationRequest } from './scheduler.ts';
import { completionRequestSchema, fieldPath, mostSpecificIssue, type CompletionRequest } from './schema.ts';
import { wellFormed, type TokenLogprob } from './text.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

export interface CompletionLimits {
  /** Largest `max_tokens` a request may ask for. */
  maxTokens: number;
  /** Longest prompt in tokens (models with unbounded context, e.g. LSTMs, need a bound too). */
  maxPromptTokens?: number;
  /** Milliseconds a request may take, queue time included. */
  timeoutMs: number;
}

/** What a request whose client went away is counted as (nginx's 499: nobody reads the answer). */
export function clientClosed(): ApiError {
  return new ApiError(499, 'client_closed', 'the client closed the connection before the answer was complete');
}

/** Body text -> a validated request, or a 400 naming the offending field. */
export function parseCompletionBody(text: string): CompletionRequest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, 'invalid_json', `the body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = completionRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = mostSpecificIssue(parsed.error.issues[0]!);
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys?.[0] : undefined;
    const param = unknownKey ? fieldPath([...issue.path, unknownKey]) : fieldPath(issue.path);
    const message = unknownKey ? `unknown field "${param}"` : `${param ?? 'body'}: ${issue.message}`;
    throw new ApiError(400, unknownKey ? 'unknown_parameter' : 'invalid_value', message, { param });
  }
  return parsed.data;
}

interface PreparedPrompt {
  ids: number[];
  text: string;
}

const unitsPerTokenOf = new WeakMap<Tokenizer, number>();

/**
 * The most UTF-16 units one token stands for: its UTF-8 bytes, as no unit takes fewer. A word
 * vocabulary's `<unk>` stands for any unknown word, so it has no bound.
 */
function unitsPerToken(tokenizer: Tokenizer): number {
  let most = unitsPerTokenOf.get(tokenizer);
  if (most === undefined) {
    most = 1;
    if (tokenizer.kind === 'word') most = Infinity;
    else for (let id = 0; id < tokenizer.vocabSize; id++) most = Math.max(most, tokenizer.tokenBytes(id).length);
    unitsPerTokenOf.set(tokenizer, most);
  }
  return most;
}

function preparePrompts(body: CompletionRequest, model: ServedModel, maxPromptTokens: number): PreparedPrompt[] {
  const { tokenizer } = model;
  const raw = body.prompt;
  const prompts: (string | number[])[] = typeof raw === 'string' ? [raw] : typeof raw[0] === 'number' ? [raw as number[]] : (raw as (string | number[])[]);
  // Refused before any tokenizing (which takes ~150 ms for a million characters): a text
  // longer than the longest prompt's tokens could spell.
  const mostUnits = maxPromptTokens * unitsPerToken(tokenizer);
  const long = prompts.findIndex((prompt) => typeof prompt === 'string' && prompt.length > mostUnits);
  if (long >= 0) {
    throw new ApiError(400, 'context_length_exceeded', `the prompt is ${prompts[long]!.length} characters, more than ${maxPromptTokens} tokens of ${model.id} can hold`, { param: 'prompt' });
  }
  return prompts.map((prompt, p) => {
    const param = typeof raw === 'string' || typeof raw[0] === 'number' ? 'prompt' : `prompt[${p}]`;
    if (typeof prompt !== 'string') {
      const bad = prompt.find((id) => id >= tokenizer.vocabSize);
      if (bad !== undefined) throw new ApiError(400, 'invalid_value', `${param}: token id ${bad} is outside the vocabulary of ${tokenizer.vocabSize}`, { param });
      return { ids: prompt, text: tokenizer.decode(prompt) };
    }
    if (prompt === '') {
      if (tokenizer.eosId === undefined) {
        throw new ApiError(400, 'invalid_value', `${param}: the prompt is empty and ${model.id} has no <|endoftext|> token to start from`, { param });
      }
      return { ids: [tokenizer.eosId], text: '' };
    }
    const text = wellFormed(prompt);
    return { ids: tokenizer.encode(text), text };
  });
}

function samplingOf(body: CompletionRequest, model: ServedModel): SamplingParams {
  const defaults = model.defaults;
  const logitBias = new Map<number, number>();
  for (const [key, bias] of Object.entries(body.logit_bias ?? {})) {
    const id = Number(key);
    if (id >= model.tokenizer.vocabSize) {
      throw new ApiError(400, 'invalid_value', `logit_bias: token id ${key} is outside the vocabulary of ${model.tokenizer.vocabSize}`, { param: 'logit_bias' });
    }
    logitBias.set(id, bias);
  }
  const topK = body.top_k ?? defaults.topK ?? 0;
  return {
    temperature: body.temperature ?? defaults.temperature ?? 1,
    topK: topK < 0 ? 0 : topK,
    topP: body.top_p ?? defaults.topP ?? 1,
    minP: body.min_p ?? 0,
    repetitionPenalty: body.repetition_penalty ?? 1,
    frequencyPenalty: body.frequency_penalty ?? 0,
    presencePenalty: body.presence_penalty ?? 0,
    logitBias,
  };
}

/** A validated body -> one generation request per prompt, checked against the model. */
export function buildRequests(body: CompletionRequest, model: ServedModel, limits: CompletionLimits, signal: AbortSignal): GenerationRequest[] {
  const n = body.n ?? 1;
  if (body.stream_options != null && !body.stream) {
    throw new ApiError(400, 'invalid_value', 'stream_options: only allowed when stream is true', { param: 'stream_options' });
  }
  if (body.best_of != null && body.best_of !== n) {
    throw new ApiError(400, 'invalid_value', 'best_of: ferry does not rank candidates, so best_of must equal n', { param: 'best_of' });
  }
  const maxTokens = body.max_tokens ?? model.defaults.maxTokens ?? 16;
  if (maxTokens > limits.maxTokens) {
    throw new ApiError(400, 'invalid_value', `max_tokens: at most ${limits.maxTokens} on this server`, { param: 'max_tokens' });
  }
  const sampling = samplingOf(body, model);
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const deadline = Date.now() + limits.timeoutMs;
  const maxPromptTokens = limits.maxPromptTokens ?? Number.MAX_SAFE_INTEGER;
  const promptCount = typeof body.prompt === 'string' || typeof body.prompt[0] === 'number' ? 1 : body.prompt.length;
  const capacity = model.scheduler.capacity(n);
  if (capacity > 0 && promptCount > capacity) {
    throw new ApiError(400, 'too_many_prompts', `${promptCount} prompts of n=${n} can never be queued at once: ${model.id} takes at most ${capacity} requests of n=${n} (--max-batch and --max-queue); send fewer prompts per request`, { param: 'prompt' });
  }
  const prompts = preparePrompts(body, model, maxPromptTokens);
  const tooLong = prompts.findIndex((p) => p.ids.length > maxPromptTokens);
  if (tooLong >= 0) {
    throw new ApiError(400, 'context_length_exceeded', `the prompt is ${prompts[tooLong]!.ids.length} tokens; this server takes at most ${maxPromptTokens}`, { param: 'prompt' });
  }
  const signals = splitSignal(signal, prompts.length);
  return prompts.map((prompt, p) => ({
    prompt: prompt.ids,
    promptText: prompt.text,
    n,
    maxTokens,
    sampling,
    seed: body.seed ?? undefined,
    stop,
    logprobs: body.logprobs ?? null,
    echo: body.echo ?? false,
    ignoreEos: body.ignore_eos ?? false,
    deadline,
    signal: signals[p]!,
  }));
}

/** One signal per prompt that aborts with `signal`, which then has one listener however many prompts there are. */
function splitSignal(signal: AbortSignal, count: number): AbortSignal[] {
  const controllers = Array.from({ length: count }, () => new AbortController());
  const abortAll = () => {
    for (const controller of controllers) controller.abort();
  };
  if (signal.aborted) abortAll();
  else signal.addEventListener('abort', abortAll, { once: true });
  return controllers.map((c) => c.signal);
}

/**
 * Queues one generation per prompt. Throws 400/429 before anything is sent; on a 429 for the
 * k-th prompt the earlier ones are cancelled.
 */
function submit(body: CompletionRequest, model: ServedModel, limits: CompletionLimits, metrics: Metrics, abort: AbortController): Channel<GenerationEvent>[] {
  const requests = buildRequests(body, model, limits, abort.signal);
  const streams: Channel<GenerationEvent>[] = [];
  try {
    for (const request of requests) streams.push(model.scheduler.submit(request));
    metrics.promptTokens.inc({ model: model.id }, requests.reduce((sum, r) => sum + r.prompt.length, 0));
  } catch (error) {
    abort.abort();
    const apiError = toApiError(error);
    const paramOf: Partial<Record<string, string>> = { context_length_exceeded: 'prompt', empty_prompt: 'prompt', n_too_large: 'n', echo_unsupported: 'echo' };
    const param = paramOf[apiError.code];
    if (param) throw new ApiError(400, apiError.code, apiError.message, { param });
    throw apiError;
  }
  return streams;
}

/** An event and the prompt it belongs to (the first when left out). */
type IndexedEvent = GenerationEvent & { prompt?: number };

/** The events of all prompts of one request, in the order they happen: one prompt's own channel, or several merged. */
function eventsOf(streams: Channel<GenerationEvent>[], abort: AbortController): Channel<IndexedEvent> {
  if (streams.length === 1) return streams[0]!;
  const out = new Channel<IndexedEvent>(() => abort.abort());
  let open = streams.length;
  streams.forEach(async (stream, prompt) => {
    try {
      for await (const event of stream) out.push({ ...event, prompt });
      if (--open === 0) out.close();
    } catch (error) {
      abort.abort();
      out.close(error);
    }
  });
  return out;
}

interface OpenAILogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

function toOpenAILogprobs(entries: readonly TokenLogprob[]): OpenAILogprobs {
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => e.top),
    text_offset: entries.map((e) => e.offset),
  };
}

/** Times a request's tokens and counts them into the metrics as they pass, so that a request cut short counts what it generated. */
function observe(metrics: Metrics, model: string, started: number) {
  let firstToken = true;
  const lastTokenAt = new Map<number, number>();
  const interToken = metrics.interToken.labels({ model });
  const completionTokens = metrics.completionTokens.labels({ model });
  return (event: IndexedEvent, n: number) => {
    if (event.type === 'text' && event.tokens > 0) {
      completionTokens.inc(event.tokens);
      const now = performance.now();
      if (firstToken) metrics.timeToFirstToken.observe({ model }, (now - started) / 1000);
      firstToken = false;
      const index = (event.prompt ?? 0) * n + event.index;
      const last = lastTokenAt.get(index);
      if (last !== undefined) interToken.observe((now - last) / 1000);
      lastTokenAt.set(index, now);
    }
  };
}

export async function completeJson(body: CompletionRequest, model: ServedModel, limits: CompletionLimits, metrics: Metrics, signal: AbortSignal) {
  const started = performance.now();
  const abort = new AbortController();
  signal.addEventListener('abort', () => abort.abort(), { once: true });
  const streams = submit(body, model, limits, metrics, abort);
  const n = body.n ?? 1;
  const record = observe(metrics, model.id, started);
  const choices = Array.from({ length: streams.length * n }, (_, index) => ({
    index, text: '', logprobs: [] as TokenLogprob[], finish_reason: null as string | null,
  }));
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  for await (const event of eventsOf(streams, abort)) {
    record(event, n);
    if (event.type === 'usage') {
      usage.prompt_tokens += event.promptTokens;
      usage.completion_tokens += event.completionTokens;
      continue;
    }
    const choice = choices[(event.prompt ?? 0) * n + event.index]!;
    if (event.type === 'text') {
      choice.text += event.text;
      choice.logprobs.push(...event.logprobs);
    } else {
      choice.finish_reason = event.reason;
    }
  }
  if (signal.aborted) throw clientClosed();
  metrics.requestDuration.observe({ model: model.id }, (performance.now() - started) / 1000);
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return {
    id: `cmpl-${crypto.randomUUID().replaceAll('-', '')}`,
    object: 'text_completion' as const,
    created: Math.floor(Date.now() / 1000),
    model: model.id,
    choices: choices.map((c) => ({ ...c, logprobs: body.logprobs == null ? null : toOpenAILogprobs(c.logprobs) })),
    usage,
  };
}

/**
 * A streamed completion as server-sent events, for a transport to write: a web ReadableStream
 * (sse.ts) anywhere, Node's response directly under `ferry serve` (node-sse.ts).
 */
export interface EventFrames {
  /**
   * The frames of every event ready now, as one string so that one write carries them; waits for
   * at least one. The last holds `data: [DONE]`; after it, undefined.
   */
  next(): Promise<string | undefined>;
  /** The client is gone: stops the generation. Nothing once the stream has ended. */
  cancel(): void;
}

const DONE = 'data: [DONE]\n\n';

const frame = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;

/**
 * Server-sent events as OpenAI streams them: one `data:` chunk per piece of text, a chunk with
 * each choice's finish_reason, the usage chunk when asked for, then `data: [DONE]`. Errors after
 * the first byte become one error chunk followed by `[DONE]`. Cancelling (client gone) cancels
 * the generation.
 */
export function completeStream(body: CompletionRequest, model: ServedModel, limits: CompletionLimits, metrics: Metrics, signal: AbortSignal, onEnd: (status: number) => void = () => {}): EventFrames {
  const started = performance.now();
  const abort = new AbortController();
  signal.addEventListener('abort', () => abort.abort(), { once: true });
  const streams = submit(body, model, limits, metrics, abort);
  const n = body.n ?? 1;
  const includeUsage = body.stream_options?.include_usage === true;
  const wantLogprobs = body.logprobs != null;
  const record = observe(metrics, model.id, started);
  const id = `cmpl-${crypto.randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const source = eventsOf(streams, abort);
  const events = source[Symbol.asyncIterator]();
  // Every chunk has the same envelope around its one choice, so that is serialised once.
  const envelope = frame({ id, object: 'text_completion', created, model: model.id, choices: [0], ...(includeUsage ? { usage: null } : {}) });
  const slot = envelope.indexOf('"choices":[0]') + '"choices":['.length;
  const [head, tail] = [envelope.slice(0, slot), envelope.slice(slot + 1)];
  const chunk = (choice: object) => head + JSON.stringify(choice) + tail;
  let ended = false;

  /** The frame an event sends, if any. */
  function frameOf(event: IndexedEvent): string {
    record(event, n);
    if (event.type === 'usage') {
      usage.prompt_tokens += event.promptTokens;
      usage.completion_tokens += event.completionTokens;
      return '';
    }
    const index = (event.prompt ?? 0) * n + event.index;
    if (event.type === 'finish') return chunk({ index, text: '', logprobs: null, finish_reason: event.reason });
    if (!event.text && !event.logprobs.length) return '';
    return chunk({ index, text: event.text, logprobs: wantLogprobs ? toOpenAILogprobs(event.logprobs) : null, finish_reason: null });
  }

  function end(): string {
    ended = true;
    onEnd(200);
    metrics.requestDuration.observe({ model: model.id }, (performance.now() - started) / 1000);
    if (!includeUsage) return DONE;
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    return frame({ id, object: 'text_completion', created, model: model.id, choices: [], usage }) + DONE;
  }

  return {
    async next() {
      let frames = '';
      try {
        while (!ended && !frames) {
          const next = await events.next();
          if (ended) return undefined;
          if (next.done) return end();
          frames += frameOf(next.value);
          for (let ready = source.take(); ready; ready = source.take()) frames += frameOf(ready);
          if (source.drained) return frames + end();
        }
      } catch (error) {
        ended = true;
        const apiError = toApiError(error);
        onEnd(apiError.status);
        return frames + frame(apiError.body) + DONE;
      }
      return frames || undefined;
    },
    cancel() {
      if (ended) return;
      ended = true;
      onEnd(clientClosed().status);
      abort.abort();
      void events.return?.();
    },
  };
}
