/**
 * Directory → deterministic layer tar → gzip → blob, in one streaming pass.
 */
import { closeSync, constants as fsc, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlibConstants } from 'node:zlib';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { getSystemErrorName } from 'node:util';
import { availableParallelism } from 'node:os';
import { finished } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { getAttributeSync, listAttributesSync } from 'fs-xattr';
import { hashing } from './digest.js';
import { StoreError } from './errors.js';
import { fileSink, tempName } from './fsutil.js';
import { GzipBlocks, PARALLEL_GZIP_BLOCK_SIZE } from './parallel-gzip.js';
import type { Store } from './store.js';
import { encodeHeader, encodeHeaderInto, padding, trailer, type TarHeader } from './tar.js';
import { MediaTypes, type Cancellable, type DiffID, type Digest, type Layer } from './types.js';
import { OVERLAY_OPAQUE_XATTR, OVERLAY_WHITEOUT_XATTR, upperToLayerEntries } from './whiteout.js';
import { TimeSlices } from './slices.js';
import { ContentSizeCounter, recordContentSize } from './layer-size.js';
import { openBlockSource, recordBlockIndex, type BlockSource } from './gzip-blocks.js';
import { defaultBlockEngine, type BlockEngine } from './deflate-engine.js';
import { fastFs, LSTAT_FIELDS, poolSha256, type BlockPiece, type FastFs, type PieceProblem } from '@tsbuild/sys';
import { sortUtf8 } from './order.js';

/** Options of `layerTarStream` / `writeLayer`. */
export interface LayerTarOptions extends Cancellable {
  /**
   * `rootfs`: the directory is a whole tree (or a plain diff); `upper`: an overlayfs upper dir,
   * whose whiteouts (0/0 char devices, opaque xattr) become OCI whiteouts.
   */
  kind: 'rootfs' | 'upper';
  /** Clamp every mtime newer than this (seconds since the epoch). */
  sourceDateEpoch?: number;
  /**
   * The caller knows no regular file in the tree carries an xattr the layer keeps (a COPY's upper
   * dir: COPY writes no xattrs, as Docker 20.10's does not copy them): their listxattr, one of the
   * dearest calls per file, is skipped. Directories are still read (overlay's opaque marker).
   */
  noFileXattrs?: boolean;
  /**
   * The lstat of entries the caller already knows, by path relative to the directory (a COPY's
   * upper dir holds hard links to the earlier snapshot's files it stat'ed): the walk does not
   * stat them again. Only for entries that cannot change meanwhile (snapshot inodes); a link
   * count or ctime that differs from the entry's own changes nothing in the tar.
   */
  knownStats?: ReadonlyMap<string, EntryStat>;
  /**
   * Keep `user.*` xattrs too. Off by default: a layer keeps file capabilities only, as Docker
   * 20.10's tar writer (pkg/archive) does for what it builds, commits and exports. `import` turns
   * it on, as `docker import` keeps its input tar as it is, xattrs and all.
   */
  userXattrs?: boolean;
}

export interface WriteLayerOptions extends LayerTarOptions {
  /** `gzip` (default) or `none` (an uncompressed layer, media type `…tar`). */
  compression?: 'gzip' | 'none';
  /** gzip level (default 6, gzip(1)'s and Go's default). */
  gzipLevel?: number;
  /**
   * `parallel` (default): blocks of the tar compressed at once on libuv's thread pool into one gzip
   * member (see `createParallelGzip`); `zlib`: one `zlib.createGzip` stream (one core; kept for
   * comparison). Both are deterministic; their bytes, so the digest, differ.
   */
  gzipEngine?: 'parallel' | 'zlib';
  /**
   * Keep the layer's gzip block index (gzip-blocks.ts), so that a later layer written with
   * `reuseBlocksOf` this one can take its unchanged blocks. Costs a sha256 pass over the deflated
   * blocks. Parallel gzip only.
   */
  indexBlocks?: boolean;
  /**
   * A stored layer blob (an earlier build of the same step) whose compressed blocks are taken for
   * the blocks of this tar that are the same, instead of deflating them again: the same bytes,
   * less CPU. Ignored when that blob has no usable index. Implies `indexBlocks`.
   */
  reuseBlocksOf?: Digest;
}

