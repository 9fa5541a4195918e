import type { Context } from 'hono';
import { concatBytes } from '../tokenizer/utf8.ts';
import { clientClosed } from './completions.ts';
import { ApiError } from './openai-error.ts';

/**
 * The request body as bytes, refusing one over `maxBytes` with 413. A declared length is checked
 * up front and the body then read whole: on @hono/node-server that reads the socket directly,
 * where touching `c.req.raw.body` (as hono's bodyLimit does) would first wrap every request in
 * web streams. A body without a length is counted as it streams in. An upload that breaks off
 * is the client going away (499), not a server error.
 */
export async function readBody(c: Context, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new ApiError(413, 'body_too_large', `the request body exceeds ${maxBytes} bytes`);
  const declared = c.req.header('transfer-encoding') === undefined ? c.req.header('content-length') : undefined;
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
  const read = declared !== undefined ? c.req.arrayBuffer().then((buffer) => new Uint8Array(buffer)) : readCounted(c.req.raw.body, maxBytes, tooLarge);
  return read.catch((error: unknown) => {
    throw error instanceof ApiError ? error : clientClosed();
  });
}

async function readCounted(body: ReadableStream<Uint8Array> | null, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}
