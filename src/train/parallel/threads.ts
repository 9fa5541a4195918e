/**
 * How many threads share a run's steps. Data parallelism pays where a step's arithmetic outweighs
 * what every thread repeats (one kernel launch per op, whatever its rows) plus the exchange of
 * weights and gradients: nanogpt-cpu and lstm-char steps, not a test-sized model's. And only on an
 * idle core: a second thread on a core that other processes keep busy made steps slower, not
 * faster (measured on a shared 2-core machine), so auto looks at the load average as `make -l` does.
 */
import { availableParallelism, loadavg } from 'node:os';
import { FerryError } from '../../errors.ts';

/** Backends whose work worker threads can share: their kernels run on the calling thread. */
const SHARABLE_BACKENDS: readonly string[] = ['wasm', 'cpu'];

/** Below this many FLOPs per step (about 6 x parameters x tokens), auto stays on one thread. */
export const MIN_PARALLEL_FLOPS = 1e9;

/** Refuses a thread count that is not a whole number above 0 (undefined means auto). */
export function checkThreads(requested: number | undefined): void {
  if (requested !== undefined && !(Number.isInteger(requested) && requested > 0)) {
    throw new FerryError('INVALID_OPTION', `threads must be a whole number above 0, got ${requested}.`, {
      hint: 'Pass --threads 1 for one thread, or leave it out to let ferry choose.',
    });
  }
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
  /** Rows per step: more threads than rows would have nothing to do. */
  batchSize: number;
  cores?: number;
  /** Runnable processes, averaged over the last minute (0 where the system does not say). */
  load?: number;
}

/**
 * The thread count of a run: `requested` where the backend can share work, else 1; auto takes 2
 * threads on wasm for steps of at least MIN_PARALLEL_FLOPS when a second core is idle. Never more
 * threads than rows.
 */
export function planThreads(request: ThreadRequest): ThreadPlan {
  const { requested, backend, flopsPerStep, batchSize, cores = availableParallelism(), load = loadavg()[0]! } = request;
  checkThreads(requested);
  if (!SHARABLE_BACKENDS.includes(backend)) {
    return requested !== undefined && requested > 1
      ? { threads: 1, note: `note: --threads applies to the wasm and cpu backends; ${backend} runs its own threads` }
      : { threads: 1 };
  }
  if (requested === undefined) {
    if (backend !== 'wasm' || flopsPerStep < MIN_PARALLEL_FLOPS || Math.min(2, cores, batchSize) < 2) return { threads: 1 };
    if (cores - load < 1) {
      return { threads: 1, note: `threads: 1, as the other cores are busy (load ${load.toFixed(1)} on ${cores} cores; --threads 2 to share anyway)` };
    }
    return { threads: 2, note: 'threads: 2, each computing part of every batch (--threads 1 for one)' };
  }
  const threads = Math.min(requested, batchSize);
  if (threads < requested) return { threads, note: `note: ${threads} threads, one per row of the batch (--batch-size ${batchSize})` };
  if (threads > cores) return { threads, note: `note: --threads ${threads} on ${cores} cores: the threads take turns, which is slower` };
  return threads > 1 ? { threads, note: `threads: ${threads}, each computing part of every batch` } : { threads };
}
