import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { EventFrames } from './completions.ts';
import { EVENT_STREAM_HEADERS } from './sse.ts';

/**
 * Writes a streamed completion straight to Node's response, one write per batch of ready events:
 * a web ReadableStream would add a read, an encode and several promises per token on the thread
 * that also samples every token. Returns the Response that tells @hono/node-server the answer
 * is already on its way.
 */
export function sendEventsToNode(frames: EventFrames, outgoing: ServerResponse): Response {
  // No flushHeaders(): the headers go out with the first frames, in the same write.
  outgoing.writeHead(200, EVENT_STREAM_HEADERS);
  outgoing.on('close', () => frames.cancel());
  pump().catch((error: unknown) => {
    console.error(error);
    frames.cancel();
    outgoing.destroy();
  });
  return RESPONSE_ALREADY_SENT;

  async function pump(): Promise<void> {
    let text: string | undefined;
    while ((text = await frames.next()) !== undefined && !outgoing.destroyed) {
      if (!outgoing.write(text)) await drained(outgoing);
    }
    if (!outgoing.destroyed) outgoing.end();
  }
}

/** Resolves once the socket takes more, or is gone. */
function drained(outgoing: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      outgoing.off('drain', done);
      outgoing.off('close', done);
      resolve();
    };
    outgoing.on('drain', done);
    outgoing.on('close', done);
  });
}
