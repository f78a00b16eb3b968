import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { errnoOf } from './errors.js';

/** Mount points the sandbox may create: directories first-level, files under /etc. */
const DIR_MOUNT_POINTS = ['proc', 'dev', 'sys'];
const FILE_MOUNT_POINTS = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname'];

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** An overlay whiteout: a 0/0 character device. */
function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/**
 * What the lower layers show at `rel` (top-most layer wins; a whiteout means deleted).
 * `lowerdirs` is bottom-most first, as for mountRootfs.
 */
async function lowerEntry(lowerdirs: string[], rel: string): Promise<Stats | undefined> {
  for (let i = lowerdirs.length - 1; i >= 0; i--) {
    const st = await lstatOrUndefined(path.join(lowerdirs[i]!, rel));
    if (st === undefined) continue;
    return isWhiteout(st) ? undefined : st;
  }
  return undefined;
}

async function isEmptyDir(st: Stats, p: string): Promise<boolean> {
  return st.isDirectory() && (await readdir(p)).length === 0;
}

/**
 * Removes from `upperdir` what the sandbox itself created there and the step did not change:
 * the mount points /proc, /dev, /sys (empty directories) and /etc/hosts, /etc/resolv.conf,
 * /etc/hostname (empty files) when the lower layers lack them, then /etc if it is left empty and
 * is either absent below or only a copy-up with unchanged mode and owner. Anything the step wrote
 * (a non-empty /etc, a file with content) stays. Call it after the rootfs is unmounted.
 * `lowerdirs` is bottom-most first, as for mountRootfs.
 */
export async function removeSandboxArtifacts(upperdir: string, lowerdirs: string[]): Promise<void> {
  for (const rel of FILE_MOUNT_POINTS) {
    const p = path.join(upperdir, rel);
    const st = await lstatOrUndefined(p);
    if (st?.isFile() && st.size === 0 && (await lowerEntry(lowerdirs, rel)) === undefined) await unlink(p);
  }
  for (const rel of [...DIR_MOUNT_POINTS, 'etc']) {
    const p = path.join(upperdir, rel);
    const st = await lstatOrUndefined(p);
    if (st === undefined || !(await isEmptyDir(st, p))) continue;
    const below = await lowerEntry(lowerdirs, rel);
    const copyUpOnly = below !== undefined && below.isDirectory() && below.mode === st.mode && below.uid === st.uid && below.gid === st.gid;
    if (below === undefined || copyUpOnly) await rmdir(p);
  }
}
