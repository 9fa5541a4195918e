import { FerryError } from '../errors.ts';
import { Channel } from './channel.ts';
import type { Decoder, SequenceState } from '../package/decoder.ts';
import { countTokens, createRandom, logSoftmax, sampleToken, topLogprobs, type Random, type SamplingParams, type TokenCounts } from './sampling.ts';
import { TextAssembler, Utf8Stream, type TokenLogprob } from './text.ts';

export interface GenerationRequest {
  /** Prompt token ids (at least one). */
  prompt: readonly number[];
  /** Shown as the start of each choice's text when `echo` is set. */
  promptText: string;
  n: number;
  maxTokens: number;
  sampling: SamplingParams;
  /** Same seed, same output; without one each request draws its own. */
  seed?: number;
  stop: readonly string[];
  /** How many alternatives per token (0-5); null for no logprobs at all. */
  logprobs: number | null;
  echo: boolean;
  /** Keep going past the end-of-text token (benchmarks). */
  ignoreEos?: boolean;
  /** Milliseconds since the epoch after which the request fails with 504. */
  deadline?: number;
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

export type GenerationEvent =
  | { type: 'text'; index: number; text: string; logprobs: TokenLogprob[]; tokens: number }
  | { type: 'finish'; index: number; reason: FinishReason }
  | { type: 'usage'; promptTokens: number; completionTokens: number };

export interface Tokens {
  readonly eosId: number | undefined;
  tokenBytes(id: number): Uint8Array;
  decode(ids: readonly number[]): string;
}

export interface SchedulerOptions {
  /** Most sequences decoded together (and admitted at once). */
  maxBatch: number;
  /** Most requests waiting for a slot; one more is refused with 429. */
  maxQueue: number;
  /**
   * Longest prompt, in tokens, prefilled in one run; a longer one enters in parts of this many,
   * one part between two decode steps, so that running streams keep streaming meanwhile.
   * Default DEFAULT_PREFILL_CHUNK.
   */
  prefillChunk?: number;
}

/** Tokens per prefill part (--prefill-chunk): bench/prefill-gap.ts measures the gap it leaves running streams. */
export const DEFAULT_PREFILL_CHUNK = 256;

export interface Scheduler {
  /** Queues a request, or throws a 429 FerryError at once when the queue is full. */
  submit(request: GenerationRequest): Channel<GenerationEvent>;
  readonly active: number;
  readonly queued: number;
  /** Resolves when nothing is running or queued. */
  idle(): Promise<void>;
  /** Calls `listener` after every decode step with the number of sequences it ran. */
  onStep(listener: (batchSize: number) => void): void;
  /** The most requests of `n` choices each that an idle scheduler takes at once (running and waiting). */
  capacity(n: number): number;
}

interface Job {
  request: GenerationRequest;
  channel: Channel<GenerationEvent>;
  cancelled: boolean;
  remaining: number;
  completionTokens: number;
}

/** A long prompt entering in parts: `state` holds the `done` tokens fed so far. */
interface Chunked {
  job: Job;
  state: SequenceState | null;
  done: number;
  /** Each part's logits, kept only to score an echoed prompt. */
  parts: Float32Array[];
}

interface Sequence {
  job: Job;
  index: number;
  state: SequenceState;
  logits: Float32Array;
  counts: TokenCounts;
  random: Random;
  text: TextAssembler;
  generated: number;
  lastToken?: number;
}

// setImmediate where it exists (Node: no 1 ms timer floor), a zero timeout in browsers and workers.
export const yieldToIo = (): Promise<void> => new Promise((resolve) => (globalThis.setImmediate ?? setTimeout)(resolve));

/** The token's logprob and the `alternatives` likeliest, plus the token itself when it is not among them (as OpenAI lists it). */
export function tokenLogprob(tokens: Tokens, logits: Float32Array, token: number, alternatives: number): Omit<TokenLogprob, 'offset'> {
  const logprobs = logSoftmax(logits);
  const top = alternatives > 0 ? topLogprobs(logprobs, alternatives) : [];
  if (top.length && !top.some((t) => t.id === token)) top.push({ id: token, logprob: logprobs[token]! });
  return {
    token: tokens.decode([token]),
    logprob: logprobs[token]!,
    top: top.length ? Object.fromEntries(top.map((t) => [tokens.decode([t.id]), t.logprob])) : null,
  };
}

export function checkRequestDeadline(request: GenerationRequest): void {
  if (request.deadline !== undefined && Date.now() > request.deadline) {
    throw new FerryError('deadline_exceeded', 'the request ran past its deadline', {
      hint: 'ask for fewer tokens, or raise the server\'s --timeout',
      status: 504,
    });
  }
}

/**
 * Continuous batching for one model. Each turn of the loop admits waiting requests (short
 * prompts prefilled together, then one part of the oldest long prompt), samples one token for
 * every active sequence, then advances all of them with one batched decoder step. Requests join
 * and leave between steps.
 */
export function createScheduler(decoder: Decoder, tokens: Tokens, options: SchedulerOptions): Scheduler {
  const chunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  const queue: Job[] = [];
  let sequences: Sequence[] = [];
  /** Long prompts being fed part by part, oldest first; their slots count in `admitting`. */
  const chunking: Chunked[] = [];
  // Slots of requests taken off the queue whose prompts are being prefilled: neither waiting nor in the batch yet.
  let admitting = 0;
  let running: Promise<void> | undefined;
  const stepListeners = new Set<(batchSize: number) => void>();

  function submit(request: GenerationRequest): Channel<GenerationEvent> {
    if (request.n > options.maxBatch) {
      throw new FerryError('n_too_large', `n=${request.n} exceeds this server's batch size of ${options.maxBatch}`, { status: 400 });
    }
    if (request.prompt.length === 0) {
      throw new FerryError('empty_prompt', 'the prompt is empty and this model has no <|endoftext|> token to start from', { status: 400 });
    }
    // Scoring a prompt (echo, max_tokens 0) generates nothing, so it may fill the whole context.
    const room = request.maxTokens === 0 ? decoder.contextLength : decoder.contextLength === null ? null : decoder.contextLength - 1;
    if (room !== null && request.prompt.length > room) {
      throw new FerryError('context_length_exceeded', `the prompt is ${request.prompt.length} tokens; this model's context holds ${decoder.contextLength}, including at least one generated token unless max_tokens is 0`, {
        hint: 'shorten the prompt',
        status: 400,
      });
    }
    if (mustWait(request.n) && waiting() >= options.maxQueue) {
      throw new FerryError('queue_full', `the server is busy: ${waiting()} requests are already waiting for this model`, {
        hint: 'retry after a second',
        status: 429,
      });
    }
    const job: Job = {
      request,
      cancelled: false,
      remaining: request.n,
      completionTokens: 0,
      channel: new Channel<GenerationEvent>(() => cancel(job)),
    };
    if (request.signal?.aborted) {
      job.cancelled = true;
      job.channel.close();
      return job.channel;
    }
    request.signal?.addEventListener('abort', () => cancel(job), { once: true });
    queue.push(job);
    running ??= loop().finally(() => (running = undefined));
    return job.channel;
  }

  /** Queued requests that will not fit into the next step's free slots. */
  function waiting(): number {
    let free = freeSlots();
    let count = 0;
    for (const job of queue) {
      if (count === 0 && job.request.n <= free) free -= job.request.n;
      else count++;
    }
    return count;
  }

  function freeSlots(): number {
    return options.maxBatch - sequences.length - admitting;
  }

  /** Whether a new request of n choices would wait, rather than join the next admission. */
  function mustWait(n: number): boolean {
    return n > freeSlots() - queue.reduce((sum, job) => sum + job.request.n, 0);
  }

  function cancel(job: Job): void {
    if (job.cancelled) return;
    job.cancelled = true;
    const waiting = queue.indexOf(job);
    if (waiting >= 0) queue.splice(waiting, 1);
    job.channel.close();
  }

  async function loop(): Promise<void> {
    // Requests that arrive in the same tick share the first prefill.
    await yieldToIo();
    while (queue.length || sequences.length || chunking.length) {
      expireWaiting();
      // New prompts before parts: a prefill may drop what an earlier last part left unstepped.
      await admit();
      await feedPart();
      sampleAll();
      const batch = sequences;
      if (!batch.length) continue;
      try {
        const stepped = decoder.step(batch.map((s) => ({ state: s.state, token: s.lastToken! })));
        // Let the HTTP side read, write and notice disconnects while the step runs (in a worker
        // thread) or right before it (a runtime on this thread), never between a step and the next.
        stepped.catch(() => {});
        await yieldToIo();
        const { logits, states } = await stepped;
        for (const listener of stepListeners) listener(batch.length);
        batch.forEach((s, b) => {
          s.state = states[b]!;
          s.logits = logits.subarray(b * decoder.vocabSize, (b + 1) * decoder.vocabSize);
        });
      } catch (error) {
        for (const s of batch) fail(s.job, error);
      }
    }
  }

  /** Fails queued requests whose deadline passed while they waited for a slot. */
  function expireWaiting(): void {
    for (const job of [...queue]) {
      try {
        checkDeadline(job);
      } catch (error) {
        queue.splice(queue.indexOf(job), 1);
        fail(job, error);
      }
    }
  }

  /** Moves waiting requests into the batch while slots last, prefilling their prompts together. */
  async function admit(): Promise<void> {
    const admitted: Job[] = [];
    let slots = freeSlots();
    while (queue.length && queue[0]!.request.n <= slots) {
      const job = queue.shift()!;
      slots -= job.request.n;
      try {
        checkDeadline(job);
        admitted.push(job);
      } catch (error) {
        fail(job, error);
      }
    }
    for (const job of admitted.filter((job) => job.request.prompt.length > chunk)) {
      chunking.push({ job, state: null, done: 0, parts: [] });
      admitting += job.request.n;
    }
    const whole = admitted.filter((job) => job.request.prompt.length <= chunk);
    if (!whole.length) return;
    const reserved = whole.reduce((sum, job) => sum + job.request.n, 0);
    admitting += reserved;
    let prefilled: { logits: Float32Array; state: SequenceState }[];
    try {
      prefilled = await decoder.prefill(whole.map((job) => job.request.prompt));
    } catch (error) {
      for (const job of whole) fail(job, error);
      return;
    } finally {
      admitting -= reserved;
    }
    whole.forEach((job, i) => {
      if (!job.cancelled) join(job, prefilled[i]!.logits, prefilled[i]!.state);
    });
  }

  /** Feeds the next part of the oldest long prompt; after its last, its choices join the batch. */
  async function feedPart(): Promise<void> {
    const entry = chunking[0];
    if (!entry) return;
    const { job } = entry;
    const { prompt } = job.request;
    const leave = () => {
      chunking.shift();
      admitting -= job.request.n;
      if (entry.state) decoder.release(entry.state);
    };
    if (job.cancelled) return leave();
    const last = entry.done + chunk >= prompt.length;
    const part = prompt.slice(entry.done, entry.done + chunk);
    let fed: { logits: Float32Array; state: SequenceState };
    try {
      checkDeadline(job);
      fed = await decoder.extend(entry.state, part, last);
    } catch (error) {
      leave();
      fail(job, error);
      return;
    }
    entry.state = fed.state;
    entry.done += part.length;
    if (job.request.echo && job.request.logprobs !== null) entry.parts.push(fed.logits);
    if (!last) return;
    // The last part's state lives like a prefill's: the step of this turn takes it.
    entry.state = null;
    leave();
    if (!job.cancelled) join(job, entry.parts.length ? concat(entry.parts) : fed.logits, fed.state);
  }

  /**
   * Puts a prefilled request's choices into the batch. `logits` holds a row per prompt token up
   * to the last: all of them to score an echoed prompt with logprobs, else at least the last.
   */
  function join(job: Job, logits: Float32Array, state: SequenceState): void {
    const { request } = job;
    const vocab = decoder.vocabSize;
    const rows = logits.length / vocab;
    const last = logits.slice((rows - 1) * vocab, rows * vocab);
    const echoed = request.echo ? echoLogprobs(request, logits, vocab) : [];
    const seed = request.seed ?? Math.floor(Math.random() * 2 ** 32);
    for (let index = 0; index < request.n; index++) {
      const text = new TextAssembler(tokens, request.stop, request.echo ? request.promptText.length : 0);
      if (request.echo) job.channel.push({ type: 'text', index, text: request.promptText, logprobs: echoed, tokens: 0 });
      sequences.push({
        job, index, state, logits: last, text, generated: 0,
        counts: countTokens(request.prompt),
        random: createRandom(seed + index * 0x9e3779b9),
      });
    }
  }

  function concat(parts: readonly Float32Array[]): Float32Array {
    const all = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    return all;
  }

  function sampleAll(): void {
    const next: Sequence[] = [];
    for (const s of sequences) {
      const { job } = s;
      if (job.cancelled) continue;
      try {
        checkDeadline(job);
      } catch (error) {
        fail(job, error);
        continue;
      }
      const reason = advance(s);
      if (reason) finish(s, reason);
      else next.push(s);
    }
    sequences = next.filter((s) => !s.job.cancelled);
  }

  /** Samples and emits one token; returns why the sequence ends, if it does. */
  function advance(s: Sequence): FinishReason | undefined {
    const { request } = s.job;
    if (s.generated >= request.maxTokens) return 'length';
    const token = sampleToken(s.logits, request.sampling, s.counts, s.random);
    if (token === tokens.eosId && !request.ignoreEos) return 'stop';
    s.generated++;
    s.job.completionTokens++;
    s.counts.set(token, (s.counts.get(token) ?? 0) + 1);
    const entry = request.logprobs === null ? undefined : logprobEntry(s.logits, token, request.logprobs);
    const delta = s.text.push(token, entry);
    s.job.channel.push({ type: 'text', index: s.index, text: delta.text, logprobs: delta.logprobs, tokens: 1 });
    if (s.text.stopped) return 'stop';
    if (s.generated >= request.maxTokens) return 'length';
    if (decoder.contextLength !== null && !decoder.slides && s.state.length + 1 >= decoder.contextLength) return 'length';
    s.lastToken = token;
    return undefined;
  }

  function logprobEntry(logits: Float32Array, token: number, alternatives: number): Omit<TokenLogprob, 'offset'> {
    return tokenLogprob(tokens, logits, token, alternatives);
  }

  function echoLogprobs(request: GenerationRequest, logits: Float32Array, vocab: number): TokenLogprob[] {
    if (request.logprobs === null) return [];
    const entries: TokenLogprob[] = [];
    // Offsets index the echoed text in UTF-16 units, as JavaScript reads it: the characters
    // decoded before each token, so every token of a character split over several starts where it does.
    const utf8 = new Utf8Stream();
    let offset = 0;
    request.prompt.forEach((id, i) => {
      const at = Math.min(offset, request.promptText.length);
      if (i === 0) {
        entries.push({ token: tokens.decode([id]), logprob: null, top: null, offset: at });
      } else {
        const entry = logprobEntry(logits.subarray((i - 1) * vocab, i * vocab), id, request.logprobs!);
        entries.push({ ...entry, offset: at });
      }
      offset += utf8.push(tokens.tokenBytes(id)).length;
    });
    return entries;
  }

  function finish(s: Sequence, reason: FinishReason): void {
    const tail = s.text.end();
    if (tail.text || tail.logprobs.length) s.job.channel.push({ type: 'text', index: s.index, text: tail.text, logprobs: tail.logprobs, tokens: 0 });
    s.job.channel.push({ type: 'finish', index: s.index, reason: s.text.stopped ? 'stop' : reason });
    if (--s.job.remaining === 0) {
      s.job.channel.push({ type: 'usage', promptTokens: s.job.request.prompt.length, completionTokens: s.job.completionTokens });
      s.job.channel.close();
    }
  }

  function fail(job: Job, error: unknown): void {
    if (job.cancelled) return;
    job.cancelled = true;
    job.channel.close(error);
  }

  function checkDeadline(job: Job): void {
    checkRequestDeadline(job.request);
  }

  return {
    submit,
    get active() {
      return sequences.filter((s) => !s.job.cancelled).length;
    },
    get queued() {
      return queue.length;
    },
    async idle() {
      while (running) await running;
    },
    onStep(listener) {
      stepListeners.add(listener);
    },
    capacity(n) {
      return n > options.maxBatch ? 0 : Math.floor(options.maxBatch / n) + options.maxQueue;
    },
  };
}
