/**
 * `@tsbuild/sys`: the Linux system calls tsbuild needs and Node lacks — flock(2), mount(2),
 * umount2(2) — from a small N-API addon (native/sys.c) built when the package is installed.
 *
 * `sysCalls()` is undefined when the addon is not built (no compiler at install time) or cannot
 * load; callers then run the util-linux tools (flock(1), mount(8), umount(8)) as before, one
 * process each. With the addon a lock or a mount costs a system call instead of a process start
 * (measured 8-11 ms each here, from a Node process).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';

/** `flock(2)` operations. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
/** `mount(2)` flags used by tsbuild. */
export const MS_RDONLY = 1;
export const MS_BIND = 4096;
export const MS_REC = 16384;
/** `umount2(2)` flag: detach now, release when no longer busy (`umount --lazy`). */
export const MNT_DETACH = 2;

/** A failed system call: `code` is the errno name (`EBUSY`, `EWOULDBLOCK`…), `errno` its number. */
export class SysError extends Error {
  override readonly name = 'SysError';
  constructor(
    message: string,
    readonly code: string,
    readonly errno: number,
    readonly syscall: string,
  ) {
    super(message);
  }
}

interface Addon {
  flock(fd: number, op: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  umount2Async?(target: string, flags: number, done: (errno: number) => void): void;
  strerror(errno: number): string;
}

/** The system calls, each throwing a SysError on failure. */
export interface SysCalls {
  /**
   * `flock(fd, op)`. With `LOCK_NB`, returns false when another open file description holds a
   * conflicting lock (EWOULDBLOCK) instead of throwing. Never call it without `LOCK_NB` from the
   * main thread: it would block the event loop.
   */
  flock(fd: number, op: number): boolean;
  /** `mount(source, target, fstype, flags, data)`. */
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** `umount2(target, flags)`. */
  umount(target: string, flags?: number): void;
  /**
   * `umount2(target, flags)` on libuv's thread pool: unmounting an overlay frees its dentries (and
   * without `volatile` syncs its upper filesystem), tens of milliseconds or more that the event
   * loop keeps running through.
   */
  umountAsync(target: string, flags?: number): Promise<void>;
}

const EWOULDBLOCK = 11;

/** Where this module is: the compiled package's file, or the CLI bundle that holds it (a CommonJS file, no `import.meta`). */
function here(): string {
  const url: string | undefined = import.meta.url;
  return url !== undefined ? fileURLToPath(url) : __filename;
}

/**
 * The process's one load of the addon (null: not built), like Node's own module cache: finding it
 * (createRequire, resolve) cost ~0.3 ms a call, and the layer writer asks once per block.
 */
const loaded: { addon?: Addon | null } = {};

/** The addon, loaded once per process; undefined when it is not built. */
function loadAddon(): Addon | undefined {
  if (loaded.addon === undefined) {
    try {
      const req = createRequire(here());
      const pkg = dirname(req.resolve('@tsbuild/sys/package.json'));
      loaded.addon = req(join(pkg, 'build', 'Release', 'tsbuild_sys.node')) as Addon;
    } catch {
      loaded.addon = null;
    }
  }
  return loaded.addon ?? undefined;
}

function fail(addon: Addon, syscall: string, errno: number, what: string): never {
  const code = getSystemErrorName(-errno);
  throw new SysError(`${syscall} ${what}: ${addon.strerror(errno)} (${code})`, code, errno, syscall);
}

/**
 * The system calls, or undefined when the addon is not available (the caller falls back to the
 * util-linux tools). Cheap to call again: the addon is cached by Node's module loader.
 */
export function sysCalls(): SysCalls | undefined {
  const addon = loadAddon();
  if (addon === undefined) return undefined;
  return {
    flock(fd, op) {
      const e = addon.flock(fd, op);
      if (e === 0) return true;
      if (e === EWOULDBLOCK && (op & LOCK_NB) !== 0) return false;
      return fail(addon, 'flock', e, `fd ${fd}`);
    },
    mount(source, target, fstype, flags, data) {
      const e = addon.mount(source, target, fstype, flags >>> 0, data);
      if (e !== 0) fail(addon, 'mount', e, target);
    },
    umount(target, flags = 0) {
      const e = addon.umount2(target, flags);
      if (e !== 0) fail(addon, 'umount', e, target);
    },
    umountAsync(target, flags = 0) {
      const async = addon.umount2Async;
      // (an addon built before umount2Async existed: the synchronous call)
      if (async === undefined) return Promise.resolve().then(() => this.umount(target, flags));
      return new Promise((resolve, reject) => {
        async(target, flags, (e) => {
          if (e === 0) resolve();
          else {
            try {
              fail(addon, 'umount', e, target);
            } catch (err) {
              reject(err);
            }
          }
        });
      });
    },
  };
}

/** The addon's libdeflate functions (native/deflate.c). */
interface DeflateAddon {
  gzipMember(input: Buffer, level: number, output: Buffer, done: (length: number) => void): void;
  gzipMemberSync(input: Buffer, level: number, output: Buffer): number;
  libdeflateLoaded(): boolean;
  libdeflatePath(): string | null;
}

/** libdeflate's whole-buffer gzip compression (native/deflate.c). */
export interface Libdeflate {
  /**
   * `input` as one complete gzip member (fixed header: no name, mtime 0, OS Unix) written into
   * `output`, compressed on libuv's thread pool at `level` (0-12); resolves with the member's
   * length, 0 when `output` is too small. Neither buffer may change until it resolves.
   */
  gzipMember(input: Buffer, level: number, output: Buffer): Promise<number>;
  /** The same on the calling thread. */
  gzipMemberSync(input: Buffer, level: number, output: Buffer): number;
  /** The file the library was loaded from (its bytes are the compressor), when the loader says. */
  readonly path: string | undefined;
}

/**
 * libdeflate (loaded by the addon from libdeflate.so.0 on first use), or undefined when the addon
 * is not built or the library is missing: callers then compress with node:zlib.
 */
export function libdeflate(): Libdeflate | undefined {
  const addon = loadAddon() as (Addon & Partial<DeflateAddon>) | undefined;
  if (addon?.gzipMember === undefined || addon.gzipMemberSync === undefined || addon.libdeflateLoaded?.() !== true) return undefined;
  const { gzipMember, gzipMemberSync } = addon as DeflateAddon;
  return {
    gzipMember: (input, level, output) =>
      new Promise((resolve, reject) => {
        gzipMember(input, level, output, (n) => (n >= 0 ? resolve(n) : reject(new Error('libdeflate: the compression was cancelled'))));
      }),
    gzipMemberSync: (input, level, output) => gzipMemberSync(input, level, output),
    path: (addon as DeflateAddon).libdeflatePath?.() ?? undefined,
  };
}

/** The addon's batched file system calls (native/walk.c). */
interface FastFsAddon {
  lstatBatch(base: string, names: readonly string[], out: BigUint64Array, xattrs?: boolean): number;
  readFileInto(path: string, buffer: Uint8Array, offset: number, length: number): number;
  linkBatchAsync(from: readonly string[], to: readonly string[], errnos: Int32Array, done: (ok: boolean) => void): void;
  fillBlockAsync(block: Buffer, paths: readonly string[], spec: Float64Array, out: Float64Array, done: (ok: boolean) => void): void;
}

/** A piece of a regular file to read into a block (see {@link FastFs.fillBlock}). */
export interface BlockPiece {
  readonly path: string;
  /** The file's size as stat'ed: a piece that ends there also checks the file ends there. */
  readonly size: number;
  /** Where the piece starts in the file, and in the block; its length. */
  readonly from: number;
  readonly at: number;
  readonly length: number;
}

/** Why a piece could not be read: the file ended early (at `end`), went on past its size, or a call failed. */
export type PieceProblem = { piece: number; kind: 'short'; end: number } | { piece: number; kind: 'long' } | { piece: number; kind: 'errno'; errno: number };

/**
 * File system calls for tight synchronous loops (the layer tar writer, the context walk, a COPY
 * rebuild's links): one native call instead of several Node calls, and no stats objects. Errors
 * come back as values; the caller repeats the call with Node's API to throw the usual error.
 */
export interface FastFs {
  /**
   * lstat and the size of the llistxattr list of `base + name` for each of `names`, into `out`
   * ({@link LSTAT_FIELDS} per name): mode, uid, gid, size, mtimeMs (signed: `BigInt.asIntN(64, v)`;
   * nanoseconds / 1e6 truncated, as Node's bigint stats), nlink, dev, ino, rdev, 0, xattr list
   * bytes (0: none or unsupported; signed -1: llistxattr failed; 0 without asking when `xattrs`
   * is false), lstat's errno (0: ok), mtimeNs, ctimeNs (signed). Returns how many names were done.
   */
  lstatBatch(base: string, names: readonly string[], out: BigUint64Array, xattrs?: boolean): number;
  /**
   * Reads the regular file `path` (O_NOFOLLOW) into `buffer[offset, offset + length)` in one call:
   * returns the bytes read (less than `length`: the file is shorter), `length + 1` when it is
   * longer, or a negative errno.
   */
  readFileInto(path: string, buffer: Uint8Array, offset: number, length: number): number;
  /**
   * `link(from[i], to[i])` for each i, in order, on libuv's thread pool (the event loop runs on):
   * resolves with each call's errno (0: linked). Paths must be non-empty and hold no NUL (it
   * rejects with a TypeError otherwise).
   */
  linkBatch(from: readonly string[], to: readonly string[]): Promise<Int32Array>;
  /**
   * Reads each of `pieces` into `block` on libuv's thread pool (open O_NOFOLLOW, pread, close); a
   * piece that ends its file also checks the file has no byte more. Resolves with the first
   * problem, or undefined when all were read. The block must stay untouched until then.
   */
  fillBlock(block: Buffer, pieces: readonly BlockPiece[]): Promise<PieceProblem | undefined>;
}

/** Fields per name of {@link FastFs.lstatBatch}'s output. */
export const LSTAT_FIELDS = 14;

/**
 * The batched calls, or undefined when the addon is not built, or was built from older sources
 * (12 fields per lstat then: never read with this stride), and callers use Node's fs.
 */
export function fastFs(): FastFs | undefined {
  const addon = loadAddon() as (Addon & Partial<FastFsAddon>) | undefined;
  if (addon?.lstatBatch === undefined || addon.readFileInto === undefined || addon.linkBatchAsync === undefined || addon.fillBlockAsync === undefined) return undefined;
  const { linkBatchAsync, fillBlockAsync } = addon as FastFsAddon;
  return {
    lstatBatch: addon.lstatBatch,
    readFileInto: addon.readFileInto,
    linkBatch: (from, to) =>
      new Promise((resolve, reject) => {
        const errnos = new Int32Array(from.length);
        linkBatchAsync(from, to, errnos, (ok) => (ok ? resolve(errnos) : reject(new Error('linkBatch: the work was cancelled'))));
      }),
    fillBlock: (block, pieces) =>
      new Promise((resolve, reject) => {
        const n = pieces.length;
        const spec = new Float64Array(n * 4);
        for (let i = 0; i < n; i++) {
          const p = pieces[i]!;
          spec[4 * i] = p.size;
          spec[4 * i + 1] = p.from;
          spec[4 * i + 2] = p.at;
          spec[4 * i + 3] = p.length;
        }
        const out = new Float64Array(n * 2);
        fillBlockAsync(block, pieces.map((p) => p.path), spec, out, (ok) => {
          if (!ok) return reject(new Error('fillBlock: the work was cancelled'));
          for (let i = 0; i < n; i++) {
            const r = out[i]!;
            if (r === 0) continue;
            return resolve(r === -1 ? { piece: i, kind: 'short', end: out[n + i]! } : r === -2 ? { piece: i, kind: 'long' } : { piece: i, kind: 'errno', errno: r });
          }
          resolve(undefined);
        });
      }),
  };
}

/** The addon's sha256 (native/hash.c). */
interface HashAddon {
  sha256Available(): boolean;
  sha256Init(state: Buffer): void;
  sha256Digest(state: Buffer): Buffer;
  sha256UpdateAsync(state: Buffer, data: Uint8Array[], done: (ok: boolean) => void): void;
}

/**
 * A sha256 computed on libuv's thread pool (OpenSSL's, from the node executable): `update` queues
 * data, which is hashed in order, one pool job at a time taking everything queued; `digest`
 * resolves once all of it is. Each piece of data must stay untouched until it is hashed: until its
 * `hashed` callback, or `digest` resolved.
 */
export interface PoolSha256 {
  update(data: Uint8Array, hashed?: () => void): void;
  /** The digest of everything updated. Call it once, after the last update. */
  digest(): Promise<Buffer>;
}

/** Bytes of the sha256 state the addon keeps in a Buffer (OpenSSL's SHA256_CTX). */
const SHA256_STATE_BYTES = 112;

class PoolHash implements PoolSha256 {
  readonly #addon: HashAddon;
  readonly #state = Buffer.alloc(SHA256_STATE_BYTES);
  #queue: Uint8Array[] = [];
  #callbacks: Array<(() => void) | undefined> = [];
  #busy = false;
  #waiters: Array<() => void> = [];
  #error: Error | undefined;
  constructor(addon: HashAddon) {
    this.#addon = addon;
    addon.sha256Init(this.#state);
  }
  update(data: Uint8Array, hashed?: () => void): void {
    this.#queue.push(data);
    this.#callbacks.push(hashed);
    if (!this.#busy) this.#start();
  }
  #start(): void {
    const data = this.#queue;
    const callbacks = this.#callbacks;
    this.#queue = [];
    this.#callbacks = [];
    this.#busy = true;
    this.#addon.sha256UpdateAsync(this.#state, data, (ok) => {
      this.#busy = false;
      if (!ok) this.#error ??= new Error('sha256: the hashing was cancelled');
      for (const cb of callbacks) cb?.();
      if (this.#queue.length > 0) this.#start();
      else for (const w of this.#waiters.splice(0)) w();
    });
  }
  digest(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const done = (): void => (this.#error !== undefined ? reject(this.#error) : resolve(this.#addon.sha256Digest(this.#state)));
      if (!this.#busy && this.#queue.length === 0) done();
      else this.#waiters.push(done);
    });
  }
}

/**
 * A new {@link PoolSha256}, or undefined when the addon is not built or node exports no SHA256
 * functions (callers hash with node:crypto on the main thread).
 */
export function poolSha256(): PoolSha256 | undefined {
  const addon = loadAddon() as (Addon & Partial<HashAddon>) | undefined;
  if (addon?.sha256UpdateAsync === undefined || addon.sha256Available?.() !== true) return undefined;
  return new PoolHash(addon as HashAddon);
}
