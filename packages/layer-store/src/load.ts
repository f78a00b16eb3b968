/**
 * `load`: images from a tarball into the store. Reads docker-archive (classic `<id>/layer.tar`
 * form and Docker 25's `blobs/sha256/` form) and OCI layout archives, plain or compressed (gzip,
 * zstd: detected by magic).
 *
 * Each member's bytes are read once and, in the same pass, hashed (sha256), written to a temp file
 * in a private directory under the store's `tmp/`, and — for a gzip'd layer — gunzipped and hashed
 * again for the diffID (zlib runs on the thread pool while the main thread hashes); an
 * uncompressed layer tar is gzip'd on the way instead (its diffID is the hash of the raw bytes).
 * A blob already in the store is hashed and checked but not written again.
 *
 * From a stream (stdin, a compressed archive) every member is read as it comes, gzip'd ones with
 * their diffID computed on the side. From an uncompressed archive file (`loadFile`) the headers are
 * listed first and only the members the images need are read, in place (no copy of the archive),
 * several layers at once.
 *
 * Only when the whole archive has been read and checked (JSON, digests, diffIDs against the
 * config's rootfs) are the temp files renamed into `blobs/` and the tags written to `index.json`.
 * On any error the temp directory is removed and `index.json` is untouched.
 */
import { closeSync, createReadStream, fdatasync, fstatSync, fsync, openSync, write } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, type Hash } from 'node:crypto';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { ArchiveError } from './archive-errors.js';
import { archiveCompressionOf, contentKindOf, compressionOf, decompressing, peek, linkTarget, safeMemberName, type ContentKind } from './archive-stream.js';
import { indexArchive, readExactly, type IndexedMember } from './archive-tar.js';
import { hexOf, isDigest } from './digest.js';
import { DigestMismatchError, StoreError } from './errors.js';
import { recordContentSize } from './layer-size.js';
import { ContentSizeScanner } from './layer-size-scan.js';
import { createParallelGzip } from './parallel-gzip.js';
import { parseReference } from './reference.js';
import { CONTAINERD_NAME_ANNOTATION } from './save.js';
import { REF_NAME_ANNOTATION, type Store } from './store.js';
import { MediaTypes, type Cancellable, type Descriptor, type DiffID, type Digest, type ImageConfig, type Index, type Manifest } from './types.js';
import { TimeSlices } from './slices.js';

/** Options of `load`. */
export interface LoadOptions extends Cancellable {
  /**
   * Largest number of bytes any decompressed stream (the archive, each gzip'd layer) may expand
   * to; more throws ArchiveError E_ARCHIVE_TOO_LARGE. Unlimited when absent.
   */
  maxBytes?: number;
}

/** One image `load` stored. */
export interface LoadedImage {
  /** Image ID (config digest). */
  id: Digest;
  manifest: Descriptor;
  /** Full references it was tagged with (may be empty). */
  tags: string[];
  /**
   * Tags of `tags` that named another image before (Docker's "The image T already exists,
   * renaming the old one with ID … to empty string"): the tag and that image's ID.
   */
  moved: Array<{ tag: string; oldId: Digest }>;
}

/** JSON members larger than this are refused (a manifest.json of thousands of images fits). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const BLOB_MEMBER_RE = /^blobs\/sha256\/([0-9a-f]{64})$/;
/**
 * Bytes per read of an archive file and per zlib output buffer: each async step costs a thread-pool
 * hand-off, far dearer on this kind of VM than the copy, so few large steps (zlib's default output
 * buffer of 16 KiB meant 64 hand-offs per MiB). zlib allocates a fresh output buffer each time, so
 * not too large either (page faults): 256 KiB measured best of 64 KiB, 256 KiB and 1 MiB.
 */
const CHUNK = 2 * 1024 * 1024;
const ZLIB_OUT = 256 * 1024;
/**
 * Written bytes after which an fdatasync is started in the background (one at a time): the disk
 * then writes while we read and hash, instead of all at the final fsync (the kernel would not
 * start on its own until gigabytes are dirty).
 */
const WRITEBACK_EVERY = 64 * 1024 * 1024;
/** Layers read at once from an archive file (zlib on the thread pool, hashing on the main thread). */
const LAYER_CONCURRENCY = 2;

/** File writes queued at once per member before its reader waits (each holds a read buffer). */
const MAX_WRITES = 2;
/** Pieces smaller than this (from a stream) are gathered into one write of at least this size. */
const MIN_WRITE = 256 * 1024;

const fdatasyncAsync = promisify(fdatasync);
const writeAsync = (fd: number, buf: Buffer, off: number, len: number): Promise<number> =>
  new Promise((resolve, reject) => write(fd, buf, off, len, null, (err, n) => (err ? reject(err) : resolve(n))));
const fsyncAsync = promisify(fsync);

