import {
  chmodSync,
  closeSync,
  existsSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  symlinkSync,
  writeSync,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { getAttributeSync, setAttributeSync } from 'fs-xattr';
import { chmod, lchown, lstat, lutimes, mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { NativeStat, TimeSlices, type EntryStat } from '@tsbuild/layer-store';
import { fastFs, LSTAT_FIELDS, type FastFs } from '@tsbuild/sys';
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
   * Regular files below a directory source also keep their file capabilities (see
   * {@link copyCapability}).
   */
  preserveOwnership?: boolean;
  /** The destination is a directory (it ends with `/`, or there are several sources or a wildcard). */
  destIsDir?: boolean;
  /** Files an earlier build of the same step wrote identically: linked, not copied (see CopyReuse). */
  reuse?: CopyReuse;
  signal?: AbortSignal;
}

/**
 * An earlier build's snapshot of the same COPY (same parent layers, instruction, owner and mode
 * options), whose files a rebuild hard-links instead of copying when nothing about them changed:
 * same content (digest), mode, owner, size and mtime. Creating 20,000 inodes costs seconds here;
 * linking is one call per file. Snapshots are read-only lower dirs (a RUN above copies up before
 * writing; the SOURCE_DATE_EPOCH clamp only touches mtimes newer than the epoch, and a linked file's
 * mtime is the earlier build's, already clamped or not newer), so sharing inodes is safe.
 *
 * copyInto runs with the overlay mounted, where a link from outside it is impossible (EXDEV): it
 * records each such file in `deferred` (path relative to the root → the earlier file and its lstat) and skips
 * it; after the unmount, {@link linkReused} makes the links in the upper dir.
 */
export interface CopyReuse {
  /** The earlier build's snapshot of this step (its upper dir, now a read-only snapshot). */
  readonly previous: string;
  /** The mounted overlay's upper dir. */
  readonly upper: string;
  /** Whether `e` (below the source at `sourceRel`) has the content the earlier build copied. */
  sameContent(e: SourceEntry, sourceRel: string): boolean;
  /** Filled by copyInto: each deferred path's earlier file, and its lstat (the inode the link will be). */
  readonly deferred: Map<string, { old: string; stats: ReuseStat }>;
}

/** What a rebuild reads of an earlier file's lstat: Node's bigint stats, or the addon's. */
type ReuseStat = EntryStat & Pick<BigIntStats, 'mtimeNs'>;

/** Host path of the image path `p`, resolved inside `rootfs`. */
function imagePath(dest: string, workdir: string | undefined): string {
  return dest.startsWith('/') ? cleanPath(dest) : cleanPath(`${workdir ?? '/'}/${dest}`);
}

/**
 * lstat, or null when nothing is there. Synchronous: it runs once or a few times per source, and
 * a COPY of a wildcard may have thousands of sources (a thread-pool hand-off costs far more here).
 */
function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
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
 * symlinks inside the root. New directories get mode 0755 (plus setgid below a setgid directory,
 * as mkdir(2)) and `owner` of `ownerFor(isLast)`.
 * @returns the host path of the directory.
 */
async function mkdirInRoot(rootfs: string, dir: string, ownerFor: (isLast: boolean) => Owner, mode?: number): Promise<string> {
  const host = await resolveInRoot(rootfs, dir);
  const rel = path.relative(rootfs, host);
  const segs = rel === '' ? [] : rel.split(path.sep);
  let cur = rootfs;
  for (let i = 0; i < segs.length; i++) {
    cur = path.join(cur, segs[i]!);
    const st = lstatOrNull(cur);
    if (st?.isDirectory()) continue;
    if (st !== null) throw notADirectory(path.posix.join('/', ...segs.slice(0, i + 1)), 'failed to create new directory');
    await mkdir(cur);
    const owner = ownerFor(i === segs.length - 1);
    await lchown(cur, owner.uid, owner.gid);
    // Docker's MkdirAllAndChownNew never chmods: a new directory keeps the setgid bit the kernel
    // gives it below a setgid parent (root's chown keeps it on directories).
    const inherited = (lstatOrNull(path.dirname(cur))?.mode ?? 0) & 0o2000;
    await chmod(cur, i === segs.length - 1 && mode !== undefined ? mode : 0o755 | inherited);
  }
  return host;
}

/** Seconds (with sub-second fraction) of a nanosecond time, for utimes; a time before 1970 is 0. */
function secondsOf(ns: bigint): number {
  // Node's utimes takes a negative number for "now"
  return ns < 0n ? 0 : Number(ns / 1000n) / 1e6;
}

/**
 * The time a copied entry gets, in seconds: the source's, in whole seconds, as Docker 20.10's
 * copy through Go's tar (FileInfoHeader truncates to the second) gives it (checked against
 * dockerd, h2/m1: a context file dated 03:04:05.678901234 reads 03:04:05.000000000 in the next
 * RUN); a time before 1970 is 0, as in Docker's layers (checked, h2/c11: COPY --from of a file
 * touched to 1960 has mtime 0).
 */
function copiedTime(ns: bigint): number {
  return ns < 0n ? 0 : Number(ns / 1_000_000_000n);
}

/** Size of the buffer file contents are copied through. */
const COPY_BUFFER_BYTES = 256 * 1024;

/**
 * State of one copy: hard links already written by the current source (dev:ino → host path), and
 * the copy buffer.
 */
interface CopyState {
  readonly rootfs: string;
  readonly reuse: CopyReuse | undefined;
  /** `rel` of the source being copied (for CopyReuse.sameContent) */
  sourceRel: string;
  /** destination directories known to be in the upper dir (CopyReuse) */
  readonly upperHosts: Set<string>;
  /** directories of the earlier snapshot checked to be real ones (CopyReuse) */
  readonly previousDirs: Map<string, boolean>;
  readonly links: Map<string, string>;
  readonly owner: Owner;
  readonly chmod: number | undefined;
  readonly preserveOwnership: boolean;
  readonly buffer: Buffer;
  /** Slices of the copy: a big file's bytes are copied in them, so an abort (Ctrl-C) is seen mid-file. */
  readonly slices: TimeSlices;
  /** The addon's batched calls (CopyReuse's lstats), when built; and their output buffer. */
  readonly fast: FastFs | undefined;
  readonly statFields: BigUint64Array;
}

/** The owner an entry gets: its own with preserveOwnership, else the copy's (0:0 or --chown). */
function ownerOf(e: SourceEntry | undefined, st: CopyState): Owner {
  return st.preserveOwnership && e !== undefined ? { uid: e.uid, gid: e.gid } : st.owner;
}

/**
 * Runs `create` (which makes `target` and fails with EEXIST when something is there); when
 * something is there, removes it and runs `create` again. Trying first saves a lookup per entry
 * (through an overlay, the dearest call of a copy) for the common case: nothing there yet.
 */
function createReplacing<T>(target: string, create: () => T): T {
  try {
    return create();
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
  }
  // Docker's untar replaces whatever is there (a directory included) with the new entry.
  rmSync(target, { recursive: true, force: true });
  return create();
}

/**
 * Files bigger than this are copied in time slices (a 1.5 GB file copied in one synchronous call
 * kept the process deaf to SIGINT for ~10 s); smaller ones in one go (no promise per file).
 */
const SLICED_COPY_BYTES = 16 * 1024 * 1024;

/**
 * Copies the bytes of the open file `src` to the open file `dst`, to the end of `src`; a big file
 * yields to the event loop between slices (and throws the abort reason when aborted).
 */
function copyBytes(src: number, dst: number, size: number, st: CopyState): Promise<void> | undefined {
  if (size > SLICED_COPY_BYTES) return copyBytesSliced(src, dst, st);
  for (;;) {
    const n = readSync(src, st.buffer, 0, st.buffer.length, null);
    if (n === 0) return undefined;
    for (let off = 0; off < n; ) off += writeSync(dst, st.buffer, off, n - off, null);
  }
}

async function copyBytesSliced(src: number, dst: number, st: CopyState): Promise<void> {
  for (;;) {
    if (st.slices.due()) await st.slices.yield();
    const n = readSync(src, st.buffer, 0, st.buffer.length, null);
    if (n === 0) return;
    for (let off = 0; off < n; ) off += writeSync(dst, st.buffer, off, n - off, null);
  }
}

/**
 * Writes a regular file at `target` (replacing what is there) with the entry's content, mode,
 * owner and mtime. Plain read/write through one buffer: the context and the overlay are different
 * file systems, so copy_file_range and FICLONE (copyFile's first tries) fail for every file.
 */
function writeRegular(e: SourceEntry, target: string, st: CopyState): Promise<void> | undefined {
  const src = openSync(e.hostPath, constants.O_RDONLY);
  let dst: number;
  try {
    dst = createReplacing(target, () => openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
  } catch (cause) {
    closeSync(src);
    throw cause;
  }
  const close = (): void => {
    try {
      closeSync(dst);
    } finally {
      closeSync(src);
    }
  };
  let pending: Promise<void> | undefined;
  try {
    pending = copyBytes(src, dst, e.size, st);
    if (pending === undefined) finishRegular(e, dst, st);
  } catch (cause) {
    close();
    throw cause;
  }
  if (pending === undefined) {
    close();
    return undefined;
  }
  return pending.then(() => finishRegular(e, dst, st)).finally(close);
}

/** Gives the copied file `dst` the entry's owner, mode and mtime. */
function finishRegular(e: SourceEntry, dst: number, st: CopyState): void {
  const owner = ownerOf(e, st);
  if (st.preserveOwnership || st.chmod !== undefined) {
    fchownSync(dst, owner.uid, owner.gid);
    fchmodSync(dst, st.chmod ?? e.mode);
  } else {
    // Docker copies (mode kept) and then chowns every entry (fixPermissions); the kernel's chown
    // clears setuid, and setgid on a group-executable file, so the same order gives the same bits
    fchmodSync(dst, e.mode);
    fchownSync(dst, owner.uid, owner.gid);
  }
  const t = copiedTime(e.mtimeNs);
  futimesSync(dst, t, t);
}

/**
 * Writes one non-directory entry at `target` (a host path whose parent is a real directory).
 * @returns a promise only for a big file, copied in time slices (await it).
 */
function writeLeaf(e: SourceEntry, target: string, st: CopyState): Promise<void> | undefined {
  if (e.type === 'symlink') {
    createReplacing(target, () => symlinkSync(e.linkTarget!, target));
    const owner = ownerOf(e, st);
    lchownSync(target, owner.uid, owner.gid);
    const t = copiedTime(e.mtimeNs);
    lutimesSync(target, t, t);
    return undefined;
  }
  const key = `${e.dev}:${e.ino}`;
  const first = e.nlink > 1 ? st.links.get(key) : undefined;
  if (first !== undefined) {
    // A hard link of a file already copied by this instruction stays a hard link (as in Docker).
    createReplacing(target, () => linkSync(first, target));
    return undefined;
  }
  const pending = writeRegular(e, target, st);
  if (e.nlink > 1) st.links.set(key, target);
  return pending;
}

/**
 * A fifo or device node below a directory source, made again at `target` with the entry's mode,
 * owner and mtime, as Docker 20.10's tar copy does (its untar mknods them). Sockets are skipped
 * (Go's tar has no header for them). Node has no mknod: one `mknod` process per entry (rare).
 */
function writeSpecial(e: SourceEntry, target: string, st: CopyState): void {
  const s = lstatSync(e.hostPath, { bigint: true });
  let args: string[];
  if (s.isFIFO()) args = ['p'];
  else if (s.isCharacterDevice() || s.isBlockDevice()) {
    // glibc's dev_t encoding
    const major = ((s.rdev >> 8n) & 0xfffn) | ((s.rdev >> 32n) & ~0xfffn);
    const minor = (s.rdev & 0xffn) | ((s.rdev >> 12n) & ~0xffn);
    args = [s.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)];
  } else return;
  createReplacing(target, () => {
    if (lstatSync(target, { throwIfNoEntry: false }) !== undefined) throw Object.assign(new Error(`${target} exists`), { code: 'EEXIST' });
    execFileSync('mknod', [target, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  });
  const owner = ownerOf(e, st);
  lchownSync(target, owner.uid, owner.gid);
  chmodSync(target, st.chmod ?? e.mode);
  const t = copiedTime(e.mtimeNs);
  lutimesSync(target, t, t);
}

/** Makes `target` a real directory (replacing a file or symlink there) with the entry's metadata. */
function writeDir(e: SourceEntry | undefined, target: string, st: CopyState): void {
  try {
    mkdirSync(target);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
    // An existing directory is merged into; anything else there is replaced.
    if (!lstatSync(target).isDirectory()) {
      rmSync(target, { force: true });
      mkdirSync(target);
    }
  }
  const owner = ownerOf(e, st);
  lchownSync(target, owner.uid, owner.gid);
  chmodSync(target, st.chmod ?? e?.mode ?? 0o755);
}

/**
 * Writes the entries below a directory source into `host`. Synchronous calls in time slices:
 * through the thread pool, each of the ~5 calls per file costs a hand-off far dearer than the
 * call itself (24 s instead of ~2 s for 20,000 small files).
 */
async function copyEntries(host: string, entries: readonly SourceEntry[], st: CopyState, signal?: AbortSignal): Promise<void> {
  const slices = new TimeSlices(signal);
  const dirs = new Set<string>(['']);
  const dirTimes: Array<[string, bigint]> = [];
  for (const e of entries) {
    signal?.throwIfAborted();
    if (slices.due()) await slices.yield();
    // (e.rel is a clean relative slash path: joining is concatenating, without path.join's work)
    const target = host.endsWith('/') ? host + e.rel : `${host}/${e.rel}`;
    // Parents not listed (ignored directories re-entered through a "!" exception) become plain dirs.
    const parentRel = e.rel.includes('/') ? e.rel.slice(0, e.rel.lastIndexOf('/')) : '';
    if (!dirs.has(parentRel)) {
      const parts = parentRel.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const r = parts.slice(0, i).join('/');
        if (dirs.has(r)) continue;
        writeDir(undefined, path.join(host, ...parts.slice(0, i)), st);
        dirs.add(r);
      }
    }
    if (e.type === 'dir') {
      writeDir(e, target, st);
      dirs.add(e.rel);
      dirTimes.push([target, e.mtimeNs]);
    } else if (e.type === 'file' && st.preserveOwnership) {
      // (copyEntries copies what is below a directory source, whose files keep their capability
      // when ownership is preserved; see copyCapability)
      // not linked from an earlier build: its file's capability was not part of the comparison
      const pending = writeLeaf(e, target, st);
      if (pending !== undefined) await pending;
      copyCapability(e.hostPath, target);
    } else if (st.reuse !== undefined && e.type === 'file' && deferLink(e, host, target, st, st.reuse)) {
      // linked from the earlier snapshot after the unmount
    } else if (e.type === 'file' || e.type === 'symlink') {
      const pending = writeLeaf(e, target, st);
      if (pending !== undefined) await pending;
    } else writeSpecial(e, target, st); // fifo or device; a socket is skipped
  }
  // Directory times last (children change them), deepest first.
  for (const [target, ns] of dirTimes.reverse()) {
    if (slices.due()) await slices.yield();
    const t = copiedTime(ns);
    lutimesSync(target, t, t);
  }
}

/**
 * Gives the copied regular file `target` the file capabilities (security.capability) of `source`,
 * if it has any. Docker 20.10 copies a directory source through its own tar (TarUntar), whose
 * writer records security.capability and whose reader sets it after the chown; a COPY --from
 * without --chown does no chown after that (which would clear it), so `setcap` in a build stage
 * survives `COPY --from=build /out/ /usr/local/` (checked against dockerd, hreal/multi). Its
 * single-file copy (CopyFileWithTar) and the build context carry none, and --chown clears them.
 */
function copyCapability(source: string, target: string): void {
  let cap: Buffer;
  try {
    cap = getAttributeSync(source, 'security.capability');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENODATA' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return;
    throw cause;
  }
  setAttributeSync(target, 'security.capability', cap);
}

/**
 * Whether the regular file `e` can be linked from the earlier snapshot (see CopyReuse): then it is
 * recorded in `reuse.deferred` and not written. Not for hard-linked sources (their links are made
 * to the first copy), nor modes with setuid/setgid/sticky (the copy's chmod/chown order decides
 * those). The upper dir gets `host` copied up first, as the copy of any file into it would.
 */
function deferLink(e: SourceEntry, host: string, target: string, st: CopyState, reuse: CopyReuse): boolean {
  if (e.nlink !== 1) return false;
  const mode = st.chmod ?? e.mode;
  if ((mode & 0o7000) !== 0) return false;
  if (!reuse.sameContent(e, st.sourceRel)) return false;
  const rel = target.startsWith(`${st.rootfs}/`) ? target.slice(st.rootfs.length + 1) : path.relative(st.rootfs, target);
  // the earlier file, reached through real directories only (a symlink there could point anywhere)
  if (!realDirChain(reuse.previous, path.dirname(rel), st.previousDirs)) return false;
  const old = `${reuse.previous}/${rel}`;
  const o = lstatReused(old, st);
  if (o === undefined || !o.isFile()) return false;
  const owner = ownerOf(e, st);
  // the earlier copy stored the source's time in whole seconds (copiedTime)
  const drift = o.mtimeNs - BigInt(copiedTime(e.mtimeNs)) * 1_000_000_000n;
  const sameTime = drift < 2000n && drift > -2000n;
  if (!sameTime || Number(o.mode & 0o7777n) !== mode || Number(o.uid) !== owner.uid || Number(o.gid) !== owner.gid || o.size !== BigInt(e.size)) return false;
  if (!st.upperHosts.has(host)) {
    if (!existsSync(path.join(reuse.upper, path.relative(st.rootfs, host)))) {
      // the copy of a file into `host` would copy it (and its parents) up: a chown to its own owner does
      const h = lstatSync(host);
      lchownSync(host, h.uid, h.gid);
    }
    st.upperHosts.add(host);
  }
  reuse.deferred.set(rel, { old, stats: o });
  return true;
}

/**
 * The lstat of the earlier file `old`, undefined when there is none: one native call without a
 * stats object where the addon is built (Node's bigint lstatSync: 150-180 ms for 20,000 files
 * here, against 51-65 ms for the system calls alone), else Node's.
 */
function lstatReused(old: string, st: CopyState): ReuseStat | undefined {
  const fast = st.fast;
  if (fast !== undefined) {
    const slash = old.lastIndexOf('/');
    if (fast.lstatBatch(old.slice(0, slash + 1), [old.slice(slash + 1)], st.statFields, false) === 1) {
      const errno = st.statFields[11];
      if (errno === 0n) return new NativeStat(st.statFields, 0);
      if (errno === 2n) return undefined; // ENOENT
    }
    // another failure: Node's call throws the usual error
  }
  return lstatSync(old, { bigint: true, throwIfNoEntry: false });
}

/**
 * Whether every component of `dirRel` below `root` is a real directory, not a symlink or missing:
 * a path through them cannot leave `root`. Memoised per directory in `memo`.
 */
function realDirChain(root: string, dirRel: string, memo: Map<string, boolean>): boolean {
  if (dirRel === '' || dirRel === '.') return true;
  const known = memo.get(dirRel);
  if (known !== undefined) return known;
  const ok = realDirChain(root, path.dirname(dirRel), memo) && lstatSync(path.join(root, dirRel), { throwIfNoEntry: false })?.isDirectory() === true;
  memo.set(dirRel, ok);
  return ok;
}

/** Links per native batch of {@link linkReused}. */
const LINK_BATCH = 4096;
const ENOENT = 2;
const EEXIST = 17;

/**
 * Makes the links copyInto deferred (see CopyReuse), in the upper dir of the unmounted overlay, and
 * gives their directories back the times the copy set (a link changes its directory's mtime). A
 * path something else was written to later in the same COPY keeps that: something there already
 * (EEXIST), or a parent that is no longer a real directory (a later source put a file or a
 * symlink there; a link through a symlink would land wherever it points, even outside).
 * @returns the lstat of each link made, by path relative to the upper dir (the earlier file's: the
 * same inode, but for its link count and ctime), for the layer writer not to stat them again.
 * @throws ContextError E_COPY_REUSE when the earlier snapshot vanished meanwhile (a concurrent prune).
 */
export async function linkReused(reuse: CopyReuse, signal?: AbortSignal): Promise<Map<string, EntryStat>> {
  const linked = new Map<string, EntryStat>();
  const slices = new TimeSlices(signal);
  const real = new Map<string, boolean>();
  const parents = new Map<string, BigIntStats>();
  for (const rel of reuse.deferred.keys()) {
    const dirRel = path.dirname(rel);
    if (!realDirChain(reuse.upper, dirRel, real)) continue;
    const p = path.join(reuse.upper, dirRel);
    if (!parents.has(p)) parents.set(p, lstatSync(p, { bigint: true }));
  }
  const vanished = (old: string, cause: unknown): ContextError =>
    new ContextError('E_COPY_REUSE', `the snapshot of an earlier build of this step vanished while it was reused (${old})`, {
      hint: 'a prune ran during the build; build again',
      cause,
    });
  const todo: Array<[rel: string, old: string, stats: EntryStat]> = [];
  for (const [rel, { old, stats }] of reuse.deferred) {
    if (slices.due()) await slices.yield();
    if (realDirChain(reuse.upper, path.dirname(rel), real)) todo.push([rel, old, stats]);
  }
  const fast = fastFs();
  if (fast !== undefined) {
    // on the thread pool, in batches (an abort is seen between them): 20,000 linkSync took
    // ~275 ms of main thread here, and the caller hashes the sources meanwhile
    for (let c = 0; c < todo.length; c += LINK_BATCH) {
      signal?.throwIfAborted();
      const part = todo.slice(c, c + LINK_BATCH);
      const errnos = await fast.linkBatch(
        part.map(([, old]) => old),
        part.map(([rel]) => `${reuse.upper}/${rel}`),
      );
      for (let k = 0; k < part.length; k++) {
        const [rel, old, stats] = part[k]!;
        if (errnos[k] === 0) linked.set(rel, stats);
        else if (errnos[k] === ENOENT) throw vanished(old, Object.assign(new Error(`link ${old}: ENOENT`), { code: 'ENOENT' }));
        else if (errnos[k] !== EEXIST) linkSync(old, path.join(reuse.upper, rel)); // fails again, with Node's error
      }
    }
  } else {
    for (const [rel, old, stats] of todo) {
      if (slices.due()) await slices.yield();
      try {
        linkSync(old, path.join(reuse.upper, rel));
        linked.set(rel, stats);
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code === 'ENOENT') throw vanished(old, cause);
        throw cause;
      }
    }
  }
  for (const [p, t] of parents) {
    lutimesSync(p, secondsOf(t.atimeNs), secondsOf(t.mtimeNs));
  }
  return linked;
}

async function copyDirectory(rootfs: string, src: Source, destImage: string, st: CopyState, signal?: AbortSignal): Promise<void> {
  const resolved = await resolveInRoot(rootfs, destImage);
  const existing = lstatDest(resolved, imagePathOf(rootfs, resolved));
  if (existing !== null && !existing.isDirectory()) throw notADirectory(destImage, 'failed to copy directory');
  let host: string;
  try {
    // Docker: missing parents are root's; the destination directory itself gets the --chown owner.
    host = await mkdirInRoot(rootfs, destImage, (isLast) => (isLast ? st.owner : { uid: 0, gid: 0 }), st.chmod);
  } catch (cause) {
    if (cause instanceof ContextError) throw notADirectory(destImage, 'failed to copy directory', cause);
    throw cause;
  }
  await copyEntries(host, src.entries.slice(1), st, signal);
  touchDestination(host);
}

/**
 * Sets the mtime of the directory a directory source was copied into to now (atime kept), as
 * Docker 20.10's copy changes it even when nothing new lands directly in it: its chrootarchive
 * untar makes and removes a pivot_root temp dir inside the destination (checked against dockerd,
 * hreal/probe3: 'COPY --from=b /out/ /u1/' and 'COPY ctxd/ /u2/' with /u1/bin, /u2/bin already
 * there give /u1 and /u2 the copy's time; ours kept the image's 2001-01-01).
 */
function touchDestination(host: string): void {
  const st = lstatSync(host);
  lutimesSync(host, st.atime, new Date());
}

/**
 * The lstat of a COPY destination (`resolved`, image path `image`), null when it does not exist.
 * As Docker's isExistingDirectory, only "does not exist" means no destination: a file where one
 * of its parents should be fails (checked against dockerd: 'COPY x.txt /t/file/deeper/' and
 * 'COPY dir /t/file/deeper/' with /t/file a file: "failed to copy files: lstat /t/file/deeper:
 * not a directory").
 */
function lstatDest(resolved: string, image: string): Stats | null {
  try {
    return lstatSync(resolved);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') {
      throw new ContextError('E_COPY_NOT_DIR', `failed to copy files: lstat ${image}: not a directory`, {
        hint: 'a file in the image is where the destination needs a directory',
        cause,
      });
    }
    throw cause;
  }
}

