import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SandboxError } from './errors.js';
import { runTool } from './host-tools.js';
import { writeHostFiles } from './host-files.js';
import { DEFAULT_NOFILE, ociConfig, type RunSpec } from './spec.js';
import { oomKillCount, removeStepCgroups } from './cgroup.js';
import { waitForExit } from './output.js';
import type { SandboxResult } from './run.js';

/** The last stderr line runc writes when it fails itself (before or instead of the step). */
const RUNC_FAILURE = /^time="[^"]*" level=error msg="runc run failed: (.*)"$/;

/**
 * Runs `spec` in a runc container (bundle and runc state under `stateDir`, which it removes).
 * Never leaves a container, cgroup or process behind: on abort or error it kills and deletes.
 */
export async function runWithRunc(spec: RunSpec, runtime: string, stateDir: string, id: string): Promise<SandboxResult> {
  const bundle = path.join(stateDir, `bundle-${id}`);
  const runcRoot = path.join(stateDir, 'runc');
  const cgroupName = `tsbuild-${id}`;
  const hostname = spec.hostname ?? id.slice(0, 12);
  await mkdir(bundle, { recursive: true });
  await mkdir(runcRoot, { recursive: true, mode: 0o700 });
  const runc = (...args: string[]) => runTool(runtime, ['--root', runcRoot, ...args]);
  // whether the runtime ran at all: one that cannot start has no container to delete either
  let started = false;
  try {
    const hostFiles = await writeHostFiles(bundle, hostname, spec.extraHosts);
    const config = ociConfig({
      spec,
      hostname,
      hostFiles,
      cgroupsPath: cgroupName,
      nofile: Math.min(DEFAULT_NOFILE, await hardNofileLimit()),
      ...(spec.memoryBytes !== undefined ? { memoryLimit: spec.memoryBytes } : {}),
    });
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
    spec.signal?.throwIfAborted();

    const child = spawn(runtime, ['--root', runcRoot, 'run', '--keep', '--bundle', bundle, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {},
    });
    const exited = waitForExit(child, spec.onOutput).catch((cause: unknown) => {
      throw new SandboxError(`cannot start the OCI runtime ${runtime}: ${(cause as Error).message}`, {
        hint: 'reinstall runc (apt-get install runc), or build with --isolation chroot',
        cause,
      });
    });
    child.once('spawn', () => (started = true));
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      void killContainer(runtime, runcRoot, id, child, exited);
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    let result: { code: number; stderrTail: string };
    try {
      result = await exited;
    } finally {
      spec.signal?.removeEventListener('abort', onAbort);
    }
    if (aborted) throw new SandboxError('RUN step aborted', { cause: spec.signal?.reason });
    const failure = result.code !== 0 ? RUNC_FAILURE.exec(lastLine(result.stderrTail)) : null;
    if (failure) {
      // A missing command is the step's failure (exit 127, as a shell reports it); the build
      // reports it with runc's message, as Docker's ContainerStart error.
      if (/exec: .*(executable file not found|no such file or directory)/.test(failure[1]!)) return { exitCode: 127, oomKilled: false, startFailure: failure[1]!.replace(/\\(.)/g, '$1') };
      throw new SandboxError(`runc failed to run the step: ${failure[1]}`, { hint: 'see the runc message above' });
    }
    // --keep left the stopped container and its cgroup in place, so the OOM counter is readable.
    const oomKilled = (await oomKillCount(cgroupName)) > 0;
    return { exitCode: result.code, oomKilled };
  } finally {
    // run --keep leaves the container for us to delete (and its cgroup with it).
    if (started) await runc('delete', '--force', id);
    await removeStepCgroups(cgroupName);
    await rm(bundle, { recursive: true, force: true });
  }
}

/** Kills the container until runc run returns (the container may not exist yet when asked). */
async function killContainer(runtime: string, runcRoot: string, id: string, child: ReturnType<typeof spawn>, exited: Promise<unknown>): Promise<void> {
  let done = false;
  void exited.finally(() => (done = true));
  for (let attempt = 0; !done && attempt < 100; attempt++) {
    await runTool(runtime, ['--root', runcRoot, 'kill', id, 'KILL']);
    await Promise.race([exited, delay(20)]);
  }
  if (!done) child.kill('SIGKILL');
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/**
 * This process's hard RLIMIT_NOFILE (from /proc/self/limits): runc cannot raise a container's
 * limit above it without CAP_SYS_RESOURCE, which a confined builder may lack.
 */
async function hardNofileLimit(): Promise<number> {
  const text = await readFile('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  return m === null || m[1] === 'unlimited' ? DEFAULT_NOFILE : Number(m[1]);
}
