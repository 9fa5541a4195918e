/** The protocol's error shape, `{"error": "..."}`, for every failure on a /v2 route. */
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
