import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SandboxError, errnoOf } from './errors.js';

/** One cgroup hierarchy this process belongs to, and where its own cgroup is on the host. */
interface OwnCgroup { controllers: string[]; dir: string }

/**
 * This process's cgroup directories, one per mounted hierarchy (v1 controllers and the v2
 * unified tree), from /proc/self/cgroup and /proc/self/mountinfo.
 */
async function ownCgroups(): Promise<OwnCgroup[]> {
  const [cgroupText, mountinfo] = await Promise.all([readFile('/proc/self/cgroup', 'utf8'), readFile('/proc/self/mountinfo', 'utf8')]);
  const mounts: { root: string; point: string; fstype: string; opts: string[] }[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' '), r = right.split(' ');
    if (r[0] !== 'cgroup' && r[0] !== 'cgroup2') continue;
    mounts.push({ root: l[3]!, point: l[4]!, fstype: r[0], opts: (r[2] ?? '').split(',') });
  }
  const out: OwnCgroup[] = [];
  for (const line of cgroupText.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[2] === '' ? [] : m[2]!.split(',');
    const mount = controllers.length === 0
      ? mounts.find((x) => x.fstype === 'cgroup2')
      : mounts.find((x) => x.fstype === 'cgroup' && controllers.every((c) => x.opts.includes(c)));
    if (!mount) continue;
    const rel = path.relative(mount.root, m[3]!);
    if (rel.startsWith('..')) continue;
    out.push({ controllers, dir: path.join(mount.point, rel) });
  }
  return out;
}

/**
 * A cgroup v1 memory cgroup made for one step, holding its memory limit. runc puts the
 * container's cgroup inside it; since runc removes its own cgroup when the container exits, the
 * OOM-kill counter has to live in this parent to be readable afterwards.
 */
export interface MemoryParent {
  /** Number of OOM kills inside the cgroup so far (memory.oom_control `oom_kill`). */
  oomKills(): Promise<number>;
}

/**
 * Creates `<own memory cgroup>/<name>` with `limit` bytes (memory and memory+swap) when the
 * host has the cgroup v1 memory controller; returns undefined otherwise (e.g. cgroup v2 only).
 * Remove it with removeStepCgroups.
 */
export async function createMemoryParent(name: string, limit: number): Promise<MemoryParent | undefined> {
  const mem = (await ownCgroups()).find((c) => c.controllers.includes('memory'));
  if (!mem) return undefined;
  const dir = path.join(mem.dir, name);
  try {
    await mkdir(dir);
    await writeFile(path.join(dir, 'memory.limit_in_bytes'), String(limit));
    try {
      await writeFile(path.join(dir, 'memory.memsw.limit_in_bytes'), String(limit));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err; // no swap accounting: nothing to limit
    }
  } catch (err) {
    throw new SandboxError(`setting up the memory cgroup ${dir}`, { cause: err, hint: 'is the memory cgroup controller writable?' });
  }
  return {
    async oomKills() {
      const text = await readFile(path.join(dir, 'memory.oom_control'), 'utf8');
      return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
    },
  };
}

/**
 * Removes `<own cgroup>/<name>` in every hierarchy (runc leaves the parents of the container's
 * cgroup behind). Missing directories are fine; a cgroup still draining its exited tasks is retried.
 */
export async function removeStepCgroups(name: string): Promise<void> {
  for (const c of await ownCgroups()) {
    const dir = path.join(c.dir, name);
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= 50) throw new SandboxError(`removing cgroup ${dir}`, { cause: err });
        await delay(10);
      }
    }
  }
}
