/**
 * The typed Dockerfile model produced by {@link parseDockerfile}.
 *
 * Everything here is plain data (JSON-serialisable): the executor walks it, expands
 * words with {@link expandInstruction} at each step, and never re-reads the text.
 */

/** A 1-based position in the Dockerfile text (column counts UTF-16 code units). */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** A span of Dockerfile text; `end` is inclusive of the last line, exclusive column. */
export interface SourceRange {
  readonly start: SourcePosition;
  readonly end: SourcePosition;
}

/** A builder flag as written (`--name=value`, or `--name` for booleans). */
export interface Flag {
  readonly name: string;
  /** The text after `=`; undefined when the flag was written without `=`. */
  readonly value: string | undefined;
  readonly range: SourceRange;
}

/** Exec form is a JSON string array; shell form is the raw text run through the stage's SHELL. */
export type CommandForm = 'exec' | 'shell';

/** A here-document attached to RUN/COPY/ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`). */
export interface Heredoc {
  /** Delimiter word with quotes removed. */
  readonly name: string;
  /**
   * Body lines (each with its line ending), delimiter line excluded. With `chompTabs`
   * the leading tabs of every line are already removed, as Docker does before use.
   */
  readonly content: string;
  /** False when any part of the delimiter was quoted: the body is then used verbatim. */
  readonly expand: boolean;
  /** True for `<<-`: leading tabs stripped from body lines and the delimiter line. */
  readonly chompTabs: boolean;
  /** Optional file descriptor prefix (`3<<EOF`); 0 when absent. */
  readonly fd: number;
}

/** Keywords Docker knows. */
export type InstructionKind =
  | 'FROM'
  | 'RUN'
  | 'CMD'
  | 'ENTRYPOINT'
  | 'COPY'
  | 'ADD'
  | 'ENV'
  | 'ARG'
  | 'WORKDIR'
  | 'USER'
  | 'EXPOSE'
  | 'VOLUME'
  | 'LABEL'
  | 'SHELL'
  | 'HEALTHCHECK'
  | 'STOPSIGNAL'
  | 'ONBUILD'
  | 'MAINTAINER';

/** Fields every instruction has. */
export interface InstructionBase {
  readonly kind: InstructionKind;
  /** Keyword as written (`from`, `FrOm`). */
  readonly keyword: string;
  /** From the keyword's first character to the end of its last line (heredoc bodies included). */
  readonly range: SourceRange;
  /** The instruction text as Docker sees it: continuation lines joined, escape removed, trimmed. */
  readonly raw: string;
  readonly flags: readonly Flag[];
}

export interface FromInstruction extends InstructionBase {
  readonly kind: 'FROM';
  /** Base image reference or stage name, unexpanded (`$BASE`). */
  readonly image: string;
  /** `AS name`, lower-cased (Docker's stage names are case-insensitive). */
  readonly stageName?: string;
  /** `--platform` value, unexpanded. */
  readonly platform?: string;
}

export type RunMountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';

/** A `RUN --mount=...` spec (Dockerfile reference). Absent keys are undefined. */
export interface RunMount {
  readonly type: RunMountType;
  readonly target?: string;
  readonly source?: string;
  readonly from?: string;
  readonly id?: string;
  readonly sharing?: 'shared' | 'private' | 'locked';
  readonly readonly?: boolean;
  readonly uid?: number;
  readonly gid?: number;
  /** File mode (parsed from octal). */
  readonly mode?: number;
  readonly required?: boolean;
  /** secret: expose as this environment variable. */
  readonly env?: string;
  /** tmpfs: size in bytes. */
  readonly size?: number;
  /** The spec as written (after expansion when it comes from expandInstruction). */
  readonly raw: string;
}

export interface RunInstruction extends InstructionBase {
  readonly kind: 'RUN';
  readonly form: CommandForm;
  /** exec: the JSON array; shell: the raw command text (never expanded by the builder). */
  readonly command: readonly string[] | string;
  readonly heredocs: readonly Heredoc[];
  readonly mounts: readonly RunMount[];
  readonly network?: 'default' | 'none' | 'host';
  readonly security?: 'sandbox' | 'insecure';
}

/**
 * CMD / ENTRYPOINT. A shell-form `command` of `''` means the instruction had no
 * arguments: Docker stores `Cmd = SHELL` (no command) for CMD and no Entrypoint for ENTRYPOINT.
 */
export interface CmdInstruction extends InstructionBase {
  readonly kind: 'CMD';
  readonly form: CommandForm;
  readonly command: readonly string[] | string;
}

export interface EntrypointInstruction extends InstructionBase {
  readonly kind: 'ENTRYPOINT';
  readonly form: CommandForm;
  readonly command: readonly string[] | string;
}

