import { constants } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ContextError } from './errors.js';
import { cleanPath, resolveInRoot } from './paths.js';
import type { Source, SourceEntry } from './select.js';

/** Numeric owner of written files. */
export interface Owner {
  uid: number;
  gid: number;
}

/** Options of {@link copyInto}. */
export interface CopyOptions {
  /** Host path of the mounted root file system of the step (writes land in its upper dir). */
  rootfs: string;
  sources: readonly Source[];
  /** Destination path in the image, already expanded; relative to `workdir` unless absolute. */
  dest: string;
  /** Working directory of the step in the image (default `/`). */
  workdir?: string;
  /** --chown, resolved to numbers; without it everything written is owned by 0:0. */
  chown?: Owner;
  /** --chmod: mode of every copied file and directory (BuildKit semantics). */
  chmod?: number;
  /**
   * Entries keep their owner (COPY --from without --chown: Docker's `preserveOwnership`), and no
   * chown happens, so setuid/setgid bits survive. Directories created for the copy are 0:0.
   */
  preserveOwnership?: boolean;
  /** The destination is a directory (it ends with `/`, or there are several sources or a wildcard). */
  destIsDir?: boolean;
  signal?: AbortSignal;
}

/** Host path of the image path `p`, resolved inside `rootfs`. */
function imagePath(dest: string, workdir: string | undefined): string {
  return dest.startsWith('/') ? cleanPath(dest) : cleanPath(`${workdir ?? '/'}/${dest}`);
}

async function lstatOrNull(p: string): Promise<import('node:fs').Stats | null> {
  try {
    return await lstat(p);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return null;
    throw cause;
  }
}

function notADirectory(p: string, what: string, cause?: unknown): ContextError {
  return new ContextError('E_COPY_NOT_DIR', `failed to copy files: ${what}: mkdir ${p}: not a directory`, {
    hint: 'a file in the image is where the destination needs a directory',
    cause,
  });
}

/**
 * Creates the image directory `dir` (and missing parents) inside `rootfs`, following existing
 * symlinks inside the root. New directories get mode 0755 and `owner` of `ownerFor(isLast)`.
 * @returns the host path of the directory.
 */
async function mkdirInRoot(rootfs: string, dir: string, ownerFor: (isLast: boolean) => Owner, mode?: number): Promise<string> {
  const host = await resolveInRoot(rootfs, dir);
  const rel = path.relative(rootfs, host);
  const segs = rel === '' ? [] : rel.split(path.sep);
  let cur = rootfs;
  for (let i = 0; i < segs.length; i++) {
    cur = path.join(cur, segs[i]!);
    const st = await lstatOrNull(cur);
    if (st?.isDirectory()) continue;
    if (st !== null) throw notADirectory(path.posix.join('/', ...segs.slice(0, i + 1)), 'failed to create new directory');
    await mkdir(cur);
    const owner = ownerFor(i === segs.length - 1);
    await lchown(cur, owner.uid, owner.gid);
    await chmod(cur, i === segs.length - 1 && mode !== undefined ? mode : 0o755);
  }
  return host;
}

/** Seconds (with sub-second fraction) of a nanosecond time, for utimes. */
function secondsOf(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}

/** State of one copy: hard links already written (dev:ino → host path). */
interface CopyState {
  readonly links: Map<string, string>;
  readonly owner: Owner;
  readonly chmod: number | undefined;
  readonly preserveOwnership: boolean;
}

/** The owner an entry gets: its own with preserveOwnership, else the copy's (0:0 or --chown). */
function ownerOf(e: SourceEntry | undefined, st: CopyState): Owner {
  return st.preserveOwnership && e !== undefined ? { uid: e.uid, gid: e.gid } : st.owner;
}

