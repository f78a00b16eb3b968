import { lstat, readlink, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError, errnoOf } from './errors.js';

const MAX_LINKS = 255;

/**
 * Resolves `p` (an absolute path as seen inside the container) to a host path under `root`,
 * following symlinks as the container would: an absolute link target restarts at `root`, `..`
 * never climbs above it. Components that do not exist are appended as they are.
 * The result is always inside `root`, whatever the image's symlinks say.
 * @throws SandboxError on a symlink loop.
 */
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  let resolved: string[] = [];
  let links = 0;
  let missing = false;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    if (missing) {
      resolved.push(part);
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let isLink: boolean;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') throw err;
      missing = true;
      resolved.push(part);
      continue;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new SandboxError(`too many levels of symbolic links resolving ${p} in the rootfs`);
    const target = await readlink(candidate);
    if (target.startsWith('/')) resolved = [];
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return path.join(root, ...resolved);
}

/**
 * Makes sure directory `p` (container path) exists under `root`, creating missing parents
 * (mode 0755, owned by the caller, i.e. root). Returns its host path.
 */
export async function ensureDirInRoot(root: string, p: string): Promise<string> {
  const hostPath = await resolveInRoot(root, p);
  try {
    await mkdir(hostPath, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new SandboxError(`creating directory ${p} in the rootfs`, { cause: err });
  }
  return hostPath;
}

/**
 * Makes sure a file exists at container path `p` under `root` (an empty regular file is
 * created, with its parent directories, when nothing is there). Returns its host path.
 */
export async function ensureFileInRoot(root: string, p: string): Promise<string> {
  const hostPath = await resolveInRoot(root, p);
  try {
    await mkdir(path.dirname(hostPath), { recursive: true, mode: 0o755 });
    // 'a' creates without truncating and, since the path is already resolved, the final
    // component is no symlink (unless a racing writer made one: none runs before the step).
    const fh = await open(hostPath, 'a', 0o644);
    await fh.close();
  } catch (err) {
    throw new SandboxError(`creating mount point ${p} in the rootfs`, { cause: err });
  }
  return hostPath;
}
