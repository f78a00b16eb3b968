/**
 * The error class of the build context: source selection, .dockerignore, COPY/ADD file work.
 * Every error has a stable `code` ('E_…'), a message in Docker's words where Docker has one,
 * an optional `hint`, and the underlying `cause`.
 */
export class ContextError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ContextError';
    this.code = code;
    this.hint = options.hint;
  }
}
