/**
 * Applies a layer tar (plain, gzip, zstd, xz or bzip2) onto a directory, safely.
 *
 * Path safety: entry names are normalised (leading `/` and `./` stripped, like Docker); a `..`
 * component is refused. Parent directories are resolved one component at a time inside the
 * target with chroot semantics (what Docker gets by applying layers in a chroot): a symlink in
 * the target is followed only within the root (an absolute target is taken relative to the root),
 * and a symlink whose `..` would climb above the root is refused. The final component is never
 * followed: an existing file, symlink or device there is replaced, not written through.
 *
 * Speed (many small files): entries whose content the tar reader hands over whole (≤ 1 MiB) are
 * written with synchronous syscalls on one descriptor — open(O_EXCL|O_NOFOLLOW), write, fchown,
 * fchmod, futimes, close — instead of a stream and a thread-pool round trip per call; a path is
 * looked at (lstat) only when creating it fails with EEXIST. Parent directories verified during
 * one application are remembered; the memory is dropped on every removal (a removed directory may
 * come back as a symlink). Bigger files are streamed. Every other per-entry call (directories, whiteouts,
 * removals) is synchronous too; the loop yields to the event loop every few milliseconds
 * (`SLICE_MS`) so the read/hash/gunzip pipeline, which runs on libuv's pool, keeps decompressing
 * ahead while files are written, and an abort signal is seen.
 *
 * Processes: Node has no mknod. An overlay whiteout (0/0 char device) costs one `mknod` process
 * only for the first whiteout of each owner in one application; the others are hard links to it
 * (overlayfs itself shares one whiteout inode the same way; only the device type and number
 * matter to it). Devices and fifos cost a process each.
 *
 * No fsync per entry: the callers apply into a private staging directory (snapshots under the
 * store's tmp/, then renamed; import/export into a temp dir that is read back and removed), and a
 * per-file fsync would cost a disk flush per entry for no gain — a crash leaves only a staging
 * directory, which is discarded. Durability of stored blobs is `writeLayer`'s/the store's business.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  chmodSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { setAttributeSync } from 'fs-xattr';
import { CorruptLayerError, StoreError, UnsafePathError } from './errors.js';
import { fileSink } from './fsutil.js';
import { readTar, type TarHeader } from './tar.js';
import type { Cancellable } from './types.js';
import { OVERLAY_OPAQUE_XATTR, whiteoutMeaning } from './whiteout.js';
import { TimeSlices } from './slices.js';

export interface ApplyLayerOptions extends Cancellable {
  /**
   * `plain`: whiteouts delete (a whole tree is built, e.g. for export);
   * `overlay`: whiteouts are kept the overlayfs way (0/0 char device, opaque xattr), for a
   * directory used as an overlay lower dir.
   */
  format: 'plain' | 'overlay';
  /** Refuse layers whose uncompressed tar exceeds this many bytes (gzip bombs). */
  maxBytes?: number;
  /**
   * How paths that reach above the target are treated. `strict` (default, for layers): a `..`
   * component in an entry name or hard link target, or a symlink climbing above the target, is
   * refused ({@link UnsafePathError}). `chroot` (ADD of a local archive): as Docker's untar chrooted
   * into the destination — names are cleaned lexically with `..` stopping at the target root
   * (`../../etc/x` lands at `etc/x`), a symlink's `..` at the root stays at the root, and a
   * missing directory is never created where a symlink points (Docker's open fails with ENOENT
   * there). Nothing leaves the target in either mode.
   */
  paths?: 'strict' | 'chroot';
  /**
   * Refuse a tar that has two entries of the same path (names compared cleaned, as Go's
   * filepath.Clean: `./a` and `a/` are `a`), as Docker 20.10's tar-split does for `docker import`
   * ("duplicates of file paths not supported"). Off: the last entry wins.
   */
  uniqueNames?: boolean;
  /**
   * Take a tar that ends after an entry without its end-of-archive blocks, and an empty input
   * (Go's archive/tar does, so `docker import` does). Off: such a tar is refused as truncated.
   */
  trailerOptional?: boolean;
}