/** The image path of `host`, a host path inside `rootfs`. */
function imagePathOf(rootfs: string, host: string): string {
  return path.posix.join('/', ...path.relative(rootfs, host).split(path.sep));
}

async function copyFileSource(rootfs: string, src: Source, destImage: string, destIsDir: boolean, st: CopyState): Promise<void> {
  const e = src.entries[0]!;
  const base = path.posix.basename(src.rel === '.' ? '/' : src.rel);
  // Docker 20.10 (performCopyForInfo) resolves the whole destination in the rootfs, a symlink as
  // its last component included (FollowSymlinkInScope): COPY onto a symlink to a file writes that
  // file (the symlink stays), onto a symlink to a directory copies into it, onto a dangling one
  // creates its target. Into a directory, the source's name is joined unresolved: a symlink with
  // that name is replaced, not written through.
  const resolved = await resolveInRoot(rootfs, destImage);
  let targetImage = imagePathOf(rootfs, resolved);
  const existing = lstatDest(resolved, targetImage);
  if (destIsDir || existing?.isDirectory() === true) targetImage = path.posix.join(targetImage, base);
  // Docker: every directory created for a file source gets the --chown owner.
  const parentHost = await mkdirInRoot(rootfs, path.posix.dirname(targetImage), () => st.owner);
  await writeLeaf(e, path.join(parentHost, path.posix.basename(targetImage)), st);
}