/** Writes one non-directory entry at `target` (a host path whose parent is a real directory). */
async function writeLeaf(e: SourceEntry, target: string, st: CopyState): Promise<void> {
  const existing = await lstatOrNull(target);
  // Docker's untar replaces whatever is there (a directory included) with the new entry.
  if (existing !== null) await rm(target, { recursive: true, force: true });
  if (e.type === 'symlink') {
    await symlink(e.linkTarget!, target);
    const owner = ownerOf(e, st);
    await lchown(target, owner.uid, owner.gid);
    const t = secondsOf(e.mtimeNs);
    await lutimes(target, t, t);
    return;
  }
  const key = `${e.dev}:${e.ino}`;
  const first = e.nlink > 1 ? st.links.get(key) : undefined;
  if (first !== undefined) {
    // A hard link of a file already copied by this instruction stays a hard link (as in Docker).
    await link(first, target);
    return;
  }
  await copyFile(e.hostPath, target, constants.COPYFILE_FICLONE);
  const owner = ownerOf(e, st);
  if (st.preserveOwnership || st.chmod !== undefined) {
    await lchown(target, owner.uid, owner.gid);
    await chmod(target, st.chmod ?? e.mode);
  } else {
    // Docker copies (mode kept) and then chowns every entry (fixPermissions); the kernel's chown
    // clears setuid, and setgid on a group-executable file, so the same order gives the same bits
    await chmod(target, e.mode);
    await lchown(target, owner.uid, owner.gid);
  }
  const t = secondsOf(e.mtimeNs);
  await lutimes(target, t, t);
  if (e.nlink > 1) st.links.set(key, target);
}

/** Makes `target` a real directory (replacing a file or symlink there) with the entry's metadata. */
async function writeDir(e: SourceEntry | undefined, target: string, st: CopyState): Promise<void> {
  const existing = await lstatOrNull(target);
  if (existing !== null && !existing.isDirectory()) await rm(target, { force: true });
  if (existing === null || !existing.isDirectory()) await mkdir(target);
  const owner = ownerOf(e, st);
  await lchown(target, owner.uid, owner.gid);
  await chmod(target, st.chmod ?? e?.mode ?? 0o755);
}

async function copyDirectory(rootfs: string, src: Source, destImage: string, st: CopyState, signal?: AbortSignal): Promise<void> {
  const resolved = await resolveInRoot(rootfs, destImage);
  const existing = await lstatOrNull(resolved);
  if (existing !== null && !existing.isDirectory()) throw notADirectory(destImage, 'failed to copy directory');
  let host: string;
  try {
    // Docker: missing parents are root's; the destination directory itself gets the --chown owner.
    host = await mkdirInRoot(rootfs, destImage, (isLast) => (isLast ? st.owner : { uid: 0, gid: 0 }), st.chmod);
  } catch (cause) {
    if (cause instanceof ContextError) throw notADirectory(destImage, 'failed to copy directory', cause);
    throw cause;
  }
  const dirs = new Set<string>(['']);
  const dirTimes: Array<[string, bigint]> = [];
  for (const e of src.entries.slice(1)) {
    signal?.throwIfAborted();
    const target = path.join(host, ...e.rel.split('/'));
    // Parents not listed (ignored directories re-entered through a "!" exception) become plain dirs.
    const parentRel = e.rel.includes('/') ? e.rel.slice(0, e.rel.lastIndexOf('/')) : '';
    if (!dirs.has(parentRel)) {
      const parts = parentRel.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const r = parts.slice(0, i).join('/');
        if (dirs.has(r)) continue;
        await writeDir(undefined, path.join(host, ...parts.slice(0, i)), st);
        dirs.add(r);
      }
    }
    if (e.type === 'dir') {
      await writeDir(e, target, st);
      dirs.add(e.rel);
      dirTimes.push([target, e.mtimeNs]);
    } else if (e.type === 'file' || e.type === 'symlink') {
      await writeLeaf(e, target, st);
    }
    // 'other' (fifo, socket, device) is not copied.
  }
  // Directory times last (children change them), deepest first.
  for (const [target, ns] of dirTimes.reverse()) {
    const t = secondsOf(ns);
    await lutimes(target, t, t);
  }
}

async function copyFileSource(rootfs: string, src: Source, destImage: string, destIsDir: boolean, st: CopyState): Promise<void> {
  const e = src.entries[0]!;
  const base = path.posix.basename(src.rel === '.' ? '/' : src.rel);
  let targetImage = destImage;
  if (destIsDir) {
    targetImage = path.posix.join(destImage, base);
  } else {
    const existing = await lstatOrNull(await resolveInRoot(rootfs, destImage));
    if (existing?.isDirectory()) targetImage = path.posix.join(destImage, base);
  }
  const parentImage = path.posix.dirname(targetImage);
  // Docker: every directory created for a file source gets the --chown owner.
  const parentHost = await mkdirInRoot(rootfs, parentImage, () => st.owner);
  const target = path.join(parentHost, path.posix.basename(targetImage));
  // The final component is never followed: a symlink there is replaced, not written through.
  await writeLeaf(e, target, st);
}

