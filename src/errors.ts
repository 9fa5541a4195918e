/**
 * Every error a user can cause is a FerryError: a message that names the problem, a hint that
 * says what to do, and an HTTP status for the server. Anything else reaching the top is a bug.
 */
export class FerryError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly status: number;

  constructor(code: string, message: string, options: { hint?: string; status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = options.hint;
    this.status = options.status ?? 400;
  }

  /** One line for a terminal: the problem, then what to do. */
  toUserMessage(): string {
    return this.hint ? `${this.message}\n  ${this.hint}` : this.message;
  }
}
