import { lstat, readlink } from 'node:fs/promises';
import * as path from 'node:path';
import { ContextError } from './errors.js';

/** Linux's limit on symlinks followed while resolving one path (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

/**
 * Cleans a slash path like Go's `path.Clean`: no duplicate slashes, no `.` segments, `..`
 * resolved lexically (above the root it stays at the root for absolute paths), no trailing
 * slash; `''` becomes `'.'`.
 */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else out.push(seg);
  }
  const s = out.join('/');
  return rooted ? `/${s}` : s === '' ? '.' : s;
}

/**
 * Resolves `p` (a path inside `root`, absolute or relative to it) to a host path that is always
 * inside `root`, following symlinks as if `root` were `/` (like Go's securejoin / Docker's
 * FollowSymlinkInScope): an absolute link target restarts at `root`, `..` never climbs above it.
 * Components that do not exist are appended as they are. With `followFinal: false` the last
 * component is not followed when it is a symlink.
 * @throws ContextError E_SYMLINK_LOOP after too many symlinks.
 */
export async function resolveInRoot(root: string, p: string, options: { followFinal?: boolean } = {}): Promise<string> {
  const followFinal = options.followFinal ?? true;
  const rootAbs = path.resolve(root);
  let pending = cleanPath(`/${p}`).split('/').filter((s) => s !== '');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const seg = pending.shift()!;
    if (seg === '..') {
      done.pop();
      continue;
    }
    const candidate = path.join(rootAbs, ...done, seg);
    if (!followFinal && pending.length === 0) {
      done.push(seg);
      break;
    }
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch {
      // Missing (or unreadable): no symlinks below it, so the rest is resolved lexically.
      for (const rest of [seg, ...pending]) {
        if (rest === '..') done.pop();
        else done.push(rest);
      }
      pending = [];
      break;
    }
    if (!isLink) {
      done.push(seg);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new ContextError('E_SYMLINK_LOOP', `too many levels of symbolic links resolving ${p}`, {
        hint: 'a symlink in the path points (indirectly) to itself',
      });
    }
    const target = await readlink(candidate);
    const targetSegs = target.split('/').filter((s) => s !== '' && s !== '.');
    if (target.startsWith('/')) done.length = 0;
    pending = [...targetSegs, ...pending];
  }
  return path.join(rootAbs, ...done);
}

/** True when `child` is `parent` or below it (both absolute host paths, lexically). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
