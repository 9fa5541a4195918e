/**
 * The lane of an encoder-decoder (T5): each turn takes the waiting requests that fit, encodes
 * their sources in one encoder run, then steps every row (one per choice) together with the
 * seq2seq decoder until all of them have ended. Requests that arrive meanwhile wait for the
 * next turn: the decoder's rows start together, so a batch cannot take a new row mid-way.
 * Sampling, stop strings, logprobs and the events are the language-model scheduler's.
 */
import { FerryError } from '../errors.ts';
import { Channel } from './channel.ts';
import type { Seq2SeqDecoder } from '../package/seq2seq.ts';
import { createRandom, sampleToken, type Random, type TokenCounts } from './sampling.ts';
import { checkRequestDeadline, tokenLogprob, yieldToIo, type FinishReason, type GenerationEvent, type GenerationRequest, type Scheduler, type Tokens } from './scheduler.ts';
import { TextAssembler } from './text.ts';

export interface Seq2SeqSchedulerOptions {
  /** Most rows (choices) decoded together. */
  maxBatch: number;
  /** Most requests waiting for the next turn; one more is refused with 429. */
  maxQueue: number;
  /** Longest source in tokens, the appended eos included. */
  maxSourceLength: number;
}

interface Job {
  request: GenerationRequest;
  /** The prompt's ids without a trailing eos, then eos: T5's source. */
  source: number[];
  channel: Channel<GenerationEvent>;
  cancelled: boolean;
  remaining: number;
  completionTokens: number;
}

interface Row {
  job: Job;
  index: number;
  counts: TokenCounts;
  random: Random;
  text: TextAssembler;
  generated: number;
  done: boolean;
}

export function createSeq2SeqScheduler(decoder: Seq2SeqDecoder, tokens: Tokens, options: Seq2SeqSchedulerOptions): Scheduler {
  const { spec } = decoder;
  const queue: Job[] = [];
  let rows: Row[] = [];
  let running: Promise<void> | undefined;
  const stepListeners = new Set<(batchSize: number) => void>();

  function submit(request: GenerationRequest): Channel<GenerationEvent> {
    if (request.n > options.maxBatch) {
      throw new FerryError('n_too_large', `n=${request.n} exceeds this server's batch size of ${options.maxBatch}`, { status: 400 });
    }
    const ids = request.prompt.at(-1) === spec.eosId ? request.prompt.slice(0, -1) : [...request.prompt];
    if (ids.length === 0) {
      throw new FerryError('empty_prompt', 'the prompt is empty: a T5 model needs a source text to turn into its target', { hint: 'send the source text as the prompt', status: 400 });
    }
    if (ids.length + 1 > options.maxSourceLength) {
      throw new FerryError('context_length_exceeded', `the prompt is ${ids.length} tokens; this model's sources hold ${options.maxSourceLength - 1}, plus the eos ferry appends`, { hint: 'shorten the prompt', status: 400 });
    }
    if (request.echo) {
      throw new FerryError('echo_unsupported', 'echo: a T5 model\'s completion is a new text, not a continuation of the prompt', { hint: 'leave echo out', status: 400 });
    }
    if (queue.length >= options.maxQueue) {
      throw new FerryError('queue_full', `the server is busy: ${queue.length} requests are already waiting for this model`, { hint: 'retry after a second', status: 429 });
    }
    const job: Job = {
      request, source: [...ids, spec.eosId], cancelled: false, remaining: request.n, completionTokens: 0,
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

  function cancel(job: Job): void {
    if (job.cancelled) return;
    job.cancelled = true;
    const waiting = queue.indexOf(job);
    if (waiting >= 0) queue.splice(waiting, 1);
    job.channel.close();
  }

  async function loop(): Promise<void> {
    // Requests that arrive in the same tick share the first encoder run.
    await yieldToIo();
    while (queue.length) {
      const jobs = takeTurn();
      if (jobs.length) await decode(jobs);
    }
  }

  /** The waiting requests whose choices fit in one batch, oldest first; expired ones fail. */
  function takeTurn(): Job[] {
    const jobs: Job[] = [];
    let slots = options.maxBatch;
    while (queue.length && queue[0]!.request.n <= slots) {
      const job = queue.shift()!;
      try {
        checkRequestDeadline(job.request);
        jobs.push(job);
        slots -= job.request.n;
      } catch (error) {
        fail(job, error);
      }
    }
    return jobs;
  }

  async function decode(jobs: Job[]): Promise<void> {
    rows = jobs.flatMap((job) => {
      const seed = job.request.seed ?? Math.floor(Math.random() * 2 ** 32);
      return Array.from({ length: job.request.n }, (_, index): Row => ({
        job, index, counts: new Map(), random: createRandom(seed + index * 0x9e3779b9),
        text: new TextAssembler(tokens, job.request.stop), generated: 0, done: false,
      }));
    });
    try {
      let batch = await decoder.encode(rows.map((row) => row.job.source));
      let next = rows.map(() => spec.startId);
      while (rows.some(live)) {
        const stepped = decoder.step(batch, next);
        stepped.catch(() => {});
        // Let the HTTP side read, write and notice disconnects while the step runs.
        await yieldToIo();
        const step = await stepped;
        batch = step.batch;
        for (const listener of stepListeners) listener(rows.filter(live).length);
        next = rows.map((row, r) => (live(row) ? advance(row, step.logits.subarray(r * spec.vocabSize, (r + 1) * spec.vocabSize)) : spec.padId));
      }
    } catch (error) {
      for (const row of rows) fail(row.job, error);
    } finally {
      rows = [];
    }
  }

  function live(row: Row): boolean {
    return !row.done && !row.job.cancelled;
  }

  /** Samples and emits one token; returns the row's next input (pad once it has ended). */
  function advance(row: Row, logits: Float32Array): number {
    const { request } = row.job;
    try {
      checkRequestDeadline(request);
    } catch (error) {
      fail(row.job, error);
      return spec.padId;
    }
    if (row.generated >= request.maxTokens) return finish(row, 'length');
    const token = sampleToken(logits, request.sampling, row.counts, row.random);
    if (token === spec.eosId && !request.ignoreEos) return finish(row, 'stop');
    row.generated++;
    row.job.completionTokens++;
    row.counts.set(token, (row.counts.get(token) ?? 0) + 1);
    const entry = request.logprobs === null ? undefined : tokenLogprob(tokens, logits, token, request.logprobs);
    const delta = row.text.push(token, entry);
    row.job.channel.push({ type: 'text', index: row.index, text: delta.text, logprobs: delta.logprobs, tokens: 1 });
    if (row.text.stopped) return finish(row, 'stop');
    if (row.generated >= request.maxTokens) return finish(row, 'length');
    return token;
  }

  function finish(row: Row, reason: FinishReason): number {
    row.done = true;
    const { job } = row;
    const tail = row.text.end();
    if (tail.text || tail.logprobs.length) job.channel.push({ type: 'text', index: row.index, text: tail.text, logprobs: tail.logprobs, tokens: 0 });
    job.channel.push({ type: 'finish', index: row.index, reason: row.text.stopped ? 'stop' : reason });
    if (--job.remaining === 0) {
      job.channel.push({ type: 'usage', promptTokens: job.source.length, completionTokens: job.completionTokens });
      job.channel.close();
    }
    return spec.padId;
  }

  function fail(job: Job, error: unknown): void {
    if (job.cancelled) return;
    job.cancelled = true;
    job.channel.close(error);
  }

  return {
    submit,
    get active() {
      return rows.filter(live).length;
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
