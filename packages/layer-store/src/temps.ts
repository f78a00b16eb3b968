/**
 * Temp entries of the store's `tmp/` and their owners. Every temp file and directory name carries
 * its creating process's pid and start time (`<prefix>-<pid>.<start>-<random>`), so that what a
 * process killed outright (SIGKILL, a crash, a power cut) left behind — half-written blobs, a
 * build's work dirs with their overlay mounts and stopped containers — is recognised as stale by the
 * next process and removed (`reapStaleTemps`), while a live process's entries are never touched.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from './store.js';

/**
 * The start time of process `pid` (clock ticks after boot, field 22 of /proc/<pid>/stat), or
 * undefined when there is no such process.
 */
function startTime(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the command name (field 2) is in parentheses and may hold spaces: fields follow the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** `<pid>.<start time>` of this process, for temp names. */
export function ownerTag(): string {
  return `${process.pid}.${startTime('self') ?? '0'}`;
}

/**
 * Whether the process that made the temp entry `name` is gone: its pid is not running, or runs a
 * process started at another time (the pid was reused). Undefined for a name without an owner.
 */
export function ownerGone(name: string): boolean | undefined {
  const tagged = /-(\d+)\.(\d+)-[A-Za-z0-9]+$/.exec(name);
  if (tagged !== null) return startTime(Number(tagged[1])) !== tagged[2];
  // `<prefix>-<pid>-<12 hex>`: temp files of earlier versions
  const old = /-(\d+)-[0-9a-f]{12}$/.exec(name);
  if (old !== null) return startTime(Number(old[1])) === undefined;
  return undefined;
}

/** Mount points at or below `dir` (from /proc/self/mountinfo), deepest first. */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    // mountinfo escapes space, tab, newline and backslash as \ooo
    const mp = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(`${dir}/`)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Options of `reapStaleTemps`. */
export interface ReapOptions {
  /**
   * Called for each stale directory before it is removed, to release what its owner held there
   * (the executor stops containers and unmounts overlays). A directory that still has a mount
   * below it afterwards is left in place: removing it would reach through the mount.
   */
  release?: (dir: string) => Promise<void>;
}

/**
 * Removes the entries of the store's `tmp/` whose owner process is gone (see `ownerGone`);
 * entries of live processes and entries without an owner tag stay.
 * @returns the paths removed.
 */
export async function reapStaleTemps(store: Store, opts: ReapOptions = {}): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(store.tmpDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (ownerGone(name) !== true) continue;
    const path = join(store.tmpDir, name);
    if (opts.release) await opts.release(path);
    if (mountsUnder(path).length > 0) continue;
    await store.removeTree(path);
    removed.push(path);
  }
  return removed;
}