/** An ingested archive member: what its bytes were and where the blob to store sits. */
interface Spooled {
  name: string;
  kind: ContentKind;
  /** sha256 and size of the member's bytes as they were in the archive. */
  digest: Digest;
  size: number;
  /**
   * The blob to store: the member's bytes, or their gzip for an uncompressed tar. `file` is the
   * temp file to adopt; undefined when the blob was already in the store (nothing was written).
   */
  blob: { file: string | undefined; digest: Digest; size: number };
  /** sha256 of the uncompressed tar (tar members, and gzip members read as layers; undefined for zstd). */
  diffID?: DiffID;
  /** Why the diffID of a gzip member could not be computed (corrupt, truncated, too large). */
  diffError?: unknown;
  /**
   * The layer's content size (see `layer-size.ts`), counted from the uncompressed bytes that were
   * hashed for the diffID; undefined when there is no diffID or the bytes were not a whole tar.
   */
  contentSize?: number;
}

/** The image an archive holds, checked and ready to store. */
interface Plan {
  config: { blob: Spooled['blob']; mediaType: string };
  layers: Array<{ blob: Spooled['blob']; mediaType: string; diffID: DiffID; contentSize: number | undefined }>;
  /** An OCI manifest member to keep byte for byte (when no layer had to be converted). */
  keepManifest?: { blob: Spooled['blob']; mediaType: string };
  tags: string[];
}

/**
 * Loads every image of the archive `input` into the store.
 * @returns the images stored, in archive order.
 * @throws ArchiveError (E_ARCHIVE…: malformed, truncated, unsafe member path, missing member,
 * bad JSON, too large), DigestMismatchError (a blob or layer whose sha256 is not the one named),
 * ReferenceError (a bad tag). After a throw the store's index is as it was.
 */
export async function load(store: Store, input: Readable, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  // blobs written before the index names them: no garbage collection meanwhile
  return store.withLease(() => loadStream(store, input, opts), opts);
}

async function loadStream(store: Store, input: Readable, opts: LoadOptions): Promise<LoadedImage[]> {
  const dir = await store.makeTempDir('load');
  try {
    const members = await spoolArchive(store, input, dir, opts);
    const plans = await planImages(members);
    return await commitPlans(store, plans);
  } finally {
    await store.removeTree(dir);
  }
}

/**
 * Loads every image of the archive file at `path` into the store, like `load`. An uncompressed
 * archive in a regular file is read in place: its headers first, then only the members the images
 * use (several layers at once); anything else (a compressed archive, a pipe) is streamed.
 * @returns the images stored, in archive order.
 * @throws as `load`; StoreError when the file cannot be opened.
 */
export async function loadFile(store: Store, path: string, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  return store.withLease(() => loadPath(store, path, opts), opts);
}

async function loadPath(store: Store, path: string, opts: LoadOptions): Promise<LoadedImage[]> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new StoreError(`open ${path}: ${errnoReason(err)}`, { cause: err, hint: 'check the path given to load -i' });
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new StoreError(`read ${path}: is a directory`, { hint: 'give load -i the archive file, not a directory' });
    if (st.isFile() && st.size === 0) throw emptyArchive();
    const head = Buffer.alloc(Math.min(6, st.size));
    if (st.isFile()) readExactly(fd, head, 0);
    if (!st.isFile() || archiveCompressionOf(head) !== 'none') {
      return await loadStream(store, createReadStream(path, { highWaterMark: CHUNK }), opts);
    }
    if (opts.maxBytes !== undefined && st.size > opts.maxBytes) throw tooLarge('the archive', opts.maxBytes);
    const dir = await store.makeTempDir('load');
    const members = new FileMembers(store, fd, dir, opts);
    try {
      for (const m of indexArchive(fd, st.size)) members.add(m);
      const plans = await planImages(members);
      return await commitPlans(store, plans);
    } finally {
      await members.settled();
      await store.removeTree(dir);
    }
  } finally {
    closeSync(fd);
  }
}

// ---- reading the archive ----

/** The archive's members by name, with archive-internal links followed. */
abstract class Members<T> {
  readonly files = new Map<string, T>();
  readonly links = new Map<string, string>();

  /** The member `name` refers to (following links). */
  resolve(name: string, what: string): { name: string; member: T } {
    let n = referencedMemberName(name, what);
    for (let hops = 0; hops < 40; hops++) {
      const f = this.files.get(n);
      if (f) return { name: n, member: f };
      const next = this.links.get(n);
      if (next === undefined) break;
      n = next;
    }
    throw new ArchiveError('E_ARCHIVE_MISSING_MEMBER', `the archive has no ${what}`, { member: name });
  }

  has(name: string): boolean {
    return this.files.has(name) || this.links.has(name);
  }

  /** The member `name` refers to, read: hashed, in a temp file; `asLayer` asks for its diffID. */
  abstract get(name: string, what: string, asLayer?: boolean): Promise<Spooled>;

  /** The blob's bytes on disk: its temp file, or the store's copy. */
  protected abstract pathOf(blob: Spooled['blob']): string;

  async json<T>(name: string, what: string): Promise<T> {
    const m = await this.get(name, what);
    if (m.kind !== 'other' || m.size > MAX_JSON_BYTES) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', `${what} is not a JSON document`, { member: name });
    }
    try {
      return JSON.parse(await readFile(this.pathOf(m.blob), 'utf8')) as T;
    } catch (err) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', `${what} is not valid JSON`, { member: name, cause: err });
    }
  }
}