const MAX_SYMLINKS = 40;

/** Longest stretch of synchronous work before the loop lets the event loop run. */
const SLICE_MS = 10;

/** Decompressed bytes produced ahead of the tar reader (per zlib step and buffered). */
const INFLATE_CHUNK = 256 * 1024;
const INFLATE_AHEAD = 2 * 1024 * 1024;

/** An overlay whiteout made during this application, to hard-link further ones of its owner to. */
interface WhiteoutInode {
  abs: string;
  dev: number;
  ino: number;
}

/**
 * The target directory, plus the relative paths verified (or made) as real directories during
 * this application: they need no second walk. Cleared on every removal.
 */
interface Root {
  path: string;
  chroot: boolean;
  dirs: Set<string>;
  /** First whiteout made per owner (`uid:gid`). */
  whiteouts: Map<string, WhiteoutInode>;
}

/**
 * Normalises an entry name into components; refuses `..`, or with `chroot` cleans it lexically
 * against the root as Go's filepath.Clean("/" + name) does.
 */
function components(name: string, entry: string, chroot = false): string[] {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (!parts.includes('..')) return parts;
  if (!chroot) throw new UnsafePathError(entry, 'contains a ".." component');
  const out: string[] = [];
  for (const c of parts) {
    if (c !== '..') out.push(c);
    else out.pop();
  }
  return out;
}

function isENOENT(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Resolves parent components inside `root` (chroot semantics, never above root), creating missing
 * directories. Returns the resolved components.
 */
function resolveParent(root: Root, parts: readonly string[], entry: string, create: boolean): string[] {
  const key = parts.join('/');
  if (root.dirs.has(key)) return [...parts];
  const cur: string[] = [];
  const queue = [...parts];
  // the first `viaLink` components of the queue came from symlink targets
  let viaLink = 0;
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    const fromLink = viaLink > 0;
    if (fromLink) viaLink--;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (cur.length === 0 && !root.chroot) throw new UnsafePathError(entry, 'resolves through a symlink to outside the target');
      cur.pop(); // at the root of a chroot, ".." is the root
      continue;
    }
    const p = join(root.path, ...cur, c);
    let st;
    try {
      st = lstatSync(p);
    } catch (err) {
      if (!isENOENT(err)) throw err;
      // Looking up (a hard link's target): a missing directory means a missing target. Never
      // return the unresolved rest, which may hold ".." from a symlink.
      if (!create) throw new CorruptLayerError(`layer entry "${entry}" refers to "${[...cur, c].join('/')}", which does not exist`);
      // Docker creates missing parents only by name: a dangling symlink's target is not made
      if (fromLink && root.chroot) throw new CorruptLayerError(`layer entry "${entry}" goes through a symlink to "/${[...cur, c].join('/')}", which does not exist`);
      mkdirSync(p, { mode: 0o755 });
      cur.push(c);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINKS) throw new UnsafePathError(entry, 'goes through too many symlinks');
      const target = readlinkSync(p);
      if (target.startsWith('/')) cur.length = 0;
      const expansion = target.split('/');
      queue.unshift(...expansion);
      viaLink += expansion.length;
      continue;
    }
    if (!st.isDirectory()) throw new CorruptLayerError(`layer entry "${entry}": parent "${[...cur, c].join('/')}" is not a directory`);
    cur.push(c);
  }
  if (hops === 0) root.dirs.add(key);
  return cur;
}

/** Absolute path where an entry lands: resolved parent + final component (not followed). */
function placeOf(root: Root, name: string, entry: string, create = true): { abs: string; rel: string } {
  const parts = components(name, entry, root.chroot);
  if (parts.length === 0) return { abs: root.path, rel: '' };
  const parent = resolveParent(root, parts.slice(0, -1), entry, create);
  const rel = [...parent, parts[parts.length - 1]!].join('/');
  return { abs: join(root.path, rel), rel };
}