/**
 * Performs the file work of COPY (and of ADD for plain files) into a mounted root file system,
 * with the classic builder's rules:
 * - a file goes to `dest`, or into it with its own name when `dest` is a directory (ends with `/`,
 *   or already exists as one); a directory's contents are merged into `dest`, which is created;
 * - missing parent directories are created 0755; with --chown, directories created for a file
 *   source take that owner, for a directory source only `dest` itself does;
 * - modes and mtimes are kept, the owner becomes 0:0 (or --chown); --chmod sets the mode of every
 *   copied file and directory; symlinks are copied as symlinks; hard links within one instruction
 *   stay hard links; fifos, sockets and devices are skipped;
 * - existing entries are replaced (a directory in the image where the source has a file or
 *   symlink is removed first, a symlink where the source has a directory becomes a directory);
 *   existing directories are merged into;
 * - the destination is resolved inside `rootfs`: symlinks in the image are followed as if
 *   `rootfs` were `/`, never out of it.
 * @throws ContextError E_COPY_DEST_NOT_DIR for several sources without a directory destination,
 *   E_COPY_NOT_DIR when a file in the image stands where a directory is needed.
 */
export async function copyInto(opts: CopyOptions): Promise<void> {
  const rootfs = path.resolve(opts.rootfs);
  const destIsDir = (opts.destIsDir ?? false) || opts.dest.endsWith('/') || opts.dest === '.' || opts.dest.endsWith('/.');
  if (opts.sources.length > 1 && !destIsDir) {
    throw new ContextError(
      'E_COPY_DEST_NOT_DIR',
      'When using COPY with more than one source file, the destination must be a directory and end with a /',
      { hint: `write the destination as "${opts.dest}/"` },
    );
  }
  const destImage = imagePath(opts.dest, opts.workdir);
  const st: CopyState = { links: new Map(), owner: opts.chown ?? { uid: 0, gid: 0 }, chmod: opts.chmod, preserveOwnership: opts.preserveOwnership === true && opts.chown === undefined };
  for (const src of opts.sources) {
    opts.signal?.throwIfAborted();
    const top = src.entries[0]!;
    if (top.type === 'dir') await copyDirectory(rootfs, src, destImage, st, opts.signal);
    else if (top.type === 'file' || top.type === 'symlink') await copyFileSource(rootfs, src, destImage, destIsDir, st);
  }
}

/** Options of {@link writeHeredoc}. */
export interface HeredocOptions {
  /** Name of the file when `dest` is a directory (the heredoc's delimiter word, as BuildKit does). */
  name?: string;
  workdir?: string;
  chown?: Owner;
  /** Mode of the file (default 0644, as BuildKit). */
  chmod?: number;
  /** mtime in seconds since the epoch (default 0: a heredoc has no source time; keeps layers reproducible). */
  mtime?: number;
}

/**
 * Writes the content of a heredoc source (`COPY <<EOF /file`) to `dest` inside `rootfs`.
 * @returns the image path written.
 * @throws ContextError E_COPY_NOT_DIR when a file stands where a directory is needed.
 */
export async function writeHeredoc(rootfs: string, dest: string, content: string | Uint8Array, opts: HeredocOptions = {}): Promise<string> {
  const root = path.resolve(rootfs);
  let targetImage = imagePath(dest, opts.workdir);
  const isDir = dest.endsWith('/') || (await lstatOrNull(await resolveInRoot(root, targetImage)))?.isDirectory() === true;
  if (isDir) targetImage = path.posix.join(targetImage, opts.name ?? 'EOF');
  const owner = opts.chown ?? { uid: 0, gid: 0 };
  const parentHost = await mkdirInRoot(root, path.posix.dirname(targetImage), () => owner);
  const target = path.join(parentHost, path.posix.basename(targetImage));
  if ((await lstatOrNull(target)) !== null) await rm(target, { recursive: true, force: true });
  await writeFile(target, content, { flag: 'wx' });
  await lchown(target, owner.uid, owner.gid);
  await chmod(target, opts.chmod ?? 0o644);
  const t = opts.mtime ?? 0;
  await lutimes(target, t, t);
  return targetImage;
}