/** Members of a streamed archive: all read (and gzip'd ones gunzipped for a diffID) as they came. */
class StreamMembers extends Members<Spooled> {
  constructor(private readonly store: Store) {
    super();
  }
  get(name: string, what: string): Promise<Spooled> {
    return Promise.resolve(this.resolve(name, what).member);
  }
  protected pathOf(blob: Spooled['blob']): string {
    return blob.file ?? this.store.blobPath(blob.digest);
  }
}

/** Members of an archive file, read in place when first asked for (layers a few at once). */
class FileMembers extends Members<IndexedMember> {
  readonly #read = new Map<string, Promise<Spooled>>();
  readonly #queue: Array<() => void> = [];
  #running = 0;
  #count = 0;

  constructor(
    private readonly store: Store,
    private readonly fd: number,
    private readonly dir: string,
    private readonly opts: LoadOptions,
  ) {
    super();
  }

  add(m: IndexedMember): void {
    const name = safeMemberName(m.name);
    if (m.type === 'file') {
      this.files.set(name, m);
      this.links.delete(name);
    } else if (m.type === 'symlink' || m.type === 'link') {
      this.links.set(name, linkTarget(name, m.linkname, m.type));
      this.files.delete(name);
    }
  }

  get(name: string, what: string, asLayer = false): Promise<Spooled> {
    const { name: n, member } = this.resolve(name, what);
    const key = `${asLayer ? 'layer' : 'blob'}:${n}`;
    let p = this.#read.get(key);
    if (!p) {
      p = this.#limited(asLayer, () => this.#ingest(n, member, asLayer));
      p.catch(() => undefined);
      this.#read.set(key, p);
    }
    return p;
  }

  /** Resolves once no read is running (so the temp dir can be removed). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#read.values());
  }

  protected pathOf(blob: Spooled['blob']): string {
    return blob.file ?? this.store.blobPath(blob.digest);
  }

  async #ingest(name: string, m: IndexedMember, asLayer: boolean): Promise<Spooled> {
    const named = BLOB_MEMBER_RE.exec(name)?.[1];
    const stored = named !== undefined && (await this.store.hasBlob(`sha256:${named}` as Digest));
    const file = stored ? undefined : join(this.dir, String(this.#count++));
    return ingestAt(this.fd, m.offset, m.size, name, { file, diffID: asLayer, maxBytes: this.opts.maxBytes, signal: this.opts.signal });
  }

  async #limited<T>(limit: boolean, fn: () => Promise<T>): Promise<T> {
    if (!limit) return fn();
    if (this.#running >= LAYER_CONCURRENCY) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running++;
    try {
      return await fn();
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }
}

/**
 * Read buffers, reused once the sink is done with them: on this kind of VM a fresh 2 MiB buffer
 * costs more in page faults (mmap, zeroing, munmap) than reading into it (measured: 533 MB read
 * and written in 2 MiB pieces took 2.0 s of system time with fresh buffers, 0.33 s with one).
 */
class ChunkPool {
  readonly #free: Buffer[] = [];
  #made = 0;
  #waiter: (() => void) | undefined;

  constructor(private readonly max: number) {}

