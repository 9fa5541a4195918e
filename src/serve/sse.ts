import type { EventFrames } from './completions.ts';

export const EVENT_STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' };

/** A streamed completion as a web Response, which every runtime Hono runs on can send. */
export function eventStreamResponse(frames: EventFrames): Response {
  const encoder = new TextEncoder();
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const text = await frames.next();
      if (cancelled) return;
      if (text === undefined) controller.close();
      else controller.enqueue(encoder.encode(text));
    },
    cancel() {
      cancelled = true;
      frames.cancel();
    },
  });
  return new Response(body, { headers: EVENT_STREAM_HEADERS });
}
