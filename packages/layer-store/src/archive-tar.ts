/**
 * Writes archive tarballs (save's output) deterministically: entries in the order given (callers
 * sort them), mtime 0, uid/gid 0, no user names, fixed modes. File contents are read synchronously
 * straight into 1 MiB buffers, which go to the output one write at a time (a save of a small image
 * is one or two writes, not a stream per member). Also lists the members of
 * an archive file in place (load reads them where they are, without copying the archive). Internal
 * to the package.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { ArchiveError } from './archive-errors.js';
import { StoreError } from './errors.js';
import { encodeHeader, padding, trailer } from './tar.js';

/** One member of an archive to write. */
export type ArchiveMember =
  | { type: 'directory'; name: string }
  /** A file's bytes, read from `path`; `missing` makes the error for a file that is not there. */
  | { type: 'file'; name: string; size: number; path: string; missing: (cause: Error) => Error }
  | { type: 'file'; name: string; data: Buffer };

const OUT_CHUNK = 1024 * 1024;

/**
 * Fills a buffer and hands it to `out` when full, with at most one write in flight: while it is
 * written the next buffer fills. Each buffer is a fresh one, never reused: a Writable may keep
 * the chunks it is given (a PassThrough hands them on as they are).
 */
class ChunkSink {
  #cur = Buffer.allocUnsafeSlow(OUT_CHUNK);
  #n = 0;
  #inflight: Promise<void> | undefined;
  #error: Error | undefined;
  readonly #onError = (err: Error) => (this.#error ??= err);

