/**
 * Dynamic batching as Triton does it: requests for one session wait up to `delayMs` for others
 * whose inputs agree in every dim but the first (the batch dim), and up to `maxBatch` rows run as
 * one `session.run`, the outputs split back by rows. One run at a time per session: requests that
 * arrive meanwhile form the next batch. A full queue refuses with 429, a deadline ends in 504.
 */
import type { NamedTensors, Session } from '../../package/session.ts';
import { concatFirstAxis, sliceFirstAxis } from './arrays.ts';
import { protocolError } from './errors.ts';

export interface BatcherOptions {
  /** Most rows (sum of the requests' batch dims) in one run. */
  maxBatch: number;
  /** Most requests waiting; one more gets 429. */
  maxQueue: number;
  /** Longest a request waits for others to join its batch. */
  delayMs: number;
  /** Longest a request may take, queue and run, before it gets 504. */
  timeoutMs: number;
  /** Whether requests may share a run at all (the model has a batch dim in every input and output). */
  batchable: boolean;
}

/** One model run: how many rows and requests it held, how long each waited, how long it ran. */
export interface RunRecord {
  rows: number;
  requests: number;
  queueSeconds: number[];
  runSeconds: number;
}

export interface Batcher {
  run(feeds: NamedTensors, fetch: readonly string[], signal?: AbortSignal): Promise<NamedTensors>;
  /** Requests waiting for a run. */
  readonly queued: number;
  /** Calls `listener` after every run that succeeded. */
  onRun(listener: (run: RunRecord) => void): void;
}

interface Pending {
  feeds: NamedTensors;
  fetch: readonly string[];
  rows: number;
  key: string;
  enqueuedAt: number;
  resolve: (outputs: NamedTensors) => void;
  reject: (error: unknown) => void;
  /** Set once the request has left the queue or failed, so it is answered only once. */
  settled: boolean;
  cleanup: () => void;
}

let soloKeys = 0;

export function createBatcher(session: Session, options: BatcherOptions): Batcher {
  const queue: Pending[] = [];
  let running = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const listeners: ((run: RunRecord) => void)[] = [];

  function run(feeds: NamedTensors, fetch: readonly string[], signal?: AbortSignal): Promise<NamedTensors> {
    if (queue.length >= options.maxQueue) {
      return Promise.reject(protocolError(429, `the model's queue is full (${options.maxQueue} requests waiting); retry shortly`, { 'Retry-After': '1' }));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        feeds, fetch, rows: rowsOf(feeds), key: options.batchable ? batchKey(feeds) : `solo:${soloKeys++}`,
        enqueuedAt: performance.now(), resolve, reject, settled: false, cleanup: () => {},
      };
      const fail = (error: unknown) => {
        if (pending.settled) return;
        pending.settled = true;
        pending.cleanup();
        const at = queue.indexOf(pending);
        if (at >= 0) queue.splice(at, 1);
        reject(error);
      };
      const deadline = setTimeout(() => fail(protocolError(504, `the request took longer than ${options.timeoutMs} ms (queue and run)`)), options.timeoutMs);
      const onAbort = () => fail(protocolError(400, 'the client cancelled the request'));
      signal?.addEventListener('abort', onAbort, { once: true });
      pending.cleanup = () => {
        clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
      };
      queue.push(pending);
      schedule();
    });
  }

  function schedule(): void {
    if (running || !queue.length) return;
    const head = queue[0]!;
    const waited = performance.now() - head.enqueuedAt;
    if (waited >= options.delayMs || rowsJoining(head) >= options.maxBatch) {
      dispatch();
    } else if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined;
        schedule();
      }, options.delayMs - waited);
    }
  }

  function rowsJoining(head: Pending): number {
    let rows = 0;
    for (const p of queue) if (p.key === head.key) rows += p.rows;
    return rows;
  }

  function takeBatch(): Pending[] {
    const head = queue[0]!;
    const batch: Pending[] = [];
    let rows = 0;
    for (let i = 0; i < queue.length;) {
      const p = queue[i]!;
      if (p.key === head.key && (batch.length === 0 || rows + p.rows <= options.maxBatch)) {
        batch.push(p);
        rows += p.rows;
        queue.splice(i, 1);
      } else {
        i++;
      }
    }
    return batch;
  }

  function dispatch(): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    const batch = takeBatch();
    running = true;
    void runBatch(batch).finally(() => {
      running = false;
      schedule();
    });
  }

  async function runBatch(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const queueSeconds = batch.map((p) => (started - p.enqueuedAt) / 1000);
    try {
      const outputs = await runTogether(batch);
      const record = { rows: batch.reduce((n, p) => n + p.rows, 0), requests: batch.length, queueSeconds, runSeconds: (performance.now() - started) / 1000 };
      for (const listener of listeners) listener(record);
      batch.forEach((p, i) => settle(p, outputs[i]!));
    } catch (error) {
      if (batch.length === 1) return fail(batch[0]!, error);
      // One request's values can fail a run (an index out of range): each runs alone, so only it fails.
      for (const p of batch) {
        if (p.settled) continue;
        try {
          settle(p, (await runTogether([p]))[0]!);
        } catch (alone) {
          fail(p, alone);
        }
      }
    }
  }

  async function runTogether(batch: Pending[]): Promise<NamedTensors[]> {
    const live = batch.filter((p) => !p.settled);
    if (!live.length) return batch.map(() => ({}));
    const fetch = [...new Set(live.flatMap((p) => p.fetch))];
    const feeds = live.length === 1 ? live[0]!.feeds : Object.fromEntries(Object.keys(live[0]!.feeds).map((name) => [name, concatFirstAxis(live.map((p) => p.feeds[name]!))]));
    const outputs = await session.run(feeds, { fetch, giveUpFeeds: true });
    let offset = 0;
    const split = new Map<Pending, NamedTensors>();
    for (const p of live) {
      split.set(p, live.length === 1 ? outputs : Object.fromEntries(p.fetch.map((name) => [name, sliceFirstAxis(outputs[name]!, offset, p.rows)])));
      offset += p.rows;
    }
    return batch.map((p) => split.get(p) ?? {});
  }

  function settle(p: Pending, outputs: NamedTensors): void {
    if (p.settled) return;
    p.settled = true;
    p.cleanup();
    p.resolve(outputs);
  }

  function fail(p: Pending, error: unknown): void {
    if (p.settled) return;
    p.settled = true;
    p.cleanup();
    p.reject(error);
  }

  return {
    run,
    get queued() {
      return queue.length;
    },
    onRun: (listener) => void listeners.push(listener),
  };
}

function rowsOf(feeds: NamedTensors): number {
  return Object.values(feeds)[0]?.dims[0] ?? 1;
}

/** Requests batch together when every input agrees in dtype and in every dim but the first. */
function batchKey(feeds: NamedTensors): string {
  return Object.keys(feeds).sort().map((name) => `${name}:${feeds[name]!.dtype}:${feeds[name]!.dims.slice(1).join('x')}`).join('|');
}
