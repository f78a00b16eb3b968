/**
 * What a build killed outright (SIGKILL, a crash) leaves in its work dir under the store's `tmp/`:
 * a step's sandbox still running (runc's `run` and its container, or `unshare` and its pid
 * namespace), a stopped container's runc state and cgroup, overlay mounts. `releaseStaleDir` ends
 * and unmounts all of it, so the store can remove the dir (layer-store `reapStaleTemps`, called at
 * the start of every build and by `prune`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { mountsUnder, reapStaleTemps, type Store } from '@tsbuild/layer-store';
import { removeStepCgroups } from './cgroup.js';
import { findTool, runTool } from './host-tools.js';

/** What starts a step's sandbox (see run.ts): only these are ever killed here. */
const SANDBOX_COMMANDS = new Set(['runc', 'unshare']);

/** Pids of the sandbox processes (runc, unshare) whose command line names a path at or below `dir`. */
function processesUsing(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let args: string[];
    try {
      if (!SANDBOX_COMMANDS.has(readFileSync(`/proc/${name}/comm`, 'utf8').trim())) continue;
      args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (args.some((a) => a === dir || a.includes(`${dir}/`))) out.push(Number(name));
  }
  return out;
}

/** runc state roots below `dir` (`…/runc`, holding one directory per container). */
function runcRoots(dir: string, depth = 3): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e);
    if (e === 'runc') out.push(p);
    else if (depth > 0 && !e.startsWith('rootfs')) out.push(...runcRoots(p, depth - 1));
  }
  return out;
}

/**
 * Ends what a dead build left in its work dir `dir`: kills the sandbox processes that name it
 * (`unshare --kill-child` takes its pid namespace along), deletes the runc containers whose state is
 * below it (and their cgroups), then unmounts every mount below it, deepest first (lazily: a
 * mount still busy is detached).
 */
export async function releaseStaleDir(dir: string): Promise<void> {
  for (const pid of processesUsing(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  const runc = await findTool('runc');
  for (const root of runcRoots(dir)) {
    let ids: string[];
    try {
      ids = readdirSync(root);
    } catch {
      continue;
    }
    for (const id of ids) {
      if (runc !== undefined) await runTool(runc, ['--root', root, 'delete', '--force', id]);
      await removeStepCgroups(`tsbuild-${id}`).catch(() => undefined);
    }
  }
  const umount = await findTool('umount');
  if (umount === undefined) return;
  for (const mp of mountsUnder(dir)) await runTool(umount, ['--lazy', mp]);
}

/**
 * Removes the work dirs of builds and store operations whose process is gone (see layer-store
 * `reapStaleTemps`), ending their sandboxes and mounts first.
 * @returns the paths removed.
 */
export function reapStaleWork(store: Store): Promise<string[]> {
  return reapStaleTemps(store, { release: releaseStaleDir });
}