  constructor(readonly out: Writable) {
    out.on('error', this.#onError);
  }

  /** The unfilled rest of the current buffer (fill it, then `advance`). */
  space(): Buffer {
    return this.#cur.subarray(this.#n);
  }

  advance(n: number): Promise<void> | undefined {
    this.#n += n;
    return this.#n === OUT_CHUNK ? this.flush() : undefined;
  }

  async put(b: Buffer): Promise<void> {
    let off = 0;
    while (off < b.length) {
      const k = b.copy(this.#cur, this.#n, off);
      off += k;
      await this.advance(k);
    }
  }

  async flush(): Promise<void> {
    await this.#inflight;
    if (this.#error) throw this.#error;
    if (this.#n === 0) return;
    const chunk = this.#cur.subarray(0, this.#n);
    this.#inflight = new Promise<void>((resolve, reject) => this.out.write(chunk, (err) => (err ? reject(err) : resolve())));
    this.#cur = Buffer.allocUnsafeSlow(OUT_CHUNK);
    this.#n = 0;
  }

  async end(): Promise<void> {
    await this.flush();
    await this.#inflight;
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (this.#error) throw this.#error;
    this.out.off('error', this.#onError);
  }

  destroy(err: Error): void {
    this.#inflight?.catch(() => undefined);
    this.out.destroy(err);
  }
}

/**
 * Writes `members` as a tar into `out`, then ends `out`.
 * @throws a member's `missing` error, StoreError (a file whose size is not the member's), or
 * whatever `out` fails with; `out` is then destroyed with the error and the tar is incomplete
 * (callers that write files write to a temp file and rename only on success).
 */
export async function writeArchive(members: Iterable<ArchiveMember>, out: Writable, { signal }: { signal?: AbortSignal | undefined } = {}): Promise<void> {
  const sink = new ChunkSink(out);
  try {
    for (const m of members) {
      signal?.throwIfAborted();
      const base = { name: m.name, uid: 0, gid: 0, mtime: 0 };
      if (m.type === 'directory') {
        await sink.put(encodeHeader({ ...base, type: 'directory', mode: 0o755, size: 0 }));
      } else if ('data' in m) {
        await sink.put(encodeHeader({ ...base, type: 'file', mode: 0o644, size: m.data.length }));
        await sink.put(m.data);
        await sink.put(padding(m.data.length));
      } else {
        await sink.put(encodeHeader({ ...base, type: 'file', mode: 0o644, size: m.size }));
        await copyFile(m, sink, signal);
        await sink.put(padding(m.size));
      }
    }
    await sink.put(trailer());
    await sink.end();
  } catch (err) {
    sink.destroy(err as Error);
    throw err;
  }
}

/** Reads the member's file into the sink, synchronously, one buffer-full at a time. */
async function copyFile(m: { name: string; size: number; path: string; missing: (cause: Error) => Error }, sink: ChunkSink, signal: AbortSignal | undefined): Promise<void> {
  let fd: number;
  try {
    fd = openSync(m.path, 'r');
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? m.missing(err as Error) : err;
  }
  try {
    const actual = fstatSync(fd).size;
    if (actual !== m.size) throw new StoreError(`${m.path} holds ${actual} bytes where ${m.size} were expected`, { code: 'E_CORRUPT_BLOB', hint: "the store is damaged; 'tsbuild pull' or rebuild the image" });
    let pos = 0;
    while (pos < m.size) {
      const space = sink.space();
      const n = readSync(fd, space, 0, Math.min(space.length, m.size - pos), pos);
      if (n === 0) throw new StoreError(`${m.path} ended after ${pos} of ${m.size} bytes`, { code: 'E_CORRUPT_BLOB' });
      pos += n;
      const flushing = sink.advance(n);
      if (flushing) {
        await flushing;
        signal?.throwIfAborted();
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** One member of an archive file, located in place: where its bytes start and how many there are. */
export interface IndexedMember {
  name: string;
  type: 'file' | 'link' | 'symlink' | 'other';
  linkname: string;
  /** Byte offset of the member's data in the file. */
  offset: number;
  size: number;
}

const BLOCK = 512;
/** PAX and GNU long-name bodies larger than this are refused (a path is at most a few KiB). */
const MAX_META_BYTES = 1024 * 1024;

/**
 * Lists the members of an uncompressed tar in the open file `fd` (of `fileSize` bytes) by reading
 * only its headers (one 512-byte read per member; PAX `path`/`linkpath`/`size` and GNU long names
 * applied). Member data is not read: callers read it in place from `offset`.
 * @throws ArchiveError E_ARCHIVE (a header with a bad checksum: not a tar, or corrupt),
 * E_ARCHIVE_TRUNCATED (a member runs past the end of the file, or no end-of-archive block).
 */
export function indexArchive(fd: number, fileSize: number): IndexedMember[] {
  const out: IndexedMember[] = [];
  const block = Buffer.alloc(BLOCK);
  let pos = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let ended = false;
  while (pos + BLOCK <= fileSize) {
    readExactly(fd, block, pos);
    pos += BLOCK;
    if (block.every((b) => b === 0)) {
      ended = true; // end-of-archive blocks (tar readers carry on past them)
      continue;
    }
    ended = false;
    if (!checksumOK(block)) {
      throw new ArchiveError('E_ARCHIVE', 'the input is not a tar archive (or it is corrupt)', {
        hint: 'load takes the output of docker save, tsbuild save or skopeo copy docker-archive:/oci-archive:',
      });
    }
    const typeflag = String.fromCharCode(block[156]!);
    const paxSize = pax.get('size');
    const size = paxSize !== undefined && /^\d+$/.test(paxSize) ? Number(paxSize) : sizeField(block);
    if (pos + size > fileSize) throw truncated();
    const dataAt = pos;
    pos += Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === 'x' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META_BYTES) throw new ArchiveError('E_ARCHIVE', `a tar ${typeflag === 'x' ? 'PAX' : 'long-name'} header is ${size} bytes long`);
      const body = Buffer.alloc(size);
      readExactly(fd, body, dataAt);
      if (typeflag === 'x') pax = parsePax(body);
      else if (typeflag === 'L') longName = cstring(body, 0, size);
      else longLink = cstring(body, 0, size);
      continue;
    }
    if (typeflag === 'g') continue; // global PAX header: nothing load uses
    const ustar = block.subarray(257, 263).toString('latin1') === 'ustar\0';
    const prefix = ustar ? cstring(block, 345, 155) : '';
    const baseName = cstring(block, 0, 100);
    const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const linkname = pax.get('linkpath') ?? longLink ?? cstring(block, 157, 100);
    const type = typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '1' ? 'link' : typeflag === '2' ? 'symlink' : 'other';
    out.push({ name, type, linkname, offset: dataAt, size: type === 'file' ? size : 0 });
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
  // Without its end-of-archive zero blocks, a file cut at a member boundary would look complete.
  if (!ended || (pos !== fileSize && !isZeroTail(fd, pos, fileSize))) throw truncated();
  return out;
}

function truncated(): ArchiveError {
  return new ArchiveError('E_ARCHIVE_TRUNCATED', 'the archive is truncated', { hint: 'the file was cut short (an interrupted download or save?); nothing was loaded' });
}

/** Reads exactly `buf.length` bytes at `pos`. @throws ArchiveError E_ARCHIVE_TRUNCATED at end of file. */
export function readExactly(fd: number, buf: Buffer, pos: number): void {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) throw truncated();
    got += n;
  }
}

/** A tail shorter than a block after the last member: fine when it is zero padding. */
function isZeroTail(fd: number, pos: number, fileSize: number): boolean {
  const tail = Buffer.alloc(fileSize - pos);
  readExactly(fd, tail, pos);
  return tail.every((b) => b === 0);
}

function checksumOK(block: Buffer): boolean {
  const field = cstring(block, 148, 8).trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === parseInt(field, 8);
}

/** The size field: octal text, or GNU base-256 (high bit of the first byte set) for sizes ≥ 8 GiB. */
function sizeField(block: Buffer): number {
  if (block[124]! & 0x80) {
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + block[i]!;
    return v;
  }
  const s = cstring(block, 124, 12).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function cstring(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end >= 0 && end < off + len ? end : off + len);
}

/** PAX records `"<len> <key>=<value>\n"`. */
function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(body.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= 0 || i + len > body.length) break;
    const rec = body.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}