async function run(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new StoreError(`${cmd} ${args.join(' ')} failed: ${stderr.trim()}`);
}

class ByteLimit extends Transform {
  #n = 0;
  constructor(readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#n += chunk.length;
    if (this.#n > this.max) cb(new CorruptLayerError(`layer is larger than the limit of ${this.max} bytes uncompressed`, { hint: 'the layer may be a decompression bomb; raise maxBytes if it is genuine' }));
    else cb(null, chunk);
  }
}

/**
 * The program that decompresses a stream starting with `head`, for the formats Docker's
 * `archive.DecompressStream` takes besides gzip: zstd, xz and bzip2 (Node has none of them).
 */
function externalDecompressor(head: Buffer): string | undefined {
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return undefined;
}

/** Detects gzip/zstd/xz/bzip2 by magic bytes and returns the uncompressed stream. */
export async function decompressed(src: Readable, signal?: AbortSignal): Promise<Readable> {
  const it = src[Symbol.asyncIterator]();
  let first: Buffer = Buffer.alloc(0);
  while (first.length < 6) {
    const r = await it.next();
    if (r.done) break;
    first = Buffer.concat([first, r.value as Buffer]);
  }
  const rest = Readable.from(
    (async function* () {
      if (first.length > 0) yield first;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value as Buffer;
    })(),
  );
  if (first[0] === 0x1f && first[1] === 0x8b) {
    // zlib streams pass stream options through to Transform (not in ZlibOptions' type).
    const gunzip = createGunzip(Object.assign({ chunkSize: INFLATE_CHUNK }, { readableHighWaterMark: INFLATE_AHEAD }));
    rest.on('error', (e) => gunzip.destroy(e));
    return rest.pipe(gunzip);
  }
  const program = externalDecompressor(first);
  if (program !== undefined) {
    const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'], ...(signal ? { signal } : {}) });
    const out = new PassThrough();
    pipeline(rest, child.stdin).catch((e) => out.destroy(e));
    child.stdout.pipe(out);
    child.on('close', (code) => {
      if (code !== 0) out.destroy(new CorruptLayerError(`${program} -dc failed (exit ${code})`));
    });
    child.on('error', (e) => out.destroy(new CorruptLayerError(`cannot run ${program} to decompress the layer`, { cause: e, hint: `install ${program === 'bzip2' ? 'bzip2' : program === 'xz' ? 'xz-utils' : 'zstd'}` })));
    return out;
  }
  return rest;
}

/** What one application did (for callers that log). */
export interface ApplyStats {
  entries: number;
  whiteouts: number;
}

/**
 * Applies the layer `tar` (plain, gzip or zstd; detected by magic) onto `targetDir`.
 * Consumes `tar`. Files, directories, symlinks, hard links, devices and fifos are recreated with
 * modes (incl. setuid/setgid/sticky), numeric owners, xattrs and mtimes (directories' after their
 * children).
 * @throws UnsafePathError naming the entry that would land outside the target (nothing of that
 * entry is written); CorruptLayerError for a truncated tar, bad compression or `maxBytes` exceeded.
 */
export async function applyLayer(tar: Readable, targetDir: string, opts: ApplyLayerOptions): Promise<ApplyStats> {
  const root: Root = { path: targetDir, chroot: opts.paths === 'chroot', dirs: new Set(), whiteouts: new Map() };
  const created = new Set<string>();
  const dirTimes = new Map<string, number>();
  const stats: ApplyStats = { entries: 0, whiteouts: 0 };
  const seen = opts.uniqueNames === true ? new Set<string>() : undefined;
  let input: Readable = await decompressed(tar, opts.signal);
  if (opts.maxBytes !== undefined) {
    const limit = new ByteLimit(opts.maxBytes);
    input.on('error', (e) => limit.destroy(e));
    input = input.pipe(limit);
  }
  try {
    const slices = new TimeSlices(opts.signal, SLICE_MS);
    for await (const { header, body, data } of readTar(input, { trailerOptional: opts.trailerOptional === true })) {
      // Lets pipeline callbacks run (the next compressed chunk is read and inflated meanwhile).
      if (slices.due()) await slices.yield();
      opts.signal?.throwIfAborted();
      stats.entries++;
      if (seen !== undefined) {
        const clean = posix.normalize(header.name).replace(/(?<=.)\/+$/, '');
        if (seen.has(clean)) {
          throw new CorruptLayerError(`the tar has "${header.name}" twice: duplicates of file paths are not supported`, {
            hint: 'remove the duplicate entries (tar --append or -r adds a second copy), as Docker refuses them too',
          });
        }
        seen.add(clean);
      }
      const wh = whiteoutMeaning(components(header.name, header.name, root.chroot).join('/'));
      if (wh.kind !== 'none') {
        stats.whiteouts++;
        await applyWhiteout(root, header, wh, created, opts);
        continue;
      }
      await applyEntry(root, withFsTime(header), body, data, created, dirTimes, opts);
    }
    // Directories last (creating children changes their mtime). lutimes: a directory may have been
    // replaced by a symlink since, which must not be followed; then the times are not ours to set.
    for (const [p, t] of dirTimes) {
      if (lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) lutimesSync(p, t, t);
    }
  } catch (err) {
    tar.destroy();
    input.destroy();
    if (err instanceof StoreError || opts.signal?.aborted) throw err;
    const code = String((err as NodeJS.ErrnoException).code ?? '');
    if (code.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE' || /incorrect header|unexpected end|invalid (block|distance|code)|header check/i.test(String((err as Error).message))) {
      throw new CorruptLayerError('layer compression is corrupt or truncated', { cause: err });
    }
    throw new StoreError(`applying layer to ${targetDir}`, { cause: err });
  }
  return stats;
}

async function applyWhiteout(
  root: Root,
  header: TarHeader,
  wh: { kind: 'opaque'; dir: string } | { kind: 'whiteout'; target: string },
  created: Set<string>,
  opts: ApplyLayerOptions,
): Promise<void> {
  if (wh.kind === 'opaque') {
    const p = placeOf(root, `${wh.dir}/x`, header.name);
    const rel = p.rel.split('/').slice(0, -1).join('/');
    const abs = join(root.path, rel);
    if (opts.format === 'overlay') {
      mkdirSync(abs, { recursive: true });
      setAttributeSync(abs, OVERLAY_OPAQUE_XATTR, 'y');
      return;
    }
    // Hide what lower layers put here; keep what this layer already wrote.
    for (const child of readdirSync(abs)) {
      const childRel = rel === '' ? child : `${rel}/${child}`;
      if (!created.has(childRel)) {
        root.dirs.clear();
        rmSync(join(abs, child), { recursive: true, force: true });
      }
    }
    return;
  }
  const { abs, rel } = placeOf(root, wh.target, header.name);
  if (rel === '') throw new UnsafePathError(header.name, 'whites out the root');
  if (created.has(rel)) return; // whiteouts hide lower layers only
  removeExisting(root, abs);
  if (opts.format === 'plain') return;
  await makeOverlayWhiteout(root, abs, header.uid, header.gid, opts.signal);
  created.add(rel);
}

/**
 * Makes a 0/0 character device at `abs` (nothing is there) owned by uid:gid: a hard link to the
 * first one made for that owner in this application when it is still what we made (same inode,
 * still a 0/0 device), else a new one by `mknod` (Node has no mknod), which becomes the one to link to.
 */
async function makeOverlayWhiteout(root: Root, abs: string, uid: number, gid: number, signal?: AbortSignal): Promise<void> {
  const key = `${uid}:${gid}`;
  const first = root.whiteouts.get(key);
  if (first !== undefined) {
    const st = lstatSync(first.abs, { throwIfNoEntry: false });
    if (st !== undefined && st.isCharacterDevice() && st.rdev === 0 && st.dev === first.dev && st.ino === first.ino) {
      linkSync(first.abs, abs);
      return;
    }
  }
  await run('mknod', [abs, 'c', '0', '0'], signal);
  lchownSync(abs, uid, gid);
  const st = lstatSync(abs);
  root.whiteouts.set(key, { abs, dev: st.dev, ino: st.ino });
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * Runs `make` (a synchronous exclusive create at `abs`). When something is already there: an
 * existing directory is kept for a directory entry (returns false, `make` not run); anything else
 * is removed (and the verified-directory memory dropped) and `make` runs again.
 * @returns true when `make` created the entry.
 */
async function createExclusive(root: Root, abs: string, h: TarHeader, make: () => void): Promise<boolean> {
  try {
    make();
    return true;
  } catch (err) {
    if (errCode(err) !== 'EEXIST') throw err;
  }
  if (h.type === 'directory' && lstatSync(abs).isDirectory()) return false;
  root.dirs.clear();
  rmSync(abs, { recursive: true, force: true });
  make();
  return true;
}

function setXattrs(abs: string, h: TarHeader): void {
  if (!h.xattrs) return;
  for (const [k, v] of h.xattrs) {
    // overlayfs's own attributes (opaque, redirect, origin, metacopy…) never come from a tar: in
    // a snapshot they would change what the overlay mount shows (a layer says opaque with
    // .wh..wh..opq, which the whiteout conversion turns into the xattr); the writer drops them too
    if (k.startsWith('trusted.overlay.')) continue;
    try {
      setAttributeSync(abs, k, v);
    } catch (err) {
      if (!['ENOTSUP', 'EOPNOTSUPP'].includes(errCode(err) ?? '')) throw err;
    }
  }
}

const CREATE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW; // libuv adds O_CLOEXEC

/** A regular file whose whole content is in memory: one descriptor, synchronous calls. */
async function writeSmallFile(root: Root, abs: string, h: TarHeader, data: Buffer): Promise<void> {
  let fd = -1;
  await createExclusive(root, abs, h, () => {
    fd = openSync(abs, CREATE_FLAGS, 0o600);
  });
  try {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
    fchownSync(fd, h.uid, h.gid);
    fchmodSync(fd, h.mode & 0o7777); // after chown, which clears setuid/setgid
    setXattrs(abs, h); // after chown, which clears security.capability
    futimesSync(fd, h.mtime, h.mtime);
  } finally {
    closeSync(fd);
  }
}

/** Latest time Docker's system.Chtimes sets: Go's time.Unix(0, 1<<63-1), in seconds. */
const MAX_FS_TIME = 9223372036.854775;

/**
 * `h` with the mtime Docker 20.10's untar gives the file (system.Chtimes): a time before 1970 or
 * after 2262 is the epoch (checked against dockerd: ADD of a tar whose entries are dated 1960 gives
 * files and directories the time 0). Node's utimes would take a negative time for "now". (Docker
 * sets a symlink's own time unclamped with LUtimesNano; Node cannot set a negative time, so a
 * symlink gets 0 as well.)
 */
function withFsTime(h: TarHeader): TarHeader {
  return h.mtime < 0 || h.mtime > MAX_FS_TIME ? { ...h, mtime: 0 } : h;
}

async function applyEntry(
  root: Root,
  h: TarHeader,
  body: AsyncIterable<Buffer>,
  data: Buffer | undefined,
  created: Set<string>,
  dirTimes: Map<string, number>,
  opts: ApplyLayerOptions,
): Promise<void> {
  const { abs, rel } = placeOf(root, h.name, h.name);
  // Refuse a hostile hard link before touching anything.
  let linkTarget: string | undefined;
  if (h.type === 'link') {
    const t = placeOf(root, h.linkname ?? '', h.name, false);
    if (t.rel === '') throw new UnsafePathError(h.name, 'is a hard link to the root');
    linkTarget = t.abs;
  }
  if (rel === '') {
    // The root itself ("./"): only its metadata applies.
    if (h.type !== 'directory') throw new UnsafePathError(h.name, 'would replace the target directory');
  }
  switch (h.type) {
    case 'file':
      if (data !== undefined) {
        await writeSmallFile(root, abs, h, data);
        created.add(rel);
        return;
      }
      await streamBigFile(root, abs, h, body, opts);
      created.add(rel);
      return;
    case 'directory':
      if (rel !== '') await createExclusive(root, abs, h, () => mkdirSync(abs, { mode: 0o755 }));
      created.add(rel);
      lchownSync(abs, h.uid, h.gid);
      chmodSync(abs, h.mode & 0o7777);
      setXattrs(abs, h);
      dirTimes.set(abs, h.mtime);
      return;
    case 'symlink':
      await createExclusive(root, abs, h, () => symlinkSync(h.linkname ?? '', abs));
      created.add(rel);
      lchownSync(abs, h.uid, h.gid);
      lutimesSync(abs, h.mtime, h.mtime);
      return;
    case 'link':
      try {
        await createExclusive(root, abs, h, () => linkSync(linkTarget!, abs));
      } catch (err) {
        if (errCode(err) === 'ENOENT') throw new CorruptLayerError(`layer entry "${h.name}" is a hard link to missing "${h.linkname}"`, { cause: err });
        throw err;
      }
      created.add(rel);
      // as Docker 20.10's createTarFile: the link entry's owner, and (unless the inode is a
      // symlink) its xattrs, mode and mtime, go to the inode it shares with its target; a layer
      // Docker wrote gives a link its target's own, so this changes only hand-made tars
      lchownSync(abs, h.uid, h.gid);
      if (!lstatSync(abs).isSymbolicLink()) {
        setXattrs(abs, h);
        chmodSync(abs, h.mode & 0o7777);
        lutimesSync(abs, h.mtime, h.mtime);
      }
      return;
    case 'char':
    case 'block':
    case 'fifo':
      removeExisting(root, abs);
      if (h.type === 'fifo') await run('mkfifo', [abs], opts.signal);
      else await run('mknod', [abs, h.type === 'char' ? 'c' : 'b', String(h.devmajor ?? 0), String(h.devminor ?? 0)], opts.signal);
      created.add(rel);
      lchownSync(abs, h.uid, h.gid);
      chmodSync(abs, h.mode & 0o7777);
      setXattrs(abs, h);
      lutimesSync(abs, h.mtime, h.mtime);
      return;
  }
}

/** Removes whatever is at `abs` (never following a symlink there). */
function removeExisting(root: Root, abs: string): void {
  if (lstatSync(abs, { throwIfNoEntry: false }) === undefined) return;
  root.dirs.clear();
  rmSync(abs, { recursive: true, force: true });
}

/** A regular file too big to hold: streamed into a descriptor opened O_EXCL|O_NOFOLLOW. */
async function streamBigFile(root: Root, abs: string, h: TarHeader, body: AsyncIterable<Buffer>, opts: ApplyLayerOptions): Promise<void> {
  removeExisting(root, abs);
  const fh = await open(abs, CREATE_FLAGS, 0o600);
  try {
    await pipeline(Readable.from(body), fileSink(fh), opts.signal ? { signal: opts.signal } : {});
    await fh.chown(h.uid, h.gid);
    await fh.chmod(h.mode & 0o7777);
    setXattrs(abs, h);
    await fh.utimes(h.mtime, h.mtime);
  } finally {
    await fh.close();
  }
}
