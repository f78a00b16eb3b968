import type { Readable, Writable } from 'node:stream';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What a command gets from the process: streams, environment and the store root. */
export interface CliContext {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  /** store root: --root, else TSBUILD_ROOT, else /var/lib/tsbuild for root, else $XDG_DATA_HOME/tsbuild */
  root: string;
  /** aborted on SIGINT/SIGTERM */
  signal: AbortSignal;
}

/** A CLI command: parses its own argv, calls the library, returns the exit code. */
export interface Command {
  run(argv: string[], ctx: CliContext): Promise<number>;
}

/** The default store root, as DESIGN.md says. */
export function defaultRoot(env: Readonly<Record<string, string | undefined>>, uid: number): string {
  if (env.TSBUILD_ROOT) return env.TSBUILD_ROOT;
  if (uid === 0) return '/var/lib/tsbuild';
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'tsbuild');
}
