/**
 * How many threads share a run's steps. Data parallelism pays where a step's arithmetic outweighs
 * what every thread repeats (one kernel launch per op, whatever its rows) plus the exchange of
 * weights and gradients: nanogpt-cpu and lstm-char steps, not a test-sized model's. And only on
 * idle cores: on a shared 2-core machine 2 threads made steps 1.4-1.8x faster while the other
 * processes left both cores free, and 0.7-0.95x as fast while they kept one busy. So auto looks at
 * how busy the cores are right before training starts (the load average lags by a minute).
 */
import { availableParallelism, cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../errors.ts';

/** Backends whose work worker threads can share: their kernels run on the calling thread. */
const SHARABLE_BACKENDS: readonly string[] = ['wasm', 'cpu'];

/** Below this many FLOPs per step (about 6 x parameters x tokens), auto stays on one thread. */
export const MIN_PARALLEL_FLOPS = 1e9;

/** Auto's second thread needs this many idle cores (ferry's own main thread is idle while measuring). */
const IDLE_CORES_FOR_TWO = 1.5;

/** Refuses a thread count that is not a whole number above 0 (undefined means auto). */
export function checkThreads(requested: number | undefined): void {
  if (requested !== undefined && !(Number.isInteger(requested) && requested > 0)) {
    throw new FerryError('invalid_option', `threads must be a whole number above 0, got ${requested}.`, {
      hint: 'Pass --threads 1 for one thread, or leave it out to let ferry choose.',
    });
  }
}

/** The most shards a batch is split into: the threads a run can use (auto takes at most 2). */
export const MAX_SHARDS = 2;

/**
 * How many shards every batch of a run is split into. It fixes the run's numbers, so it depends
 * on the model and batch alone, never on the machine or its load: steps too small to gain from
 * threads stay whole (one shard is the whole-batch step, the fastest on one thread); bigger ones
 * are split in MAX_SHARDS, so that 1 or 2 threads train byte-identically.
 */
export function planShards(flopsPerStep: number, batchSize: number): number {
  return flopsPerStep < MIN_PARALLEL_FLOPS ? 1 : Math.max(1, Math.min(batchSize, MAX_SHARDS));
}

export interface ThreadPlan {
  threads: number;
  /** One line for the log when the choice needs explaining. */
  note?: string;
}

export interface ThreadRequest {
  /** --threads; undefined = auto. */
  requested: number | undefined;
  backend: string;
  flopsPerStep: number;
  /** Shards per step: more threads than shards would have nothing to do. */
  shards: number;
  cores?: number;
  /** How many cores other processes leave idle; measured when auto needs it. */
  idleCores?: () => Promise<number>;
}

/**
 * The thread count of a run: `requested` where the backend can share work, else 1; auto takes 2
 * threads on wasm for steps of at least MIN_PARALLEL_FLOPS when 2 cores are idle. Never more
 * threads than shards.
 */
export async function planThreads(request: ThreadRequest): Promise<ThreadPlan> {
  const { requested, backend, flopsPerStep, shards, cores = availableParallelism(), idleCores = measureIdleCores } = request;
  checkThreads(requested);
  if (!SHARABLE_BACKENDS.includes(backend)) {
    return requested !== undefined && requested > 1
      ? { threads: 1, note: `note: --threads applies to the wasm and cpu backends; ${backend} runs its own threads` }
      : { threads: 1 };
  }
  if (requested === undefined) {
    if (backend !== 'wasm' || flopsPerStep < MIN_PARALLEL_FLOPS || Math.min(2, cores, shards) < 2) return { threads: 1 };
    const idle = await idleCores();
    if (idle < IDLE_CORES_FOR_TWO) {
      return { threads: 1, note: `threads: 1, as other processes keep the cores busy (${idle.toFixed(1)} of ${cores} idle; --threads 2 to share anyway)` };
    }
    return { threads: 2, note: 'threads: 2, each computing part of every batch (--threads 1 for one)' };
  }
  const threads = Math.min(requested, shards);
  if (threads < requested) {
    return { threads, note: `note: ${threads} thread${threads === 1 ? '' : 's'}: this run splits each batch into ${shards} shard${shards === 1 ? '' : 's'}, one per thread at most` };
  }
  if (threads > cores) return { threads, note: `note: --threads ${threads} on ${cores} cores: the threads take turns, which is slower` };
  return threads > 1 ? { threads, note: `threads: ${threads}, each computing part of every batch` } : { threads };
}

/** Cores left idle over the next `ms` milliseconds, from the system's per-core time counters. */
export async function measureIdleCores(ms = 300): Promise<number> {
  const totals = () => cpus().reduce((sum, cpu) => ({
    idle: sum.idle + cpu.times.idle,
    all: sum.all + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.idle + cpu.times.irq,
  }), { idle: 0, all: 0 });
  const before = totals();
  await sleep(ms);
  const after = totals();
  const all = after.all - before.all;
  return all > 0 ? (cpus().length * (after.idle - before.idle)) / all : cpus().length;
}