/**
 * Performs the file work of COPY (and of ADD for plain files) into a mounted root file system,
 * with the classic builder's rules:
 * - a file goes to `dest`, or into it with its own name when `dest` is a directory (ends with `/`,
 *   or already exists as one); a directory's contents are merged into `dest`, which is created;
 * - missing parent directories are created 0755; with --chown, directories created for a file
 *   source take that owner, for a directory source only `dest` itself does;
 * - modes and mtimes are kept, the owner becomes 0:0 (or --chown); --chmod sets the mode of every
 *   copied file and directory; symlinks are copied as symlinks; hard links within one source
 *   stay hard links (not across sources: Docker 20.10 copies each source through its own tar
 *   stream); fifos and device nodes inside a directory source are made again (sockets skipped);
 * - existing entries are replaced (a directory in the image where the source has a file or
 *   symlink is removed first, a symlink where the source has a directory becomes a directory);
 *   existing directories are merged into;
 * - the destination is resolved inside `rootfs`: symlinks in the image are followed as if
 *   `rootfs` were `/`, never out of it; for a file source, a symlink as the destination's last
 *   component is followed too (its target is written, or copied into when a directory); inside a
 *   directory destination, symlinks where the source has entries are replaced.
 * @throws ContextError E_COPY_DEST_NOT_DIR for several sources without a directory destination,
 *   E_COPY_NOT_DIR when a file in the image stands where a directory is needed.
 */