  /** A free buffer of CHUNK bytes; waits for one to be given back, unless `abandon` resolves first. */
  async take(abandon: Promise<void> | undefined): Promise<Buffer> {
    for (;;) {
      const b = this.#free.pop();
      if (b) return b;
      if (this.#made < this.max || !abandon) {
        this.#made++;
        return Buffer.allocUnsafe(CHUNK);
      }
      let gone = false;
      await Promise.race([new Promise<void>((resolve) => (this.#waiter = resolve)), abandon.then(() => (gone = true))]);
      // The side stream ended or failed: what it still holds it will not give back.
      if (gone && this.#free.length === 0) return Buffer.allocUnsafe(CHUNK);
    }
  }

  give(b: Buffer): void {
    this.#free.push(b);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}

/**
 * `ingestMember` for a member of an archive file: read in place in CHUNK-sized pieces into a few
 * reused buffers (each given back when the sink, zlib included, is done with it).
 */
async function ingestAt(fd: number, offset: number, size: number, name: string, opts: IngestOptions): Promise<Spooled> {
  const pool = new ChunkPool(4);
  let buf = await pool.take(undefined);
  let n = Math.min(CHUNK, size);
  readExactly(fd, buf.subarray(0, n), offset);
  const sink = new BlobSink(contentKindOf(buf.subarray(0, n)), name, opts);
  try {
    const slices = new TimeSlices(opts.signal);
    for (let pos = 0; ; ) {
      const held = buf;
      await sink.write(buf.subarray(0, n), sink.kind === 'tar' ? undefined : () => pool.give(held));
      pos += n;
      if (pos >= size) break;
      if (slices.due()) await slices.yield();
      // A converted tar's gzip may keep references to its input: those buffers are not reused.
      buf = sink.kind === 'tar' ? Buffer.allocUnsafe(CHUNK) : await pool.take(sink.sideDone);
      n = Math.min(CHUNK, size - pos);
      readExactly(fd, buf.subarray(0, n), offset + pos);
    }
    return checkNamed(await sink.end());
  } finally {
    await sink.close();
  }
}

async function spoolArchive(store: Store, input: Readable, dir: string, opts: LoadOptions): Promise<StreamMembers> {
  const members = new StreamMembers(store);
  const { head, rest } = await peek(input, 1);
  if (head.length === 0) throw emptyArchive();
  const { streams } = await decompressing(rest, { maxBytes: opts.maxBytes, what: 'the archive' });
  const extract = tar.extract();
  const feeding = pipeline([...streams, extract], opts.signal ? { signal: opts.signal } : {});
  feeding.catch(() => undefined);
  let count = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const name = safeMemberName(h.name);
      if (h.type === 'file' || h.type === 'contiguous-file') {
        const named = BLOB_MEMBER_RE.exec(name)?.[1];
        const stored = named !== undefined && (await store.hasBlob(`sha256:${named}` as Digest));
        const file = stored ? undefined : join(dir, String(count++));
        const spooled = await ingestMember(entry as AsyncIterable<Buffer>, name, { file, diffID: true, maxBytes: opts.maxBytes, signal: opts.signal });
        members.files.set(name, spooled);
        members.links.delete(name);
      } else if (h.type === 'symlink' || h.type === 'link') {
        members.links.set(name, linkTarget(name, h.linkname ?? '', h.type));
        members.files.delete(name);
        entry.resume();
      } else {
        entry.resume();
      }
    }
    await feeding;
  } catch (err) {
    throw archiveReadError(err, opts.signal);
  }
  return members;
}

/** What an fs error says, without Node's code and syscall (`no such file or directory`), as Go prints it. */
function errnoReason(err: unknown): string {
  const m = /^E[A-Z]+: ([^,]+)/.exec(err instanceof Error ? err.message : String(err));
  return m ? m[1]! : String(err);
}

/** An input of no bytes at all (dockerd: it has no manifest.json, nor a legacy repositories file). */
function emptyArchive(): ArchiveError {
  return new ArchiveError('E_ARCHIVE', 'not an image archive: the input is empty (0 bytes)', {
    hint: 'load takes the output of docker save, tsbuild save or skopeo copy docker-archive:/oci-archive:; check the file (was the save interrupted?)',
  });
}

/** Turns what reading failed with into our error classes (ours pass through). */
function archiveReadError(err: unknown, signal: AbortSignal | undefined): unknown {
  if (err instanceof StoreError || signal?.aborted) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (/Unexpected end of data|unexpected end of file/i.test(msg) || code === 'Z_BUF_ERROR') {
    return new ArchiveError('E_ARCHIVE_TRUNCATED', 'the archive is truncated', { cause: err, hint: 'the file was cut short (an interrupted download or save?); nothing was loaded' });
  }
  if (/Invalid tar header/i.test(msg)) {
    return new ArchiveError('E_ARCHIVE', 'the input is not a tar archive (or it is corrupt)', { cause: err, hint: 'load takes the output of docker save, tsbuild save or skopeo copy docker-archive:/oci-archive:' });
  }
  if (code?.startsWith('Z_') || /incorrect header check|invalid .* (code|distance)/i.test(msg)) {
    return new ArchiveError('E_ARCHIVE', 'the archive\'s compressed data is corrupt', { cause: err });
  }
  return new StoreError('reading the archive', { cause: err });
}

function tooLarge(what: string, max: number): ArchiveError {
  return new ArchiveError('E_ARCHIVE_TOO_LARGE', `${what} expands to more than ${max} bytes`, {
    hint: 'the input may be a decompression bomb; raise the size limit if it is genuine',
  });
}

interface IngestOptions extends Cancellable {
  /** Temp file to write the blob to; undefined when the blob is already stored (hash and check only). */
  file: string | undefined;
  /** Gunzip a gzip member to hash it (its diffID). */
  diffID: boolean;
  maxBytes?: number | undefined;
}

/**
 * Reads one member once: hashes it; writes it (an uncompressed tar: its gzip) to `opts.file`,
 * fsynced and closed before this returns; for a gzip member with `opts.diffID`, gunzips a copy on
 * the thread pool and hashes that. A member named `blobs/sha256/<hex>` must hash to `<hex>`.
 * @throws DigestMismatchError, ArchiveError, or what reading `chunks` throws.
 */
async function ingestMember(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, name: string, opts: IngestOptions): Promise<Spooled> {
  const it = (Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]()) as AsyncIterator<Buffer> | Iterator<Buffer>;
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  while (headBytes < 512) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    headBytes += r.value.length;
  }
  const kind = contentKindOf(head.length === 1 ? head[0]! : Buffer.concat(head));
  const sink = new BlobSink(kind, name, opts);
  try {
    const slices = new TimeSlices(opts.signal);
    const take = async (chunk: Buffer): Promise<void> => {
      await sink.write(chunk);
      if (slices.due()) await slices.yield();
    };
    for (const c of head) await take(c);
    while (!ended) {
      const r = await it.next();
      if (r.done) break;
      await take(r.value);
    }
    return checkNamed(await sink.end());
  } finally {
    await sink.close();
  }
}

/** A member named `blobs/sha256/<hex>` must hash to `<hex>`. @throws DigestMismatchError */
function checkNamed(spooled: Spooled): Spooled {
  const named = BLOB_MEMBER_RE.exec(spooled.name)?.[1];
  if (named !== undefined && named !== hexOf(spooled.digest)) {
    throw new DigestMismatchError({ expected: `sha256:${named}`, actual: spooled.digest, path: `archive member ${spooled.name}` });
  }
  return spooled;
}

/**
 * Where one member's bytes go: sha256 of the bytes (main thread), writes to the temp file (on the
 * thread pool, in order, at most a few at once: copying into fresh page-cache pages was the main
 * thread's largest cost, 30% of the samples, before it moved), background writeback, and a zlib
 * side stream — gunzip → sha256 for a gzip layer's diffID, or gzip → file for an uncompressed tar.
 */
class BlobSink {
  readonly #raw: Hash = createHash('sha256');
  #rawSize = 0;
  readonly #fd: number | undefined;
  readonly #file: string | undefined;
  /** gunzip (diffID) or gzip (conversion), with what comes out of it hashed. */
  readonly #side: NodeJS.ReadWriteStream & { destroy(err?: Error): void } | undefined;
  readonly #sideHash: Hash = createHash('sha256');
  #sideSize = 0;
  /** Counts the content size from the uncompressed tar (the raw bytes of a tar, the gunzipped ones of a gzip layer). */
  readonly #scanner: ContentSizeScanner | undefined;
  #sideError: unknown;
  /** Resolves when the side stream has ended or failed (undefined: no side stream). */
  readonly sideDone: Promise<void> | undefined;
  #unsynced = 0;
  #writeback: Promise<void> | undefined;
  #writebackError: unknown;
  /** The file writes queued so far (each starts when the previous one is done), how many, and the first failure. */
  #writing: Promise<void> = Promise.resolve();
  #writes = 0;
  #writeError: unknown;
  /** Small pieces gathered (copied) into one write. */
  #stage: Buffer[] = [];
  #staged = 0;

  constructor(
    readonly kind: ContentKind,
    readonly name: string,
    readonly opts: IngestOptions,
  ) {
    this.#file = kind === 'tar' || opts.file !== undefined ? opts.file : undefined;
    if (this.#file !== undefined) this.#fd = openSync(this.#file, 'wx', 0o644);
    if (kind === 'tar' || (kind === 'gzip' && opts.diffID)) this.#scanner = new ContentSizeScanner();
    if (kind === 'tar') {
      this.#side = createParallelGzip();
    } else if (kind === 'gzip' && opts.diffID) {
      // zlib hands its options to Transform too: room for a chunk in flight while the next is read.
      this.#side = createGunzip({ chunkSize: ZLIB_OUT, writableHighWaterMark: 2 * CHUNK } as ZlibOptions);
    }
    const side = this.#side;
    if (side) {
      const cap = kind === 'gzip' ? opts.maxBytes : undefined;
      side.on('data', (c: Buffer) => {
        this.#sideSize += c.length;
        if (cap !== undefined && this.#sideSize > cap) {
          side.destroy(tooLarge(`layer ${name}`, cap));
          return;
        }
        this.#sideHash.update(c);
        if (kind === 'tar') this.#writeFile(c, undefined);
        else this.#scanner?.update(c);
      });
      this.sideDone = new Promise<void>((resolve) => {
        side.once('end', resolve);
        side.once('error', (err: unknown) => {
          this.#sideError ??= err;
          resolve();
        });
        side.once('close', resolve);
      });
    }
  }

  /** Takes `chunk`; `release` is called once nothing (zlib included) reads it any more. */
  async write(chunk: Buffer, release?: () => void): Promise<void> {
    this.#raw.update(chunk);
    this.#rawSize += chunk.length;
    if (this.kind === 'tar') this.#scanner?.update(chunk);
    const side = this.#side;
    const feedSide = side !== undefined && this.#sideError === undefined;
    // Released when both the file write (if any) and zlib (if fed) are done with it.
    let holds = 1 + (feedSide ? 1 : 0);
    const done = (): void => {
      if (--holds === 0) release?.();
    };
    if (this.kind !== 'tar') this.#writeFile(chunk, done);
    else done();
    if (this.#writeError !== undefined) throw this.#writeError;
    if (this.#writes > MAX_WRITES) await this.#writing;
    if (!feedSide) {
      if (this.kind === 'tar' && this.#sideError !== undefined) throw this.#sideError;
      return;
    }
    if (!side.write(chunk, done)) await Promise.race([new Promise((resolve) => side.once('drain', resolve)), this.sideDone]);
  }

  async end(): Promise<Spooled> {
    const side = this.#side;
    if (side && this.#sideError === undefined) {
      side.end();
      await this.sideDone;
    }
    if (this.kind === 'tar' && this.#sideError !== undefined) throw this.#sideError;
    if (this.#fd !== undefined) {
      this.#flushStage();
      await this.#writing;
      if (this.#writeError !== undefined) throw this.#writeError;
      await this.#writeback;
      if (this.#writebackError !== undefined) throw this.#writebackError;
      await fsyncAsync(this.#fd);
    }
    const digest = `sha256:${this.#raw.digest('hex')}` as Digest;
    const side256 = side ? (`sha256:${this.#sideHash.digest('hex')}` as Digest) : undefined;
    const base = { name: this.name, kind: this.kind, digest, size: this.#rawSize };
    const contentSize = this.#scanner?.size;
    if (this.kind === 'tar') {
      return { ...base, blob: { file: this.#file, digest: side256!, size: this.#sideSize }, diffID: digest as string as DiffID, ...(contentSize !== undefined ? { contentSize } : {}) };
    }
    const spooled: Spooled = { ...base, blob: { file: this.#file, digest, size: this.#rawSize } };
    if (side) {
      if (this.#sideError === undefined) {
        spooled.diffID = side256 as string as DiffID;
        if (contentSize !== undefined) spooled.contentSize = contentSize;
      } else spooled.diffError = this.#sideError;
    }
    return spooled;
  }

  /** Stops the side stream and closes the file (after any background writeback). */
  async close(): Promise<void> {
    this.#side?.destroy();
    await this.#writing;
    await this.#writeback;
    if (this.#fd !== undefined) closeSync(this.#fd);
  }

  /** Queues `chunk` for the file (small pieces are copied and gathered); `done` when it is no longer needed. */
  #writeFile(chunk: Buffer, done: (() => void) | undefined): void {
    if (this.#fd === undefined) {
      done?.();
      return;
    }
    if (chunk.length < MIN_WRITE) {
      this.#stage.push(Buffer.from(chunk));
      this.#staged += chunk.length;
      done?.();
      if (this.#staged >= MIN_WRITE) this.#flushStage();
      return;
    }
    this.#flushStage();
    this.#queueWrite(chunk, done);
  }

  #flushStage(): void {
    if (this.#staged === 0) return;
    const joined = Buffer.concat(this.#stage, this.#staged);
    this.#stage = [];
    this.#staged = 0;
    this.#queueWrite(joined, undefined);
  }

  #queueWrite(chunk: Buffer, done: (() => void) | undefined): void {
    const fd = this.#fd!;
    this.#writes++;
    this.#writing = this.#writing.then(async () => {
      try {
        if (this.#writeError === undefined) {
          for (let off = 0; off < chunk.length; ) off += await writeAsync(fd, chunk, off, chunk.length - off);
          this.#written(chunk.length);
        }
      } catch (err) {
        this.#writeError ??= err;
      } finally {
        this.#writes--;
        done?.();
      }
    });
  }

  /** Starts a background fdatasync (one at a time) every WRITEBACK_EVERY bytes written. */
  #written(n: number): void {
    const fd = this.#fd!;
    this.#unsynced += n;
    if (this.#unsynced >= WRITEBACK_EVERY && this.#writeback === undefined) {
      this.#unsynced = 0;
      this.#writeback = fdatasyncAsync(fd).then(
        () => {
          this.#writeback = undefined;
        },
        (err: unknown) => {
          this.#writebackError = err;
          this.#writeback = undefined;
        },
      );
    }
  }
}

// ---- understanding the archive ----

interface DockerManifestEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

/**
 * The archive member a name in manifest.json (or index.json) refers to, resolved as Docker 20.10's
 * load does (joined to the archive's root and cleaned: `./a`, `x/../a` and `/a` all name `a`).
 * @throws ArchiveError E_ARCHIVE_UNSAFE_PATH for a name that leaves the archive (`../../etc/passwd`).
 */
export function referencedMemberName(name: string, what: string): string {
  const n = posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) {
    throw new ArchiveError('E_ARCHIVE_UNSAFE_PATH', `unsafe path in archive: the ${what} named in the archive's JSON is outside the archive`, {
      member: name,
      hint: 'the archive is malformed or hostile (it names a file outside itself); nothing was loaded',
    });
  }
  return n === '.' ? '' : n;
}

/**
 * The full references of a manifest.json entry's RepoTags, checked as Docker 20.10's load does:
 * each must be a string and a tag (`name:tag`; a bare name or a digest reference is refused with
 * dockerd's `invalid tag "x"`). null or absent: none.
 * @throws ArchiveError E_ARCHIVE_BAD_JSON; ReferenceError for a malformed name.
 */
function repoTagsOf(repoTags: unknown): string[] {
  if (repoTags === undefined || repoTags === null) return [];
  if (!Array.isArray(repoTags) || !repoTags.every((t): t is string => typeof t === 'string')) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'manifest.json: RepoTags is not a list of strings', { member: 'manifest.json' });
  }
  return repoTags.map((t) => {
    // a tag is what follows the last ':' after the last '/', with no digest
    if (t.includes('@') || t.lastIndexOf(':') <= t.lastIndexOf('/')) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', `invalid tag ${JSON.stringify(t)} in manifest.json's RepoTags: a tag is name:tag`, {
        member: 'manifest.json',
        hint: 'the archive was not made by docker save; fix RepoTags (or empty it to load the image untagged)',
      });
    }
    return parseReference(t).full();
  });
}

async function planImages(members: Members<unknown>): Promise<Plan[]> {
  if (members.has('manifest.json')) return planDocker(members);
  if (members.has('index.json')) return planOCI(members);
  throw new ArchiveError('E_ARCHIVE', 'not an image archive: it has neither manifest.json (docker save) nor index.json (OCI layout)', {
    hint: 'to make an image from a root filesystem tarball, use import',
  });
}

async function planDocker(members: Members<unknown>): Promise<Plan[]> {
  const entries = await members.json<unknown>('manifest.json', 'image list');
  if (!Array.isArray(entries)) throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'manifest.json is not a list of images', { member: 'manifest.json' });
  const plans: Plan[] = [];
  for (const e of entries as DockerManifestEntry[]) {
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'manifest.json entry lacks Config or Layers', { member: 'manifest.json' });
    }
    const configMember = await members.get(e.Config, 'image config');
    const namedHex = /^(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(referencedMemberName(e.Config, 'image config'))?.[1];
    if (namedHex !== undefined && namedHex !== hexOf(configMember.digest)) {
      throw new DigestMismatchError({ expected: `sha256:${namedHex}`, actual: configMember.digest, path: `archive member ${e.Config}`, what: 'image config' });
    }
    const config = await members.json<ImageConfig>(e.Config, 'image config');
    const diffIDs = diffIDsOf(config, e.Config);
    const layerNames = e.Layers as string[];
    if (layerNames.length !== diffIDs.length) {
      throw new ArchiveError('E_ARCHIVE', `manifest.json lists ${layerNames.length} layers but the config's rootfs has ${diffIDs.length}`, { member: e.Config });
    }
    const read = await allInOrder(layerNames.map((n, i) => members.get(n, `layer ${i + 1}`, true)));
    const layers = read.map((m, i) => layerFor(m, diffIDs[i]!));
    const tags = repoTagsOf(e.RepoTags);
    plans.push({ config: { blob: configMember.blob, mediaType: MediaTypes.ociConfig }, layers: layers.map((l) => l.layer), tags });
  }
  return plans;
}

async function planOCI(members: Members<unknown>): Promise<Plan[]> {
  const index = await members.json<Index>('index.json', 'OCI index');
  if (!Array.isArray(index?.manifests)) throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'index.json has no manifests list', { member: 'index.json' });
  const plans = new Map<string, Plan>();
  for (const desc of index.manifests) {
    const manifestDesc = await pickManifest(members, desc);
    let plan = plans.get(manifestDesc.digest);
    if (!plan) {
      plan = await planManifest(members, manifestDesc);
      plans.set(manifestDesc.digest, plan);
    }
    const name = desc.annotations?.[CONTAINERD_NAME_ANNOTATION] ?? desc.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined) {
      const full = parseReference(name).full();
      if (!plan.tags.includes(full)) plan.tags.push(full);
    }
  }
  return [...plans.values()];
}

/** The blob member a descriptor names, read, its size checked (its digest was checked while reading). */
async function blobMember(members: Members<unknown>, desc: Descriptor, what: string, asLayer = false): Promise<Spooled> {
  if (typeof desc?.digest !== 'string' || !isDigest(desc.digest)) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', `${what} has an invalid digest "${String(desc?.digest)}"`);
  }
  const m = await members.get(`blobs/sha256/${hexOf(desc.digest)}`, what, asLayer);
  if (m.size !== desc.size) {
    throw new DigestMismatchError({ expected: `${desc.size} bytes`, actual: `${m.size} bytes`, path: `archive member ${m.name}`, what });
  }
  return m;
}

/** For a manifest list / index, the manifest for this machine's platform (else the first). */
async function pickManifest(members: Members<unknown>, desc: Descriptor): Promise<Descriptor> {
  if (desc.mediaType !== MediaTypes.ociIndex && desc.mediaType !== MediaTypes.dockerManifestList) return desc;
  const m = await blobMember(members, desc, 'nested index');
  const nested = await members.json<Index>(m.name, 'nested index');
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const list = Array.isArray(nested?.manifests) ? nested.manifests : [];
  const hit = list.find((d) => d.platform?.os === 'linux' && d.platform.architecture === arch) ?? list[0];
  if (!hit) throw new ArchiveError('E_ARCHIVE', 'a nested index lists no manifests', { member: m.name });
  return hit;
}

async function planManifest(members: Members<unknown>, desc: Descriptor): Promise<Plan> {
  const manifestMember = await blobMember(members, desc, 'image manifest');
  const manifest = await members.json<Manifest>(manifestMember.name, 'image manifest');
  if (!manifest?.config || !Array.isArray(manifest.layers)) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'image manifest lacks config or layers', { member: manifestMember.name });
  }
  const configMember = await blobMember(members, manifest.config, 'image config');
  const config = await members.json<ImageConfig>(configMember.name, 'image config');
  const diffIDs = diffIDsOf(config, configMember.name);
  if (diffIDs.length !== manifest.layers.length) {
    throw new ArchiveError('E_ARCHIVE', `the manifest lists ${manifest.layers.length} layers but the config's rootfs has ${diffIDs.length}`, { member: manifestMember.name });
  }
  const read = await allInOrder(manifest.layers.map((d, i) => blobMember(members, d, `layer ${i + 1}`, true)));
  const layers = read.map((m, i) => layerFor(m, diffIDs[i]!));
  const converted = layers.some((l) => l.converted);
  return {
    config: { blob: configMember.blob, mediaType: manifest.config.mediaType },
    layers: layers.map((l) => l.layer),
    ...(converted ? {} : { keepManifest: { blob: manifestMember.blob, mediaType: desc.mediaType } }),
    tags: [],
  };
}

/**
 * Waits for every promise (none is left running, so nothing writes into a temp dir being removed),
 * then returns their values, or throws the first failure in list order.
 */
async function allInOrder<T>(promises: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function diffIDsOf(config: ImageConfig, member: string): DiffID[] {
  const ids = config?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'image config has no valid rootfs.diff_ids', { member });
  }
  return ids;
}

/** A layer member as a blob to store, its diffID checked against the config. */
function layerFor(m: Spooled, expected: DiffID): { layer: Plan['layers'][number]; converted: boolean } {
  if (m.kind === 'other') {
    throw new ArchiveError('E_ARCHIVE', 'layer is neither a tar nor a gzip/zstd-compressed tar', { member: m.name });
  }
  if (m.diffError !== undefined) {
    const err = m.diffError;
    if (err instanceof ArchiveError && err.code === 'E_ARCHIVE_TOO_LARGE') throw err;
    throw new ArchiveError('E_ARCHIVE', 'layer\'s gzip data is corrupt or truncated', { member: m.name, cause: err });
  }
  if (m.diffID !== undefined && m.diffID !== expected) {
    throw new DigestMismatchError({ expected, actual: m.diffID, path: `archive member ${m.name}`, what: 'layer diffID' });
  }
  const mediaType = m.kind === 'zstd' ? MediaTypes.ociLayerZstd : MediaTypes.ociLayerGzip;
  // A zstd layer's diffID is not computed here (nor its size): the size is counted on first use.
  const contentSize = m.diffID === expected ? m.contentSize : undefined;
  return { layer: { blob: m.blob, mediaType, diffID: expected, contentSize }, converted: m.kind === 'tar' };
}

// ---- storing ----

async function commitPlans(store: Store, plans: Plan[]): Promise<LoadedImage[]> {
  const adopted = new Set<string>();
  /** Layers whose content size (counted while reading them) is recorded, so `images` need not read them again. */
  const sized = new Set<DiffID>();
  const adopt = async (blob: Spooled['blob']): Promise<void> => {
    if (adopted.has(blob.digest)) return;
    adopted.add(blob.digest);
    if (await store.hasBlob(blob.digest)) return;
    if (blob.file === undefined) throw new StoreError(`blob ${blob.digest} left the store while loading`, { hint: 'was the store pruned meanwhile? load again' });
    await store.adoptBlob(blob.file, blob.digest);
  };
  const out: LoadedImage[] = [];
  for (const plan of plans) {
    await adopt(plan.config.blob);
    for (const l of plan.layers) {
      await adopt(l.blob);
      if (l.contentSize !== undefined && !sized.has(l.diffID)) {
        sized.add(l.diffID);
        await recordContentSize(store, l.diffID, l.contentSize);
      }
    }
    let manifestDesc: Descriptor;
    if (plan.keepManifest) {
      await adopt(plan.keepManifest.blob);
      manifestDesc = { mediaType: plan.keepManifest.mediaType, digest: plan.keepManifest.blob.digest, size: plan.keepManifest.blob.size };
    } else {
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: plan.config.mediaType, digest: plan.config.blob.digest, size: plan.config.blob.size },
        layers: plan.layers.map((l) => ({ mediaType: l.mediaType, digest: l.blob.digest, size: l.blob.size })),
      };
      manifestDesc = await store.writeJSONBlob(manifest, MediaTypes.ociManifest);
    }
    if (plan.tags.length === 0) await addUntagged(store, manifestDesc);
    const moved: LoadedImage['moved'] = [];
    for (const t of plan.tags) {
      const old = (await store.findImage(t))?.id;
      if (old !== undefined && old !== plan.config.blob.digest) moved.push({ tag: t, oldId: old });
      await store.tag(t, manifestDesc);
    }
    out.push({ id: plan.config.blob.digest, manifest: manifestDesc, tags: plan.tags, moved });
  }
  return out;
}

async function addUntagged(store: Store, desc: Descriptor): Promise<void> {
  await store.updateIndex((index) =>
    index.manifests.some((m) => m.digest === desc.digest) ? index : { ...index, manifests: [...index.manifests, desc] },
  );
}

