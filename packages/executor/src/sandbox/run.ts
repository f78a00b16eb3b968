import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from './errors.js';
import { requireTool } from './host-tools.js';
import { ensureDirInRoot } from './root-path.js';
import type { Isolation } from './detect.js';
import type { RunSpec } from './spec.js';
import { runWithRunc } from './runc.js';
import { runWithChroot } from './chroot.js';

/** How to run: from detectIsolation, plus a private state directory (bundles, runc state). */
export interface SandboxOptions {
  isolation: Isolation;
  /** OCI runtime binary (default: runc from the host). */
  runtime?: string;
  /** Directory for per-step bundles and runc state (`<stateDir>/runc`); created if missing. */
  stateDir: string;
}

/** Outcome of a step that ran (a non-zero exit is not an error). */
export interface SandboxResult {
  /** The step's exit status; 128+n when killed by signal n. */
  exitCode: number;
  /** True when the kernel OOM-killed a process of the step (OCI isolation with memoryBytes). */
  oomKilled: boolean;
  /**
   * Set when the command could not be started at all (runc's message, e.g. `exec: "x": executable
   * file not found in $PATH`); `exitCode` is then 127. Docker fails such a step with this message
   * and exit status 1, not as a command that returned 127.
   */
  startFailure?: string;
}

/**
 * Runs one RUN step in the sandbox on an already mounted rootfs, streaming its output to
 * `spec.onOutput`, and waits for it. Creates `spec.cwd` in the rootfs if missing. Every process,
 * container and mount it starts is gone when it settles, also on abort.
 * @throws SandboxError when the sandbox cannot start, or `spec.signal` aborts (cause: the reason).
 */
export async function runInSandbox(spec: RunSpec, opts: SandboxOptions): Promise<SandboxResult> {
  if (!path.isAbsolute(spec.cwd)) throw new SandboxError(`working directory ${spec.cwd} is not absolute`);
  if (spec.args.length === 0) throw new SandboxError('RUN step has no command');
  spec.signal?.throwIfAborted();
  await mkdir(opts.stateDir, { recursive: true });
  await ensureDirInRoot(spec.rootfs, spec.cwd);
  const id = randomBytes(16).toString('hex');
  // After an abort, the runtime's complaints about the kill are noise: stop forwarding.
  const onOutput = spec.onOutput;
  if (onOutput) spec = { ...spec, onOutput: (stream, chunk) => void (spec.signal?.aborted || onOutput(stream, chunk)) };
  if (opts.isolation === 'oci') {
    const runtime = opts.runtime ?? (await requireTool('runc', 'runc'));
    return runWithRunc(spec, runtime, opts.stateDir, id);
  }
  if (spec.memoryBytes !== undefined || spec.cpus !== undefined) {
    // unshare + chroot makes no cgroup: a limit would be silently ignored
    throw new SandboxError('--memory and --cpus need OCI isolation: the chroot fallback cannot limit a step', {
      hint: 'install runc (apt-get install runc) and build with --isolation oci, or drop the limits',
    });
  }
  return runWithChroot(spec, opts.stateDir, id);
}
