import { FerryError } from '../errors.ts';
import type { Channel } from './channel.ts';
import type { GenerationEvent, GenerationRequest, Scheduler } from './scheduler.ts';

/**
 * Several schedulers over one model, each with its own decoder and batch, seen as one. With the
 * session in a worker thread, one lane's step runs in ORT while another lane samples and streams
 * its tokens on the main thread, so the two threads overlap instead of waiting on each other.
 * A request goes to the lane with the fewest sequences running and waiting; its output does not
 * depend on the lane (a sequence's tokens never depend on its batch).
 */
export function createLanes(lanes: readonly Scheduler[]): Scheduler {
  if (lanes.length === 1) return lanes[0]!;
  const load = (lane: Scheduler) => lane.active + lane.queued;

  function submit(request: GenerationRequest): Channel<GenerationEvent> {
    const byLoad = [...lanes].sort((a, b) => load(a) - load(b));
    let refusal: unknown;
    for (const lane of byLoad) {
      try {
        return lane.submit(request);
      } catch (error) {
        // A full lane refuses; another may still have room. Anything else is the request's fault.
        if (!(error instanceof FerryError && error.code === 'queue_full')) throw error;
        refusal ??= error;
      }
    }
    throw refusal;
  }

  return {
    submit,
    get active() {
      return lanes.reduce((sum, lane) => sum + lane.active, 0);
    },
    get queued() {
      return lanes.reduce((sum, lane) => sum + lane.queued, 0);
    },
    async idle() {
      await Promise.all(lanes.map((lane) => lane.idle()));
    },
    onStep(listener) {
      for (const lane of lanes) lane.onStep(listener);
    },
    capacity(n) {
      return lanes.reduce((sum, lane) => sum + lane.capacity(n), 0);
    },
  };
}
