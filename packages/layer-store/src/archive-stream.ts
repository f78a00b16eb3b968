/**
 * Stream helpers for archives: compression detection by magic bytes, decompression (gzip with
 * node:zlib; zstd, and xz and bzip2 for whole archives, through their programs since Node 20 has
 * none of them), byte caps against
 * decompression bombs, and safe archive member names. Internal to the package.
 */
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import { ArchiveError } from './archive-errors.js';

/** How a byte stream is compressed, as told by its first bytes. */
export type Compression = 'gzip' | 'zstd' | 'none';

/** What a stream's first bytes say it is: compressed, a tar archive, or something else. */
export type ContentKind = 'gzip' | 'zstd' | 'tar' | 'other';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Compression by magic number (gzip 1f 8b, zstd 28 b5 2f fd). */
export function compressionOf(head: Buffer): Compression {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/**
 * What the first bytes (at least 512 when the stream has them) hold: gzip, zstd, a tar archive
 * (POSIX/GNU `ustar` magic at offset 257, or a v7 header with a valid checksum), or other bytes.
 */
export function contentKindOf(head: Buffer): ContentKind {
  const c = compressionOf(head);
  if (c !== 'none') return c;
  if (head.length >= 512 && (head.subarray(257, 262).toString('latin1') === 'ustar' || v7ChecksumOK(head))) return 'tar';
  // An empty tar: two zero blocks (or fewer bytes of zeros) is still a tar.
  if (head.length >= 512 && head.subarray(0, 512).every((b) => b === 0)) return 'tar';
  return 'other';
}

function v7ChecksumOK(block: Buffer): boolean {
  const field = block.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === parseInt(field, 8);
}

/**
 * Reads the first `n` bytes of `input` (fewer if it ends sooner) and returns them with a stream
 * that yields every byte of the input, those first ones included. The caller consumes `rest`.
 */
export async function peek(input: AsyncIterable<Buffer | string>, n: number): Promise<{ head: Buffer; rest: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(chunk);
    have += chunk.length;
  }
  const head = Buffer.concat(chunks).subarray(0, n);
  async function* all(): AsyncGenerator<Buffer> {
    yield* chunks;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  const rest = Readable.from(all(), { objectMode: false });
  rest.once('close', () => {
    if (!done) void it.return?.();
  });
  return { head, rest };
}

/** A transform that fails with ArchiveError E_ARCHIVE_TOO_LARGE once more than `max` bytes pass. */
export function byteCap(max: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > max) {
        cb(
          new ArchiveError('E_ARCHIVE_TOO_LARGE', `${what} expands to more than ${max} bytes`, {
            hint: 'the input may be a decompression bomb; raise the size limit if it is genuine',
          }),
        );
        return;
      }
      cb(null, chunk);
    },
  });
}

/** How an archive (the whole `load` input) may be compressed: what Docker's DecompressStream takes. */
export type ArchiveCompression = Compression | 'xz' | 'bzip2';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const BZIP2_MAGIC = Buffer.from('BZh', 'latin1');

/** Compression of a whole archive by magic number: gzip, zstd, and also xz and bzip2 (as `docker load`). */
export function archiveCompressionOf(head: Buffer): ArchiveCompression {
  if (head.subarray(0, 6).equals(XZ_MAGIC)) return 'xz';
  if (head.subarray(0, 3).equals(BZIP2_MAGIC)) return 'bzip2';
  return compressionOf(head);
}

/** A duplex that decompresses zstd by running `zstd -dc`. */
export function zstdDecompress(): Duplex {
  return programDecompress('zstd', 'zstd');
}

/** A duplex that decompresses by running `program -dcq` (zstd, xz, bzip2); `pkg` is its Debian package. */
function programDecompress(program: string, pkg: string): Duplex {
  const child = spawn(program, ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  // the output ends only once the program has exited 0: a truncated input gives output that ends
  // early (maybe at an entry boundary) and a non-zero exit, which must not read as a short archive
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  child.once('error', (err) =>
    duplex.destroy(new ArchiveError('E_ARCHIVE', `cannot run ${program} to decompress the input`, { cause: err, hint: `install ${program} (apt-get install ${pkg})` })),
  );
  child.once('close', (code) => {
    if (code === 0) out.end();
    else duplex.destroy(new ArchiveError('E_ARCHIVE_TRUNCATED', `${program} data is corrupt or truncated: ${stderr.trim()}`));
  });
  duplex.once('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return duplex;
}

/** A decompressing transform for `c` (a pass-through for 'none'). */
export function decompressor(c: ArchiveCompression): Duplex {
  if (c === 'gzip') return createGunzip();
  if (c === 'zstd') return zstdDecompress();
  if (c === 'xz') return programDecompress('xz', 'xz-utils');
  if (c === 'bzip2') return programDecompress('bzip2', 'bzip2');
  return new Transform({ transform: (chunk, _e, cb) => cb(null, chunk) });
}

/**
 * Normalises an archive member name to a relative POSIX path without `./` or trailing slash.
 * @throws ArchiveError E_ARCHIVE_UNSAFE_PATH for absolute names and names with `..` components.
 */
export function safeMemberName(name: string): string {
  if (name.startsWith('/')) {
    throw new ArchiveError('E_ARCHIVE_UNSAFE_PATH', 'unsafe path in archive: absolute member name', { member: name, hint: 'the archive is malformed or hostile; nothing was loaded' });
  }
  if (name.split('/').includes('..')) {
    throw new ArchiveError('E_ARCHIVE_UNSAFE_PATH', 'unsafe path in archive: ".." in member name', { member: name, hint: 'the archive is malformed or hostile; nothing was loaded' });
  }
  const n = posix.normalize(name).replace(/\/+$/, '');
  return n === '.' ? '' : n.replace(/^\.\//, '');
}

/**
 * Resolves a symlink or hard-link target inside the archive's own namespace: a symlink relative to
 * its member's directory, a hard link relative to the archive root.
 * @throws ArchiveError E_ARCHIVE_UNSAFE_PATH when the target leaves the archive or is absolute.
 */
export function linkTarget(member: string, linkname: string, kind: 'symlink' | 'link'): string {
  if (linkname.startsWith('/')) {
    throw new ArchiveError('E_ARCHIVE_UNSAFE_PATH', `unsafe ${kind} in archive: absolute target "${linkname}"`, { member, hint: 'the archive is malformed or hostile; nothing was loaded' });
  }
  const joined = kind === 'symlink' ? posix.join(posix.dirname(member), linkname) : posix.normalize(linkname);
  if (joined === '..' || joined.startsWith('../')) {
    throw new ArchiveError('E_ARCHIVE_UNSAFE_PATH', `unsafe ${kind} in archive: target "${linkname}" is outside the archive`, { member, hint: 'the archive is malformed or hostile; nothing was loaded' });
  }
  return joined.replace(/^\.\//, '');
}

/**
 * Detects the compression of `input` by its magic and returns the streams to put in a `pipeline`
 * (source first) that yield the decompressed bytes, capped at `maxBytes` when given.
 */
export async function decompressing(input: Readable, { maxBytes, what }: { maxBytes?: number | undefined; what: string }): Promise<{ streams: [Readable, ...Duplex[]]; compression: ArchiveCompression }> {
  const { head, rest } = await peek(input, 6);
  const compression = archiveCompressionOf(head);
  const streams: [Readable, ...Duplex[]] = [rest];
  if (compression !== 'none') streams.push(decompressor(compression));
  if (maxBytes !== undefined) streams.push(byteCap(maxBytes, what));
  return { streams, compression };
}