export async function copyInto(opts: CopyOptions): Promise<void> {
  const rootfs = path.resolve(opts.rootfs);
  // Docker 20.10 (performCopyForInfo): a file goes into the destination when it ends in "/" or is
  // a directory already; "/x/." and "." are cleaned to "/x" and the WORKDIR (a file when missing)
  const destIsDir = (opts.destIsDir ?? false) || opts.dest.endsWith('/');
  if (opts.sources.length > 1 && !destIsDir) {
    throw new ContextError(
      'E_COPY_DEST_NOT_DIR',
      'When using COPY with more than one source file, the destination must be a directory and end with a /',
      { hint: `write the destination as "${opts.dest}/"` },
    );
  }
  const destImage = imagePath(opts.dest, opts.workdir);
  const st: CopyState = {
    rootfs,
    reuse: opts.reuse,
    sourceRel: '.',
    upperHosts: new Set(),
    previousDirs: new Map(),
    links: new Map(),
    owner: opts.chown ?? { uid: 0, gid: 0 },
    chmod: opts.chmod,
    preserveOwnership: opts.preserveOwnership === true && opts.chown === undefined,
    buffer: Buffer.allocUnsafe(COPY_BUFFER_BYTES),
    slices: new TimeSlices(opts.signal),
    fast: opts.reuse !== undefined ? fastFs() : undefined,
    statFields: new BigUint64Array(LSTAT_FIELDS),
  };
  for (const src of opts.sources) {
    opts.signal?.throwIfAborted();
    const top = src.entries[0]!;
    st.links.clear();
    st.sourceRel = src.rel;
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
  const isDir = dest.endsWith('/') || lstatOrNull(await resolveInRoot(root, targetImage))?.isDirectory() === true;
  if (isDir) targetImage = path.posix.join(targetImage, opts.name ?? 'EOF');
  const owner = opts.chown ?? { uid: 0, gid: 0 };
  const parentHost = await mkdirInRoot(root, path.posix.dirname(targetImage), () => owner);
  const target = path.join(parentHost, path.posix.basename(targetImage));
  if (lstatOrNull(target) !== null) await rm(target, { recursive: true, force: true });
  await writeFile(target, content, { flag: 'wx' });
  await lchown(target, owner.uid, owner.gid);
  await chmod(target, opts.chmod ?? 0o644);
  const t = opts.mtime ?? 0;
  await lutimes(target, t, t);
  return targetImage;
}
