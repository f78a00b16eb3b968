/**
 * Failure of the RUN sandbox: mounting the rootfs, starting the runtime, resolving the user,
 * or cleaning up. A non-zero exit of the step itself is not an error (it is returned).
 */
export class SandboxError extends Error {
  readonly code = 'E_SANDBOX' as const;
  readonly hint: string | undefined;
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SandboxError';
    this.hint = options.hint;
  }
}

/** The errno code of a Node system error, if it is one. */
export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
