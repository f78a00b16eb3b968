import type { Writable } from 'node:stream';

/** Shape shared by every error class the packages export: a stable code, a message, maybe a hint. */
interface CodedError {
  code: string;
  message: string;
  hint?: string;
  exitCode?: number;
}

function isCoded(err: unknown): err is CodedError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && String((err as unknown as { code: string }).code).startsWith('E_');
}

/**
 * Prints an error for a user and returns the exit code: 125 for usage errors, the error's own
 * exitCode (a failing RUN step's status) or 1 for known errors, 2 for internal errors.
 */
export function renderError(err: unknown, out: Writable): number {
  if (isCoded(err)) {
    const all = (err as { errors?: unknown }).errors;
    if (Array.isArray(all) && all.length > 1 && all.every((e) => e instanceof Error)) {
      // a Dockerfile with several mistakes: show every one, each with its own location and hint
      out.write(`error: ${all.length} problems in the Dockerfile:\n`);
      for (const e of all as (Error & { hint?: string })[]) out.write(`  ${e.message}\n`);
      return 1;
    }
    out.write(`error: ${err.message}\n`);
    if (err.hint) out.write(`hint: ${err.hint}\n`);
    if (err.code === 'E_USAGE') return 125;
    return typeof err.exitCode === 'number' && err.exitCode > 0 ? err.exitCode : 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  out.write(`internal error: ${e.stack ?? e.message}\nplease report this as a bug.\n`);
  return 2;
}
