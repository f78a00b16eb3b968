/**
 * Writes archive tarballs (save's output) deterministically: entries in the order given (callers
 * sort them), mtime 0, uid/gid 0, no user names, fixed modes. File contents stream from their
 * opener straight into the tar, never buffered. Also lists the members of an archive file in place
 * (load reads them where they are, without copying the archive). Internal to the package.
 */
import { readSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ArchiveError } from './archive-errors.js';

/** One member of an archive to write. */
export type ArchiveMember =
  | { type: 'directory'; name: string }
  | { type: 'file'; name: string; size: number; open: () => Readable }
  | { type: 'file'; name: string; data: Buffer };

const EPOCH = new Date(0);

/**
 * Streams `members` as a tar into `out`, then ends `out`.
 * @throws whatever a member's stream or `out` fails with (the tar is then incomplete; callers that
 * write files write to a temp file and rename only on success).
 */
export async function writeArchive(members: Iterable<ArchiveMember>, out: Writable, { signal }: { signal?: AbortSignal | undefined } = {}): Promise<void> {
  const pack = tar.pack();
  const packing = pipeline(pack, out, signal ? { signal } : {});
  try {
    for (const m of members) {
      signal?.throwIfAborted();
      const base = { name: m.type === 'directory' ? `${m.name}/` : m.name, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' };
      if (m.type === 'directory') {
        await entry(pack, { ...base, type: 'directory', mode: 0o755 });
      } else if ('data' in m) {
        await entry(pack, { ...base, type: 'file', mode: 0o644, size: m.data.length }, m.data);
      } else {
        const sink = pack.entry({ ...base, type: 'file', mode: 0o644, size: m.size });
        await pipeline(m.open(), sink, signal ? { signal } : {});
      }
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await packing.catch(() => undefined);
    throw err;
  }
  await packing;
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
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
