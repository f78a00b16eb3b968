/** Errors of the build. */

/** Stable codes of {@link BuildError}. */
export type BuildErrorCode =
  | 'E_STEP_FAILED'
  | 'E_UNKNOWN_TARGET'
  | 'E_BASE_IMAGE'
  | 'E_PLATFORM'
  | 'E_UNSUPPORTED'
  | 'E_CONTEXT'
  | 'E_SECRET'
  | 'E_STEP';

export interface BuildErrorOptions {
  hint?: string;
  cause?: unknown;
  /** the failing RUN's exit status (E_STEP_FAILED) */
  exitCode?: number;
  file?: string;
  line?: number;
}

/**
 * A build that could not finish. `message` names the Dockerfile location and the instruction
 * when the error comes from a step; `exitCode` is a failing RUN's status.
 */
export class BuildError extends Error {
  readonly code: BuildErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: number | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(code: BuildErrorCode, message: string, opts: BuildErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BuildError';
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode;
    this.file = opts.file;
    this.line = opts.line;
  }
}
