/**
 * Error classes of the parser. A {@link DockerfileError} is one problem at one place;
 * {@link DockerfileParseError} is what `parseDockerfile` throws: every problem found.
 */

/** Stable error codes of the parser. */
export type DockerfileErrorCode =
  | 'E_DIRECTIVE'
  | 'E_EMPTY_DOCKERFILE'
  | 'E_UNKNOWN_INSTRUCTION'
  | 'E_ARGUMENTS'
  | 'E_UNKNOWN_FLAG'
  | 'E_FLAG_VALUE'
  | 'E_JSON_ARRAY'
  | 'E_SYNTAX'
  | 'E_HEREDOC'
  | 'E_NO_STAGE'
  | 'E_STAGE_NAME'
  | 'E_DUPLICATE_STAGE'
  | 'E_UNKNOWN_TARGET'
  | 'E_ONBUILD'
  | 'E_DURATION'
  | 'E_EXPANSION'
  | 'E_SIGNAL'
  | 'E_PORT'
  | 'E_MOUNT';

/** Where a {@link DockerfileError} happened. */
export interface ErrorLocation {
  readonly file?: string;
  readonly line: number;
  readonly column?: number;
}

export interface DockerfileErrorOptions {
  readonly hint?: string;
  /** The offending text (keyword, flag, word). */
  readonly text?: string;
  readonly cause?: unknown;
}

/**
 * One problem in a Dockerfile, with its location. `message` is rendered as
 * `Dockerfile:12:1: unknown instruction: COPPY (did you mean COPY?)`; `detail` is the bare text.
 */
export class DockerfileError extends Error {
  readonly code: DockerfileErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly text: string | undefined;
  readonly hint: string | undefined;
  readonly detail: string;

  constructor(code: DockerfileErrorCode, location: ErrorLocation, detail: string, options: DockerfileErrorOptions = {}) {
    const file = location.file ?? 'Dockerfile';
    const column = location.column ?? 1;
    super(
      `${file}:${location.line}:${column}: ${detail}${options.hint ? ` (${options.hint})` : ''}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'DockerfileError';
    this.code = code;
    this.file = file;
    this.line = location.line;
    this.column = column;
    this.detail = detail;
    this.text = options.text;
    this.hint = options.hint;
  }
}

/**
 * Thrown by parseDockerfile: lists every error found, in the order Docker would report
 * them (so `errors[0]` is the one Docker stops at).
 */
export class DockerfileParseError extends Error {
  readonly code = 'E_DOCKERFILE_PARSE';
  readonly errors: readonly DockerfileError[];
  readonly hint: string | undefined;

  constructor(errors: readonly DockerfileError[]) {
    const first = errors[0];
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
    super(first ? `${first.message}${more}` : 'invalid Dockerfile');
    this.name = 'DockerfileParseError';
    this.errors = errors;
    this.hint = first?.hint;
  }
}

/**
 * An expansion problem (`${a:?msg}`, `${a`, unsupported modifier) without a location;
 * the caller attaches the instruction's location by turning it into a DockerfileError.
 */
export class ExpansionError extends Error {
  readonly code = 'E_EXPANSION';
  constructor(message: string) {
    super(message);
    this.name = 'ExpansionError';
  }
}
