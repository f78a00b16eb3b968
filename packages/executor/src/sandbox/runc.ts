import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SandboxError } from './errors.js';
import { runTool } from './host-tools.js';
import { writeHostFiles } from './host-files.js';
import { DEFAULT_NOFILE, ociConfig, type RunSpec } from './spec.js';
import { createMemoryParent, removeStepCgroups, type MemoryParent } from './cgroup.js';
import { waitForExit } from './output.js';

/** Exit statuses runc itself uses when it fails before the step starts (not the step's). */
const RUNC_FAILURE_MARKERS = [/^runc run failed/m, /level=error msg=/m, /^ERRO\[/m];

/**
 * Runs `spec` in a runc container (bundle and runc state under `stateDir`, which it removes).
 * Never leaves a container, cgroup or process behind: on abort or error it kills and deletes.
 */
export async function runWithRunc(spec: RunSpec, runtime: string, stateDir: string, id: string): Promise<{ exitCode: number; oomKilled: boolean }> {
  const bundle = path.join(stateDir, `bundle-${id}`);
  const runcRoot = path.join(stateDir, 'runc');
  const cgroupName = `tsbuild-${id}`;
  const hostname = spec.hostname ?? id.slice(0, 12);
  await mkdir(bundle, { recursive: true });
  await mkdir(runcRoot, { recursive: true, mode: 0o700 });
  let memoryParent: MemoryParent | undefined;
  const runc = (...args: string[]) => runTool(runtime, ['--root', runcRoot, ...args]);
  try {
    const hostFiles = await writeHostFiles(bundle, hostname);
    if (spec.memoryBytes !== undefined) memoryParent = await createMemoryParent(cgroupName, spec.memoryBytes);
    const config = ociConfig({
      spec,
      hostname,
      hostFiles,
      cgroupsPath: `${cgroupName}/ctr`,
      nofile: Math.min(DEFAULT_NOFILE, await hardNofileLimit()),
      ...(spec.memoryBytes !== undefined && memoryParent === undefined ? { memoryLimit: spec.memoryBytes } : {}),
    });
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
    spec.signal?.throwIfAborted();

    const child = spawn(runtime, ['--root', runcRoot, 'run', '--bundle', bundle, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {},
    });
    const exited = waitForExit(child, spec.onOutput);
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
    if (result.code !== 0 && RUNC_FAILURE_MARKERS.some((re) => re.test(result.stderrTail)) && /runc|container_linux|libcontainer/.test(result.stderrTail)) {
      // runc's own failure (bad rootfs, missing cwd…): report it as ours, not as the step's exit.
      if (/exec: .*: (executable file not found|no such file or directory)/.test(result.stderrTail)) {
        // Docker reports a missing command as exit 127 with runc's message: keep it as the step's.
        return { exitCode: 127, oomKilled: false };
      }
      throw new SandboxError(`runc failed to run the step: ${lastLine(result.stderrTail)}`, { hint: 'check the runc error above' });
    }
    const oomKilled = memoryParent !== undefined ? (await memoryParent.oomKills()) > 0 : spec.memoryBytes !== undefined && result.code === 137;
    return { exitCode: result.code, oomKilled };
  } finally {
    // runc run deletes its container on a normal exit; this is for aborts and runc failures.
    await runc('delete', '--force', id);
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
