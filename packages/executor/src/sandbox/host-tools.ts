import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from './errors.js';

/** Where host tools (util-linux, coreutils, runc) are looked up; no PATH is read below the CLI. */
const TOOL_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of host executable `name` (or `name` itself when absolute), or undefined. */
export async function findTool(name: string): Promise<string | undefined> {
  const candidates = path.isAbsolute(name) ? [name] : TOOL_DIRS.map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // not here: try the next directory
    }
  }
  return undefined;
}

/** Like findTool, but throws a SandboxError naming the package to install. */
export async function requireTool(name: string, pkg: string): Promise<string> {
  const found = await findTool(name);
  if (found === undefined) throw new SandboxError(`${name} not found on the host`, { hint: `install ${pkg}` });
  return found;
}

export interface ToolResult { code: number; stdout: string; stderr: string }

/**
 * Runs a short host command to completion and captures its output (small: status lines).
 * Rejects only when it cannot be started; a non-zero exit is returned.
 */
export function runTool(file: string, args: string[], opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: {}, signal: opts.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', (err) => reject(new SandboxError(`running ${file}`, { cause: err })));
    child.on('close', (code, sig) => resolve({ code: code ?? 128 + signalNumber(sig), stdout, stderr }));
  });
}

/** Like runTool, but a non-zero exit is a SandboxError carrying the tool's stderr. */
export async function checkTool(file: string, args: string[], what: string, opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<string> {
  const r = await runTool(file, args, opts);
  if (r.code !== 0) throw new SandboxError(`${what}: ${path.basename(file)} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10,
  SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGXCPU: 24, SIGXFSZ: 25, SIGSYS: 31,
};

/** Linux signal number of a Node signal name (0 when unknown or null). */
export function signalNumber(sig: NodeJS.Signals | null): number {
  return sig === null ? 0 : SIGNALS[sig] ?? 0;
}