/**
 * Default gzip level: 6, gzip(1)'s and Go's default, so sizes are what users expect. Measured on a
 * 225 MB tree of binaries and docs (bench/layer-write.ts): level 1 gives 49.2% of the tar for
 * 12.9 CPU-s, level 6 46.8% for 15.4 CPU-s (the tar walk and two sha256 passes are in both).
 * Pass `gzipLevel: 1` where speed matters more than size.
 */
export const DEFAULT_GZIP_LEVEL = 6;

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** Which xattrs go into a layer: file capabilities (and user.* when asked), plus overlay's markers for conversion. */
function keepXattr(name: string, kind: 'rootfs' | 'upper', user: boolean): boolean {
  return name === 'security.capability' || (user && name.startsWith('user.')) || (kind === 'upper' && (name === OVERLAY_OPAQUE_XATTR || name === OVERLAY_WHITEOUT_XATTR));
}

/** One listxattr per entry; a getxattr only for names that go into the layer. */
function readXattrs(path: string, opts: LayerTarOptions): Map<string, Buffer> | undefined {
  let names: string[];
  try {
    names = listAttributesSync(path);
  } catch (err) {
    if (['ENOTSUP', 'EOPNOTSUPP'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const out = new Map<string, Buffer>();
  const user = opts.userXattrs === true;
  for (const n of sortUtf8(names.filter((x) => keepXattr(x, opts.kind, user)))) out.set(n, getAttributeSync(path, n));
  return out.size > 0 ? out : undefined;
}

/** What the layer tar writer reads of an lstat: Node's bigint stats, or a {@link NativeStat}. */
export type EntryStat = Pick<BigIntStats, 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs' | 'nlink' | 'dev' | 'ino' | 'rdev' | 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isCharacterDevice' | 'isBlockDevice' | 'isFIFO'>;

const S_IFMT = 0o170000n;

/**
 * An lstat from `FastFs.lstatBatch` (`@tsbuild/sys`), the entry at offset `o` of its output: the
 * same values as Node's bigint stats for what the tar uses, and mtimeNs.
 */
export class NativeStat implements EntryStat {
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly size: bigint;
  readonly mtimeMs: bigint;
  readonly nlink: bigint;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly rdev: bigint;
  readonly mtimeNs: bigint;
  constructor(f: BigUint64Array, o: number) {
    this.mode = f[o]!;
    this.uid = f[o + 1]!;
    this.gid = f[o + 2]!;
    this.size = f[o + 3]!;
    this.mtimeMs = BigInt.asIntN(64, f[o + 4]!);
    this.nlink = f[o + 5]!;
    this.dev = f[o + 6]!;
    this.ino = f[o + 7]!;
    this.rdev = f[o + 8]!;
    this.mtimeNs = BigInt.asIntN(64, f[o + 12]!);
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000n;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000n;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000n;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === 0o020000n;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === 0o060000n;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === 0o010000n;
  }
}

/** Names per `lstatBatch` call: bounds the buffer whatever a directory holds. */
const STAT_BATCH = 256;

interface Item {
  header: TarHeader;
  /** Absolute path of a regular file whose content follows the header. */
  content?: string;
}

/** What the walks share: hard links seen so far (by dev:ino) and the mtime clamp. */
interface WalkState {
  readonly opts: LayerTarOptions;
  readonly links: Map<string, string>;
  readonly clamp: (sec: number) => number;
}

function walkState(opts: LayerTarOptions): WalkState {
  const epoch = opts.sourceDateEpoch;
  return { opts, links: new Map(), clamp: (sec) => (epoch !== undefined && sec > epoch ? epoch : sec) };
}

/**
 * The tar item of the entry `abs` (lstat `st`) named `rel`, or undefined for a socket (skipped, as
 * Docker does). `xattrs`: the entry's kept xattrs when the caller read them already (directories
 * of a merged walk), else read here (unless `noFileXattrs` and a regular file).
 */
function itemOf(w: WalkState, rel: string, abs: string, st: EntryStat, xattrs?: Map<string, Buffer> | null): Item | undefined {
  const { opts, links } = w;
  const header: TarHeader = {
    name: rel,
    type: 'file',
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: 0,
    mtime: w.clamp(Number(st.mtimeMs / 1000n)),
  };
  if (st.isSymbolicLink()) {
    header.type = 'symlink';
    header.linkname = readlinkSync(abs);
  } else if (xattrs !== undefined) {
    if (xattrs !== null) header.xattrs = xattrs;
  } else if (!(opts.noFileXattrs === true && st.isFile())) {
    const read = readXattrs(abs, opts);
    if (read) header.xattrs = read;
  }
  // Overlay whiteouts may share one inode (the kernel links them to a common whiteout): never links.
  const linkable = st.nlink > 1n && !st.isDirectory() && !(opts.kind === 'upper' && st.isCharacterDevice() && st.rdev === 0n);
  if (linkable) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.isSymbolicLink() ? undefined : links.get(key);
    if (first !== undefined) {
      header.type = 'link';
      header.linkname = first;
      delete header.xattrs;
      return { header };
    }
    links.set(key, rel);
  }
  if (st.isFile()) {
    header.size = Number(st.size);
    return { header, content: abs };
  }
  if (st.isDirectory()) {
    header.type = 'directory';
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    header.type = st.isCharacterDevice() ? 'char' : 'block';
    header.devmajor = major(st.rdev);
    header.devminor = minor(st.rdev);
  } else if (st.isFIFO()) {
    header.type = 'fifo';
  } else if (!st.isSymbolicLink()) {
    return undefined;
  }
  return { header };
}

/**
 * Walks `root` depth-first, children in byte order, parents before children; yields tar items.
 * Synchronous (readdir, lstat, listxattr): the consumer pulls one ~1 MiB chunk of items at a time,
 * so the event loop is held for a few milliseconds at most, and there is no thread-pool round trip
 * per syscall (which cost ~1 ms per entry on a loaded machine).
 */
function* walk(root: string, opts: LayerTarOptions, fast: FastFs | undefined): Generator<Item> {
  const w = walkState(opts);
  // readdir names hold no '/' and are never '.' or '..': plain concatenation is the join
  const base = root.endsWith('/') ? root : `${root}/`;
  const fields = new BigUint64Array(STAT_BATCH * LSTAT_FIELDS);
  /**
   * The lstat of each of `names` in `dirBase` not in `knownStats`, by one native call, with
   * whether it has no xattrs at all (`null`: nothing to read); undefined where the call failed
   * (the walk repeats it with Node's lstat, which throws the usual error).
   */
  function batch(dirBase: string, rel: string, names: string[]): Array<[EntryStat, null | undefined] | undefined> {
    const out = new Array<[EntryStat, null | undefined] | undefined>(names.length);
    if (fast === undefined) return out;
    const ask = opts.knownStats === undefined ? names : names.filter((n) => !opts.knownStats!.has(rel === '' ? n : `${rel}/${n}`));
    if (ask.length === 0) return out;
    const done = fast.lstatBatch(dirBase, ask, fields);
    const at = ask === names ? undefined : new Map(names.map((n, i) => [n, i]));
    for (let k = 0; k < done; k++) {
      const o = k * LSTAT_FIELDS;
      if (fields[o + 11] !== 0n) continue;
      out[at === undefined ? k : at.get(ask[k]!)!] = [new NativeStat(fields, o), fields[o + 10] === 0n ? null : undefined];
    }
    return out;
  }
  function* visit(rel: string): Generator<Item> {
    opts.signal?.throwIfAborted();
    const all = sortUtf8(readdirSync(rel === '' ? root : base + rel));
    const dirBase = rel === '' ? base : `${base}${rel}/`;
    for (let c = 0; c < all.length; c += STAT_BATCH) {
      const names = all.slice(c, c + STAT_BATCH);
      // stats made before any recursion reuses `fields`
      const stats = batch(dirBase, rel, names);
      for (let k = 0; k < names.length; k++) {
        const childRel = rel === '' ? names[k]! : `${rel}/${names[k]!}`;
        const childAbs = base + childRel;
        const known = opts.knownStats?.get(childRel);
        const native = known === undefined ? stats[k] : undefined;
        const st = known ?? native?.[0] ?? lstatEntry(childAbs, childRel);
        const item = itemOf(w, childRel, childAbs, st, native?.[1]);
        if (item === undefined) continue;
        yield item;
        if (item.header.type === 'directory') yield* visit(childRel);
      }
    }
  }
  yield* visit('');
}

/**
 * lstat of a walked entry. A name that is not valid UTF-8 comes out of readdir with U+FFFD in it
 * and names nothing: that fails with a clear error, not ENOENT (Docker keeps such names byte for
 * byte; we cannot yet).
 */
function lstatEntry(abs: string, rel: string): BigIntStats {
  try {
    return lstatSync(abs, { bigint: true }) as BigIntStats;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && basename(abs).includes('\ufffd')) {
      throw new StoreError(`file name is not valid UTF-8: ${rel}`, {
        code: 'E_NAME_ENCODING',
        hint: 'tsbuild stores UTF-8 file names only: rename the file (a RUN step: in its command)',
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Walks the union of the overlay lower dirs `roots` (top first) as an overlayfs mount of them shows
 * it, without mounting: a name is the top-most entry that has it; a whiteout (0/0 character
 * device) hides it; a directory merges the same directories below it down to the first non-directory
 * or opaque one (`trusted.overlay.opaque`). Same order, headers and hard links as `walk` of the
 * mounted tree (kind `rootfs`: no overlay xattrs in the items), which is what unpacking the layers
 * onto one directory gives, but for one corner: a directory's xattrs are the top-most one's, as
 * the mount shows them, where unpacking keeps a lower layer's xattrs that an upper layer's entry
 * of the directory does not repeat (a layer made from an overlay upper dir always repeats them:
 * copy-up keeps xattrs).
 */
function* mergedWalk(roots: readonly string[], opts: LayerTarOptions): Generator<Item> {
  const w = walkState({ ...opts, kind: 'rootfs' });
  const stat = (abs: string): BigIntStats | undefined => lstatSync(abs, { bigint: true, throwIfNoEntry: false }) as BigIntStats | undefined;
  const whiteout = (st: BigIntStats): boolean => st.isCharacterDevice() && st.rdev === 0n;
  const user = opts.userXattrs === true;
  function* visit(rel: string, dirs: readonly string[]): Generator<Item> {
    opts.signal?.throwIfAborted();
    const names = new Set<string>();
    for (const d of dirs) for (const n of readdirSync(d)) names.add(n);
    for (const name of sortUtf8([...names])) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let i = 0;
      let st: BigIntStats | undefined;
      for (; i < dirs.length && st === undefined; i++) st = stat(join(dirs[i]!, name));
      // a name readdir listed names nothing when it is not valid UTF-8: lstatEntry says so
      if (st === undefined) st = lstatEntry(join(dirs[0]!, name), childRel);
      if (whiteout(st)) continue;
      const abs = join(dirs[i - 1]!, name);
      if (!st.isDirectory()) {
        const item = itemOf(w, childRel, abs, st);
        if (item !== undefined) yield item;
        continue;
      }
      const top = dirXattrs(abs, user);
      const merged = [abs];
      for (let opaque = top.opaque; !opaque && i < dirs.length; i++) {
        const lower = join(dirs[i]!, name);
        const lst = stat(lower);
        if (lst === undefined) continue;
        if (!lst.isDirectory()) break; // a file or whiteout hides what is below it
        merged.push(lower);
        opaque = dirXattrs(lower, user).opaque;
      }
      yield itemOf(w, childRel, abs, st, top.kept ?? null)!;
      yield* visit(childRel, merged);
    }
  }
  yield* visit('', roots);
}

/** A directory's kept xattrs (kind `rootfs`; `user.*` too when `user`) and whether overlay marks it opaque. */
function dirXattrs(path: string, user: boolean): { kept?: Map<string, Buffer>; opaque: boolean } {
  let names: string[];
  try {
    names = listAttributesSync(path);
  } catch (err) {
    if (['ENOTSUP', 'EOPNOTSUPP'].includes((err as NodeJS.ErrnoException).code ?? '')) return { opaque: false };
    throw err;
  }
  const opaque = names.includes(OVERLAY_OPAQUE_XATTR) && getAttributeSync(path, OVERLAY_OPAQUE_XATTR).toString() === 'y';
  const keep = sortUtf8(names.filter((n) => keepXattr(n, 'rootfs', user)));
  if (keep.length === 0) return { opaque };
  return { kept: new Map(keep.map((n) => [n, getAttributeSync(path, n)])), opaque };
}

function changedError(path: string, size: number, n: number): StoreError {
  return new StoreError(`file ${path} changed size while it was being archived (${size} → ${n}${n > size ? '+' : ''} bytes)`, { code: 'E_FILE_CHANGED', hint: 'do not modify the directory while a layer is written' });
}

/** Bytes per block of the tar stream; the parallel gzip's block size, so blocks go to it as they are. */
const CHUNK = PARALLEL_GZIP_BLOCK_SIZE;
const ZEROS = Buffer.alloc(1024);

/**
 * The deterministic tar of the walk `items` cut into blocks of exactly `blockSize` bytes, then one last
 * shorter block (possibly empty). Each block comes from `allocate` and is yielded once it is full;
 * headers and file contents are written (file contents read) straight into it, so a small file
 * costs open, one read, close and a copy of its header. Synchronous: the caller pulls one block at
 * a time, so the event loop is held for a few milliseconds at most, and there is no thread-pool
 * round trip per file (which cost ~1 ms per entry on a loaded machine).
 *
 * With `pieces`, file contents are not read here: each block is yielded with its headers and
 * padding in place, right after `pieces` got where its file contents go (`FastFs.fillBlock`
 * reads them, on the thread pool, while the walk goes on).
 */
function* tarBlocks(items: Iterable<Item>, opts: LayerTarOptions, blockSize: number, allocate: () => Buffer, sizes?: ContentSizeCounter, fast?: FastFs, pieces?: (block: Buffer, list: BlockPiece[]) => void): Generator<Buffer> {
  let block = allocate();
  let fill = 0;
  const oneByte = Buffer.alloc(1);
  let list: BlockPiece[] = [];
  /** Hands the block over (its pieces first, with `pieces`) and starts the next one. */
  function* full(): Generator<Buffer> {
    if (pieces !== undefined) {
      pieces(block, list);
      list = [];
    }
    yield block;
    block = allocate();
    fill = 0;
  }
  /** With `pieces`: where the content of the regular file `path` of `size` bytes goes, yielding each block it fills. */
  function* place(path: string, size: number): Generator<Buffer> {
    let n = 0;
    while (n < size) {
      const length = Math.min(size - n, blockSize - fill);
      list.push({ path, size, from: n, at: fill, length });
      n += length;
      fill += length;
      if (fill === blockSize) yield* full();
    }
  }
  /** Copies `src` in, yielding each block it fills. */
  function* put(src: Buffer): Generator<Buffer> {
    let off = 0;
    while (off < src.length) {
      const n = Math.min(src.length - off, blockSize - fill);
      src.copy(block, fill, off, off + n);
      fill += n;
      off += n;
      if (fill === blockSize) yield* full();
    }
  }
  /** Reads the regular file `path` of `size` bytes in, yielding each block it fills. */
  function* content(path: string, size: number): Generator<Buffer> {
    if (fast !== undefined && size < blockSize - fill) {
      // the whole file and a byte more fit: one native call instead of open, read(s) and close
      const r = fast.readFileInto(path, block, fill, size);
      if (r === size) {
        fill += size;
        return;
      }
      if (r >= 0) throw changedError(path, size, r);
      // a failed call: Node's calls below fail again with the usual error
    }
    // O_NOFOLLOW: a file swapped for a symlink since the lstat is not followed.
    const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      let n = 0;
      let atEnd = false;
      while (n < size) {
        const room = blockSize - fill;
        // One byte more than expected when it fits: a short read then proves the end of the file
        // (no second read); a longer one means the file grew.
        const want = size - n < room ? size - n + 1 : room;
        const r = readSync(fd, block, fill, want, null);
        if (r === 0) throw changedError(path, size, n);
        if (n + r > size) throw changedError(path, size, n + r);
        n += r;
        fill += r;
        atEnd = n === size && r < want;
        if (fill === blockSize) yield* full();
      }
      if (!atEnd && readSync(fd, oneByte, 0, 1, null) > 0) throw changedError(path, size, size + 1);
    } finally {
      closeSync(fd);
    }
  }
  for (const item of items) {
    opts.signal?.throwIfAborted();
    const headers = opts.kind === 'upper' ? upperToLayerEntries(item.header) : [item.header];
    for (const h of headers) {
      sizes?.add(h);
      // Most headers need no PAX and go straight into the block (strictly less room than the
      // block's rest: a block never stays full); the others are encoded apart and copied in.
      const direct = blockSize - fill > 512 ? encodeHeaderInto(h, block, fill) : 0;
      const hdr = direct > 0 ? undefined : encodeHeader(h);
      if (hdr === undefined) {
        fill += direct;
      } else if (hdr.length < blockSize - fill) {
        // Strictly less: a block never stays full (put and content yield it at once).
        hdr.copy(block, fill);
        fill += hdr.length;
      } else {
        yield* put(hdr);
      }
      if (item.content === undefined || h.type !== 'file' || h.name !== item.header.name || h.size === 0) continue;
      if (pieces !== undefined) yield* place(item.content, h.size);
      else yield* content(item.content, h.size);
      const pad = padding(h.size).length;
      if (pad < blockSize - fill) {
        block.fill(0, fill, fill + pad);
        fill += pad;
      } else {
        yield* put(ZEROS.subarray(0, pad));
      }
    }
  }
  yield* put(ZEROS); // end of archive: two zero blocks
  const last = block.subarray(0, fill);
  pieces?.(last, list);
  yield last;
}

/**
 * The deterministic tar of `dir` as a stream (the caller consumes or destroys it): entries in
 * byte order depth-first (parents first), no root entry, numeric owners, no user/group names,
 * PAX for long names and xattrs (`security.capability`; `user.*` with `userXattrs`), hard links as link entries to
 * the first path, devices, fifos, special mode bits, mtimes clamped to `sourceDateEpoch`.
 * With `kind: 'upper'`, overlay whiteouts become OCI whiteouts.
 */
export function layerTarStream(dir: string, opts: LayerTarOptions): Readable {
  return countedTarStream(dir, opts);
}

/**
 * `layerTarStream` with Node's fs calls only, never the addon's batched ones: for tests, which
 * check that both give the same bytes and errors.
 */
export function layerTarStreamNodeFs(dir: string, opts: LayerTarOptions): Readable {
  return countedTarStream(dir, opts, undefined, null);
}

/**
 * The tar `layerTarStream` would make of an overlayfs mount of the snapshot dirs `roots` (top
 * first), without mounting: the flattened tree of an image from its layers' snapshots (see
 * `mergedWalk`).
 */
export function mergedTarStream(roots: readonly string[], opts: Cancellable = {}): Readable {
  const o: LayerTarOptions = { kind: 'rootfs', ...(opts.signal ? { signal: opts.signal } : {}) };
  return tarStream(mergedWalk(roots, o), o);
}

/**
 * `layerTarStream`, adding each entry's content size to `sizes`. `fast`: the addon's batched
 * calls (default: when built), `null` for Node's fs only.
 */
function countedTarStream(dir: string, opts: LayerTarOptions, sizes?: ContentSizeCounter, fast: FastFs | null = fastFs() ?? null): Readable {
  return tarStream(walk(dir, opts, fast ?? undefined), opts, sizes, fast ?? undefined);
}

/** The tar of the walk `items` as a stream of fresh CHUNK-sized blocks (no empty one). */
function tarStream(items: Iterable<Item>, opts: LayerTarOptions, sizes?: ContentSizeCounter, fast?: FastFs): Readable {
  function* nonEmpty(): Generator<Buffer> {
    for (const b of tarBlocks(items, opts, CHUNK, () => Buffer.allocUnsafe(CHUNK), sizes, fast)) if (b.length > 0) yield b;
  }
  return Readable.from(nonEmpty(), { objectMode: false, highWaterMark: CHUNK });
}

/**
 * The gzip level of `opts`, checked.
 * @throws StoreError E_GZIP_LEVEL when out of range.
 */
function gzipLevel(opts: WriteLayerOptions): number {
  const level = opts.gzipLevel ?? DEFAULT_GZIP_LEVEL;
  if (!Number.isInteger(level) || level < -1 || level > 9) {
    throw new StoreError(`gzip level ${level} is out of range`, { code: 'E_GZIP_LEVEL', hint: 'use an integer from 0 (store) to 9 (smallest), or -1 for the default (6)' });
  }
  // -1 is zlib's "default": 6, named once here so that every engine and block index sees 6
  return level === -1 ? 6 : level;
}

function compressor(opts: WriteLayerOptions): Transform {
  return createGzip({ level: gzipLevel(opts), chunkSize: 256 * 1024, memLevel: 9, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
}

/** A layer `writeLayer` made. */
export interface WrittenLayer extends Layer {
  /** With `indexBlocks` or `reuseBlocksOf`: the gzip blocks written, and how many of them came from the earlier blob. */
  readonly gzipBlocks?: { total: number; reused: number };
}

/** Blocks whose file contents are being read on the thread pool ahead of the one hashed and compressed. */
const FILL_AHEAD = 4;

/**
 * Throws for a piece `FastFs.fillBlock` could not read: the file changed size (E_FILE_CHANGED),
 * or Node's own error for the call that failed (opened again to get it).
 */
function pieceError(piece: BlockPiece, problem: PieceProblem): never {
  if (problem.kind === 'short') throw changedError(piece.path, piece.size, problem.end);
  if (problem.kind === 'long') throw changedError(piece.path, piece.size, piece.size + 1);
  const fd = openSync(piece.path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  closeSync(fd);
  throw new StoreError(`reading ${piece.path}: ${getSystemErrorName(-problem.errno)}`, { code: 'E_READ', hint: 'the directory changed while its layer was written' });
}

/** A running sha256 whose updates are hashed later (`hashed` then) or at once. */
interface RunningHash {
  update(b: Buffer, hashed?: () => void): void;
  /** The hex digest, once everything is hashed; once. */
  digest(): Promise<string>;
}

/**
 * A sha256 on the thread pool (the addon's: ~100 ms of main thread per 150 MB otherwise, while the
 * other core is idle when a rebuilt layer's blocks are reused), or node:crypto's where there is none.
 */
function runningHash(): RunningHash {
  const pool = poolSha256();
  if (pool !== undefined) return { update: (b, hashed) => pool.update(b, hashed), digest: async () => (await pool.digest()).toString('hex') };
  const h = createHash('sha256');
  return {
    update(b, hashed) {
      h.update(b);
      hashed?.();
    },
    digest: () => Promise.resolve(h.digest('hex')),
  };
}

/** What `writeTarBlob` wrote: the tar's and the blob's sha256 and the blob's size. */
interface WrittenBlob {
  diffID: DiffID;
  digest: Digest;
  size: number;
  /** The gzip block index, when asked for, and the blocks taken from an earlier blob. */
  blocks?: Array<[string, number]>;
  reused?: number;
}

/**
 * The tar of `dir` into `out`, gzipped with `GzipBlocks` (`level`) or as it is (`undefined`):
 * tar blocks are hashed (diffID) and handed to the compressor as they are made, and the
 * compressed blocks hashed (digest) and written in order. The thread pool keeps up to
 * `concurrency` blocks in work while the walk fills the next one; full blocks are reused once
 * compressed, so memory stays at a few MiB. Same bytes as `layerTarStream` piped into
 * `createParallelGzip({ level })`.
 */
async function writeTarBlob(dir: string, opts: LayerTarOptions, out: Writable, level: number | undefined, sizes: ContentSizeCounter, blocks: { index?: boolean; reuse?: BlockSource; engine?: BlockEngine } = {}): Promise<WrittenBlob> {
  const tarHash = runningHash();
  const blobHash = level === undefined ? tarHash : runningHash();
  let size = 0;
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  const emit = async (b: Buffer): Promise<void> => {
    if (b.length === 0) return;
    if (level !== undefined) blobHash.update(b);
    size += b.length;
    if (!out.write(b)) await once(out, 'drain', signalOpt);
  };
  const gz = level === undefined ? undefined : new GzipBlocks(level, blocks);
  const concurrency = availableParallelism() + 1;
  /** Compressed blocks whose buffers may be filled again (written-out blocks are not: `out` may hold them). */
  const free: Buffer[] = [];
  const allocate = (): Buffer => free.pop() ?? Buffer.allocUnsafe(CHUNK);
  // a block is filled again only once both the compressor and the diffID hash are done with it
  const unhashed = new Set<Buffer>();
  const parked = new Set<Buffer>();
  const recycle = (b: Buffer): void => {
    if (unhashed.has(b)) parked.add(b);
    else free.push(b);
  };
  if (gz) await emit(gz.header());
  const slices = new TimeSlices(opts.signal);
  const fast = fastFs();
  /** Hashes and compresses (or writes) the next block of the tar, in order. */
  const consume = async (block: Buffer): Promise<void> => {
    unhashed.add(block);
    tarHash.update(block, () => {
      unhashed.delete(block);
      if (parked.delete(block)) free.push(block);
    });
    if (!gz) {
      await emit(block);
    } else {
      gz.add(block, block.length < CHUNK);
      while (gz.pending > 0 && (gz.ready || gz.pending >= concurrency)) {
        const { output, input } = await gz.next();
        await emit(output);
        if (input.length === CHUNK) recycle(input);
      }
    }
  };
  // File contents are read into each block on the thread pool while the walk makes the next ones
  // (the walk and the reads of 20,000 small files took ~600 ms on the main thread here).
  const filling: Array<{ block: Buffer; pieces: BlockPiece[]; read: Promise<PieceProblem | undefined> | undefined }> = [];
  let handed: BlockPiece[] = [];
  const settle = async (head: (typeof filling)[number]): Promise<void> => {
    const problem = await head.read;
    if (problem !== undefined) pieceError(head.pieces[problem.piece]!, problem);
    await consume(head.block);
  };
  for (const block of tarBlocks(walk(dir, opts, fast), opts, CHUNK, allocate, sizes, fast, fast !== undefined ? (_, list) => (handed = list) : undefined)) {
    if (fast === undefined) {
      await consume(block);
    } else {
      const read = handed.length > 0 ? fast.fillBlock(block, handed) : undefined;
      // (a rejection is met where it is awaited, in order; not reported as unhandled before)
      read?.catch(() => undefined);
      filling.push({ block, pieces: handed, read });
      while (filling.length > FILL_AHEAD) await settle(filling.shift()!);
    }
    // Let timers, I/O callbacks and an abort run now and then while the pool is keeping up.
    if (slices.due()) await slices.yield();
  }
  while (filling.length > 0) await settle(filling.shift()!);
  if (gz) {
    while (gz.pending > 0) await emit((await gz.next()).output);
    await emit(gz.trailer());
  }
  out.end();
  await finished(out, signalOpt);
  const diffID = `sha256:${await tarHash.digest()}`;
  return { diffID: diffID as DiffID, digest: (level === undefined ? diffID : `sha256:${await blobHash.digest()}`) as Digest, size, ...(gz && blocks.index ? { blocks: gz.blockIndex(), reused: gz.reused } : {}) };
}

/**
 * Writes `dir` as a layer blob into `store`: tar → sha256 (diffID) → gzip → sha256 (digest) →
 * temp file → rename, in one pass with flat memory. gzip compresses blocks of the tar on several
 * cores by default (`gzipEngine`); blocks of incompressible bytes (random data, compressed files)
 * are stored rather than deflated (see `createParallelGzip`).
 * @returns the stored Layer, with how many gzip blocks were taken from `reuseBlocksOf`.
 * @throws StoreError (and the signal's reason when aborted).
 */
export async function writeLayer(store: Store, dir: string, opts: WriteLayerOptions): Promise<WrittenLayer> {
  const gzip = opts.compression !== 'none';
  const tmp = tempName(store.tmpDir, 'layer');
  try {
    const fh = await open(tmp, 'wx', 0o644);
    let written: WrittenBlob;
    let engine: BlockEngine = 'zlib';
    const sizes = new ContentSizeCounter();
    const out = fileSink(fh);
    try {
      if (gzip && opts.gzipEngine === 'zlib') {
        const tarHash = hashing();
        const blobHash = hashing();
        await pipeline(countedTarStream(dir, opts, sizes), tarHash, compressor(opts), blobHash, out, opts.signal ? { signal: opts.signal } : {});
        written = { diffID: tarHash.digest() as string as DiffID, digest: blobHash.digest(), size: blobHash.size };
      } else if (!gzip) {
        written = await writeTarBlob(dir, opts, out, undefined, sizes);
      } else {
        const level = gzipLevel(opts);
        engine = defaultBlockEngine();
        const reuse = opts.reuseBlocksOf !== undefined ? openBlockSource(store, opts.reuseBlocksOf, engine, level, CHUNK) : undefined;
        try {
          written = await writeTarBlob(dir, opts, out, level, sizes, { engine, index: opts.indexBlocks === true || opts.reuseBlocksOf !== undefined, ...(reuse ? { reuse } : {}) });
        } finally {
          reuse?.close();
        }
      }
      await fh.sync();
    } catch (err) {
      // writes the sink still holds would go to a closed file, an error no one listens to (a
      // crash): a failed layer writes nothing more
      out.on('error', () => undefined);
      out.destroy();
      throw err;
    } finally {
      await fh.close();
    }
    await store.adoptBlob(tmp, written.digest);
    // what Docker reports as the layer's size (see layer-size.ts), kept beside the blob
    await recordContentSize(store, written.diffID, sizes.total);
    // a cache: a layer whose index could not be written is whole, its rebuild only slower
    if (written.blocks !== undefined) await recordBlockIndex(store, written.digest, { engine, level: gzipLevel(opts), blockSize: CHUNK, blocks: written.blocks }).catch(() => undefined);
    const layer = store.layerOf({ mediaType: gzip ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer, digest: written.digest, size: written.size }, written.diffID);
    return written.blocks === undefined ? layer : Object.assign(layer, { gzipBlocks: { total: written.blocks.length, reused: written.reused ?? 0 } });
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    if (err instanceof StoreError || opts.signal?.aborted) throw err;
    throw new StoreError(`writing layer from ${dir}`, { cause: err });
  }
}
