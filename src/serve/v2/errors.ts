/** The protocol's error shape, `{"error": "..."}`, for every failure on a /v2 route. */
import type { HTTPException } from 'hono/http-exception';
import { FerryError } from '../../errors.ts';
import { ApiError } from '../openai-error.ts';

/** A request the protocol refuses, with its status (and headers, e.g. Retry-After). */
export function protocolError(status: number, message: string, headers: Record<string, string> = {}): ApiError {
  return new ApiError(status, 'inference_protocol', message, { headers });
}

/** Any thrown value as the protocol's error response; only bugs become a 500 (and are logged). */
export function protocolErrorResponse(error: unknown): Response {
  let status = 500;
  let message = 'the server failed while handling this request';
  let headers: Record<string, string> = {};
  if (error instanceof ApiError) {
    ({ status, message, headers } = error);
  } else if (error instanceof FerryError) {
    status = error.status;
    message = error.hint ? `${error.message} (${error.hint})` : error.message;
    if (status === 429) headers = { 'Retry-After': '1' };
  } else {
    console.error(error);
  }
  return new Response(JSON.stringify({ error: message }), { status, headers: { 'content-type': 'application/json', ...headers } });
}

/** Paths the protocol answers, whose errors take its shape even when middleware raised them. */
export function isProtocolPath(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

/**
 * A middleware's HTTPException (hono's bearer-auth answers 401 with OpenAI's error object) in the
 * protocol's shape, keeping its status and headers (WWW-Authenticate).
 */
export async function protocolErrorOfException(exception: HTTPException): Promise<Response> {
  const response = exception.getResponse();
  const body = await response.json().catch(() => undefined) as { error?: { message?: unknown } } | undefined;
  const message = typeof body?.error?.message === 'string' ? body.error.message : exception.message || `HTTP ${response.status}`;
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'content-type' && name !== 'content-length') headers[name] = value;
  });
  return protocolErrorResponse(new ApiError(response.status, 'inference_protocol', message, { headers }));
}