interface CopyLike extends InstructionBase {
  /** Source paths/URLs (heredoc sources are in `heredocs`), unexpanded. */
  readonly sources: readonly string[];
  readonly dest: string;
  readonly form: CommandForm;
  /** Inline sources (`COPY <<EOF /dst`). */
  readonly heredocs: readonly Heredoc[];
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly exclude: readonly string[];
}

export interface CopyInstruction extends CopyLike {
  readonly kind: 'COPY';
  readonly from?: string;
  readonly parents: boolean;
}

export interface AddInstruction extends CopyLike {
  readonly kind: 'ADD';
  readonly checksum?: string;
  readonly keepGitDir?: boolean;
  readonly unpack?: boolean;
}

/** An ordered key/value pair (ENV, LABEL). */
export type KeyValue = readonly [key: string, value: string];

export interface EnvInstruction extends InstructionBase {
  readonly kind: 'ENV';
  /** In file order; words still quoted/unexpanded (`"a b"`), see expandInstruction. */
  readonly pairs: readonly KeyValue[];
}

export interface LabelInstruction extends InstructionBase {
  readonly kind: 'LABEL';
  readonly pairs: readonly KeyValue[];
}

export interface ArgDeclaration {
  readonly name: string;
  readonly defaultValue?: string;
}

export interface ArgInstruction extends InstructionBase {
  readonly kind: 'ARG';
  readonly args: readonly ArgDeclaration[];
}

export interface WorkdirInstruction extends InstructionBase {
  readonly kind: 'WORKDIR';
  readonly path: string;
}

export interface UserInstruction extends InstructionBase {
  readonly kind: 'USER';
  /** The whole argument as written (`app:staff`, or even `a b`, which Docker accepts). */
  readonly user: string;
}

export interface ExposeInstruction extends InstructionBase {
  readonly kind: 'EXPOSE';
  /** Words as written (`80`, `53/udp`, `$P`); validate after expansion with parsePortSpec. */
  readonly ports: readonly string[];
}

export interface VolumeInstruction extends InstructionBase {
  readonly kind: 'VOLUME';
  readonly form: CommandForm;
  readonly paths: readonly string[];
}

export interface ShellInstruction extends InstructionBase {
  readonly kind: 'SHELL';
  readonly shell: readonly string[];
}

/** `HEALTHCHECK NONE`. */
export interface HealthcheckNone extends InstructionBase {
  readonly kind: 'HEALTHCHECK';
  readonly none: true;
}

/** `HEALTHCHECK [flags] CMD ...`; durations in nanoseconds (as in the image config). */
export interface HealthcheckCmd extends InstructionBase {
  readonly kind: 'HEALTHCHECK';
  readonly none: false;
  /** `["CMD", ...args]` (exec form) or `["CMD-SHELL", "text"]` (shell form). */
  readonly test: readonly string[];
  readonly interval?: number;
  readonly timeout?: number;
  readonly startPeriod?: number;
  readonly startInterval?: number;
  readonly retries?: number;
}

export type HealthcheckInstruction = HealthcheckNone | HealthcheckCmd;

export interface StopsignalInstruction extends InstructionBase {
  readonly kind: 'STOPSIGNAL';
  /** As written; validate after expansion with parseSignal. */
  readonly signal: string;
}

export interface OnbuildInstruction extends InstructionBase {
  readonly kind: 'ONBUILD';
  /**
   * The trigger parsed as an instruction, or undefined when Docker would only find
   * out in the child build (e.g. `ONBUILD FOO bar`); a warning says why.
   */
  readonly trigger: Instruction | undefined;
  /** The text after ONBUILD, exactly as Docker stores it in the image's `OnBuild`. */
  readonly triggerText: string;
}

export interface MaintainerInstruction extends InstructionBase {
  readonly kind: 'MAINTAINER';
  readonly name: string;
}

/** One Dockerfile instruction, discriminated on `kind`. */
export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | ArgInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | VolumeInstruction
  | LabelInstruction
  | ShellInstruction
  | HealthcheckInstruction
  | StopsignalInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

/** Parser directives from the top of the file. */
export interface Directives {
  readonly escape: '\\' | '`';
  readonly syntax?: string;
  readonly check?: string;
}

/** Something Docker accepts but that probably isn't what the author meant. */
export interface Warning {
  readonly code: string;
  readonly line: number;
  readonly message: string;
}

export interface Stage {
  readonly index: number;
  /** Lower-cased `AS` name. */
  readonly name?: string;
  readonly from: FromInstruction;
  /** Instructions after FROM up to the next FROM. */
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  readonly directives: Directives;
  /** ARG instructions before the first FROM (visible to every FROM line). */
  readonly metaArgs: readonly ArgInstruction[];
  readonly stages: readonly Stage[];
  /** Every instruction in file order (meta ARGs and FROMs included). */
  readonly instructions: readonly Instruction[];
  readonly warnings: readonly Warning[];
}

/** Options of {@link parseDockerfile}. */
export interface ParseOptions {
  /** Name used in error messages (default `Dockerfile`). */
  readonly file?: string;
}
