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

/**
 * The text Docker 20.10 prints for a reference github.com/distribution/reference refuses
 * (`ParseNormalizedNamed`): its three specific errors, else `invalid reference format`.
 * @param reason a layer-store `ReferenceError`'s `reason`; `input` the reference as written.
 */
export function dockerReferenceMessage(input: string, reason: string): string {
  if (reason === 'repository name must be lowercase') return 'invalid reference format: repository name must be lowercase';
  if (reason.startsWith('repository name must not be more than')) return reason;
  if (reason.startsWith('cannot specify 64-byte hexadecimal strings')) return `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`;
  return 'invalid reference format';
}

/**
 * Docker's reason when an image named in FROM or `--from` is not here and is no valid reference
 * (dockerd then parses it to pull it, and that parse fails), or undefined for a valid one.
 * @param cause the store's ImageNotFoundError `cause` (a ReferenceError for an invalid reference).
 */
export function invalidImageReference(ref: string, cause: unknown): string | undefined {
  if (/^[a-f0-9]{64}$/.test(ref)) return dockerReferenceMessage(ref, 'cannot specify 64-byte hexadecimal strings as a repository name');
  const reason = (cause as { reason?: unknown } | undefined)?.reason;
  return cause instanceof Error && typeof reason === 'string' ? dockerReferenceMessage(ref, reason) : undefined;
}
