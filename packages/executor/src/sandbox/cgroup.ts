import { readFile, rmdir } from 'node:fs/promises';
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
 * OOM kills recorded in the container cgroup `<own cgroup>/<name>` (cgroup v1
 * memory.oom_control `oom_kill`, else v2 memory.events `oom_kill`); 0 when neither is readable.
 * The kernel counts a kill in the victim's own cgroup only (v1 does not propagate it to
 * parents), so this must be read before the runtime removes the container's cgroup.
 */
export async function oomKillCount(name: string): Promise<number> {
  const own = await ownCgroups();
  const v1 = own.find((c) => c.controllers.includes('memory'));
  const file = v1 ? path.join(v1.dir, name, 'memory.oom_control') : path.join(own.find((c) => c.controllers.length === 0)?.dir ?? '/nonexistent', name, 'memory.events');
  try {
    return Number(/^oom_kill (\d+)$/m.exec(await readFile(file, 'utf8'))?.[1] ?? 0);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return 0;
    throw new SandboxError(`reading ${file}`, { cause: err });
  }
}

/**
 * Removes `<own cgroup>/<name>` in every hierarchy, should the runtime have left it behind. Missing directories are fine; a cgroup still draining its exited tasks is retried.
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
