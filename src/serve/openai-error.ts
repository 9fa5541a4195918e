import { type ErrorCode, FerryError } from '../errors.ts';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const typeByStatus: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'invalid_request_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  499: 'invalid_request_error',
  503: 'service_unavailable_error',
  504: 'timeout_error',
};

/** An HTTP error as OpenAI writes it, with the status and headers to send it with. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(status: number, code: ErrorCode, message: string, options: { param?: string | null; headers?: Record<string, string> } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }

  get body(): OpenAIErrorBody {
    return { error: { message: this.message, type: typeByStatus[this.status] ?? 'server_error', param: this.param, code: this.code } };
  }
}

/** Any thrown value as an ApiError: FerryErrors keep their status, anything else is a 500. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof FerryError) {
    const message = error.hint ? `${error.message} (${error.hint})` : error.message;
    return new ApiError(error.status, error.code, message, error.status === 429 ? { headers: { 'Retry-After': '1' } } : {});
  }
  return new ApiError(500, 'internal_error', 'the server failed while handling this request');
}

export function errorResponse(error: ApiError): Response {
  return new Response(JSON.stringify(error.body), {
    status: error.status,
    headers: { 'content-type': 'application/json', ...error.headers },
  });
}
