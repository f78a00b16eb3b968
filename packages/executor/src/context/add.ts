import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, createReadStream, createWriteStream, lchownSync, lstatSync, openSync, readSync, statfsSync, type Stats } from 'node:fs';
import { lchown, lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { applyLayer, networkReason } from '@tsbuild/layer-store';
import { copyInto, type CopyOptions } from './copy.js';
import { downloadTarsum } from './docker-hash.js';
import { ContextError } from './errors.js';
import { cleanPath, resolveInRoot } from './paths.js';
import type { Source, SourceEntry } from './select.js';

/** Archive formats ADD extracts (Docker 20.10's DetectCompression; zstd is not one of them). */
export type ArchiveFormat = 'tar' | 'gzip' | 'bzip2' | 'xz';

/** Options of {@link addInto}: those of COPY plus remote sources. */
export interface AddOptions extends CopyOptions {
  /** `http://` / `https://` sources, downloaded (never extracted). */
  urls?: readonly string[];
  /** `--checksum=sha256:…` of the (single) URL source. */
  checksum?: string;
  /** Where downloads are staged (default the OS temp dir); the file is removed afterwards. */
  tmpDir?: string;
  /**
   * Most bytes (uncompressed tar) one local archive may expand to. Default: 90% of the space free
   * on the destination's file system when the extraction starts, so a decompression bomb stops
   * with an error instead of filling the disk (Docker 20.10 has no limit and writes until ENOSPC).
   */
  maxArchiveBytes?: number;
}

/** Most bytes of an error response's body an ADD error quotes. */
const MAX_ERROR_BODY = 64 * 1024;

/** What {@link addInto} reports besides the files it wrote. */
export interface AddResult {
  /** Docker's history hash of each URL source, in order (see downloadTarsum). */
  urlHashes: string[];
}

function compressionOf(head: Buffer): Exclude<ArchiveFormat, 'tar'> | 'none' {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** True when `block` (512 bytes) is a tar header with a valid checksum, as Go's tar.Reader.Next requires. */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512 || block.every((b) => b === 0)) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const expected = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return expected === unsigned || expected === signed;
}

/** A decompressed stream of `file` in `format` (bzip2 and xz through the system tools). */
function decompressedStream(file: string, format: ArchiveFormat, signal?: AbortSignal): Readable {
  if (format === 'tar') return createReadStream(file, { signal });
  if (format === 'gzip') return createReadStream(file, { signal }).pipe(createGunzip());
  const child = spawn(format === 'bzip2' ? 'bzip2' : 'xz', ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(e));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`${format} -dc exited with ${code}: ${stderr.trim()}`));
  });
  out.on('close', () => child.kill());
  return out;
}

/** The first `n` bytes of a stream (fewer if it ends), then destroys it. */
async function firstBytes(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= n) break;
    }
  } catch {
    // A corrupt compressed stream is simply not an archive (Docker copies it as a file).
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

/**
 * Detects, by content (never by name), whether `file` is an archive ADD extracts: a tar, or a tar
 * compressed with gzip, bzip2 or xz (Docker's `isArchivePath`: the decompressed stream must start
 * with a valid tar header).
 * @returns the format, or null for any other file.
 */
export async function detectArchive(file: string, signal?: AbortSignal): Promise<ArchiveFormat | null> {
  // synchronous: ADD of a wildcard may detect thousands of files (a thread-pool hand-off per call
  // costs far more than the read)
  const fd = openSync(file, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(512);
    head = buf.subarray(0, readSync(fd, buf, 0, 512, 0));
  } finally {
    closeSync(fd);
  }
  const compression = compressionOf(head);
  if (compression === 'none') return isTarHeader(head) ? 'tar' : null;
  const block = await firstBytes(decompressedStream(file, compression, signal), 512);
  return isTarHeader(block) ? compression : null;
}

/** Counts and hashes what flows through. */
class Sha256Counter extends Transform {
  readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

/** Go's filepath.Base of a slash path that does not end in "/": its last element ("" stays ""). */
function baseName(p: string): string {
  if (p === '') return '';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * The `filename` parameter of a Content-Disposition value as Go's mime.ParseMediaType gives it
 * (tokens and quoted strings, RFC 2231 `filename*=utf-8''…`); undefined when there is none or the
 * value does not parse (Docker then ignores the header).
 */
export function contentDispositionFilename(value: string): string | undefined {
  const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
  let rest = value.trimStart();
  const type = token.exec(rest);
  if (type === null) return undefined;
  rest = rest.slice(type[0].length);
  if (rest.startsWith('/')) {
    const sub = token.exec(rest.slice(1));
    if (sub === null) return undefined;
    rest = rest.slice(1 + sub[0].length);
  }
  const params = new Map<string, string>();
  for (;;) {
    rest = rest.trimStart();
    if (rest === '') break;
    if (!rest.startsWith(';')) return undefined;
    rest = rest.slice(1).trimStart();
    if (rest === '') break; // a trailing ";" is allowed
    const key = token.exec(rest);
    if (key === null) return undefined;
    rest = rest.slice(key[0].length).trimStart();
    if (!rest.startsWith('=')) return undefined;
    rest = rest.slice(1).trimStart();
    let val: string;
    if (rest.startsWith('"')) {
      let i = 1;
      val = '';
      for (; i < rest.length && rest[i] !== '"'; i++) val += rest[i] === '\\' && i + 1 < rest.length ? rest[++i] : rest[i];
      if (i >= rest.length) return undefined;
      rest = rest.slice(i + 1);
    } else {
      const v = token.exec(rest);
      if (v === null) return undefined;
      val = v[0];
      rest = rest.slice(v[0].length);
    }
    const name = key[0].toLowerCase();
    if (params.has(name)) return undefined; // Go: duplicate parameter name
    params.set(name, val);
  }
  const encoded = params.get('filename*');
  if (encoded !== undefined) {
    const m = /^(utf-8|us-ascii)'[^']*'(.*)$/i.exec(encoded);
    if (m !== null) {
      try {
        return decodeURIComponent(m[2]!);
      } catch {
        // malformed escape: Go drops the parameter
      }
    }
  }
  return params.get('filename');
}

/**
 * The file name Docker 20.10 gives a downloaded URL source (getFilenameForDownload): the last
 * element of the URL's (decoded) path unless the path is empty or ends in "/", else the
 * Content-Disposition `filename`, else "".
 */
function downloadFileName(url: URL, contentDisposition: string | null): string {
  let p = url.pathname;
  try {
    p = decodeURIComponent(p);
  } catch {
    // kept as written
  }
  if (p !== '' && !p.endsWith('/')) {
    const name = baseName(p);
    if (name !== '') return name;
  }
  const fromHeader = contentDisposition === null ? undefined : contentDispositionFilename(contentDisposition);
  if (fromHeader !== undefined && fromHeader !== '' && !fromHeader.endsWith('/')) return baseName(fromHeader);
  return '';
}

/** The first MAX_ERROR_BODY bytes of an error response's body (the rest is not read). */
async function errorBody(res: Response): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      chunks.push(Buffer.from(chunk));
      size += chunk.length;
      if (size >= MAX_ERROR_BODY) break;
    }
  } catch {
    // a body that breaks off: what arrived
  }
  return Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY);
}

async function download(
  url: string,
  dir: string,
  checksum: string | undefined,
  signal?: AbortSignal,
): Promise<{ file: string; name: string; mtimeNs: bigint }> {
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (cause) {
    if (signal?.aborted === true) throw cause;
    // dockerd: Go's url.Error, 'Get "URL": dial tcp 127.0.0.1:8799: connect: connection refused'
    throw new ContextError('E_ADD_URL', `ADD failed: Get ${JSON.stringify(url)}: ${networkReason(cause, new URL(url))}`, { cause, hint: 'check the URL and the network' });
  }
  // dockerd (remotecontext.GetWithStatusError): a status of 400 or more fails, with the body
  if (res.status >= 400) {
    const body = (await errorBody(res)).toString('utf8').trim();
    const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    throw new ContextError('E_ADD_URL', `ADD failed: failed to GET ${url} with status ${status}: ${body}`, { hint: 'check the URL' });
  }
  // staged under its own name, as Docker's tarsum of it (history) names it
  const name = downloadFileName(new URL(url), res.headers.get('content-disposition'));
  const file = path.join(dir, name === '' || name === '.' || name === '..' ? '__unnamed__' : name);
  const counter = new Sha256Counter();
  const body = res.body === null ? Readable.from([]) : Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  await pipeline(body, counter, createWriteStream(file, { mode: 0o600 }), {
    signal,
  });
  if (checksum !== undefined) {
    const actual = `sha256:${counter.hash.digest('hex')}`;
    if (actual !== checksum.toLowerCase()) {
      throw new ContextError('E_ADD_CHECKSUM', `ADD failed: digest mismatch for ${url}: expected ${checksum}, got ${actual}`, {
        hint: 'the file at the URL changed, or the --checksum value is wrong',
      });
    }
  }
  // Docker: mtime from Last-Modified when it parses, else the Unix epoch.
  const lastModified = Date.parse(res.headers.get('last-modified') ?? '');
  const mtimeNs = Number.isNaN(lastModified) ? 0n : BigInt(lastModified) * 1_000_000n;
  return { file, name, mtimeNs };
}

async function urlSource(name: string, mtimeNs: bigint, file: string): Promise<Source> {
  const st = await lstat(file, { bigint: true });
  const entry: SourceEntry = {
    rel: '',
    hostPath: file,
    type: 'file',
    mode: 0o600,
    uid: 0,
    gid: 0,
    size: Number(st.size),
    dev: st.dev,
    ino: st.ino,
    nlink: 1,
    mtimeNs,
    ctimeNs: st.ctimeNs,
  };
  return { root: path.dirname(file), rel: name, entries: [entry] };
}

/**
 * Performs ADD: plain files and directories as {@link copyInto}; a local file that is a tar
 * (plain, gzip, bzip2 or xz, detected by content) is extracted into `dest` (created 0755, owned by
 * root; its owner and mode are not taken from the archive's root entry, as Docker skips that
 * entry) with the store's safe applier, keeping the archive's owners and applying its whiteouts, as
 * Docker's classic builder does (--chown does not apply to extracted files there either); a URL is
 * downloaded (streamed to disk), written as mode 0600 with the Last-Modified time, and checked
 * against `checksum`.
 * @throws ContextError E_ADD_URL (request failed, HTTP error, no file name for a directory
 *   destination), E_ADD_CHECKSUM, E_ADD_EXTRACT, and those of copyInto.
 */
export async function addInto(opts: AddOptions): Promise<AddResult> {
  const urlHashes: string[] = [];
  const urls = opts.urls ?? [];
  const destIsDir = (opts.destIsDir ?? false) || opts.dest.endsWith('/') || opts.sources.length + urls.length > 1;
  if (opts.sources.length + urls.length > 1 && !(opts.destIsDir || opts.dest.endsWith('/'))) {
    throw new ContextError(
      'E_COPY_DEST_NOT_DIR',
      'When using ADD with more than one source file, the destination must be a directory and end with a /',
      { hint: `write the destination as "${opts.dest}/"` },
    );
  }
  const rootfs = path.resolve(opts.rootfs);
  const destImage = opts.dest.startsWith('/') ? cleanPath(opts.dest) : cleanPath(`${opts.workdir ?? '/'}/${opts.dest}`);
  for (const src of opts.sources) {
    opts.signal?.throwIfAborted();
    const top = src.entries[0]!;
    const format = top.type === 'file' ? await detectArchive(top.hostPath, opts.signal) : null;
    if (format === null) {
      await copyInto({ ...opts, sources: [src], destIsDir });
      continue;
    }
    // Created like Docker's MkdirAllAndChownNew(dest, 0755, root).
    const hostDest = await ensureDir(rootfs, destImage);
    const kept = lstatSync(hostDest);
    const maxBytes = opts.maxArchiveBytes ?? freeBytes(hostDest);
    try {
      // chroot: as Docker's untar chrooted into the destination (".." stops at it)
      await applyLayer(decompressedStream(top.hostPath, format, opts.signal), hostDest, { format: 'plain', paths: 'chroot', maxBytes, signal: opts.signal });
    } catch (cause) {
      if (opts.signal?.aborted) throw cause;
      throw extractError(src.rel, destImage, maxBytes, cause);
    }
    keepOwnerAndMode(hostDest, kept);
  }
  if (urls.length > 0) {
    const staging = await mkdtemp(path.join(opts.tmpDir ?? tmpdir(), 'tsbuild-add-'));
    try {
      for (const [i, url] of urls.entries()) {
        const dir = path.join(staging, String(i));
        await mkdir(dir);
        const { file, name, mtimeNs } = await download(url, dir, opts.checksum, opts.signal);
        urlHashes.push(downloadTarsum(file, path.basename(file)));
        const src = await urlSource(name, mtimeNs, file);
        if (destIsDir && src.rel === '') {
          throw new ContextError('E_ADD_URL', `ADD failed: cannot determine filename for source ${url}`, {
            hint: 'give the destination a file name (no trailing /)',
          });
        }
        await copyInto({ ...opts, sources: [src.rel === '' ? { ...src, rel: '__unnamed__' } : src], destIsDir });
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  return { urlHashes };
}

/** 90% of the bytes an unprivileged write may still use on the file system holding `dir`. */
function freeBytes(dir: string): number {
  const fs = statfsSync(dir);
  return Math.floor(fs.bavail * fs.bsize * 0.9);
}

/** The error of a failed extraction: what went wrong in the archive (the applier's words) and what to do. */
function extractError(archive: string, dest: string, maxBytes: number, cause: unknown): ContextError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown }).code;
  let noSpace = false;
  for (let e: unknown = cause; e instanceof Error && !noSpace; e = e.cause) noSpace = (e as NodeJS.ErrnoException).code === 'ENOSPC';
  const tooBig = code === 'E_CORRUPT_LAYER' && /larger than the limit/.test(reason);
  const hint = tooBig
    ? `the archive expands to more than ${maxBytes} bytes (the free space on the store's disk); it may be a decompression bomb — free space, or COPY it and unpack it in a RUN step`
    : noSpace
      ? 'the disk holding the store is full; free space and build again'
      : `the archive is corrupt, truncated or refers to files it does not hold; re-create ${archive}, or COPY it to keep it as a file (ADD detects archives by content)`;
  return new ContextError('E_ADD_EXTRACT', `ADD failed: extracting ${archive} into ${dest}: ${tooBig ? 'archive too large' : reason.replace(/^layer /, 'archive ')}`, { cause, hint });
}

/**
 * Puts back the owner and mode `dir` had before an archive was extracted into it. Docker 20.10
 * creates the destination before extracting, and its Unpack then skips the archive's root entry
 * (`.`, `./`) because a directory is there: the destination keeps root:root 0755 (or the owner and
 * mode it already had in the image), whatever the archive says. The store's applier applies a
 * root entry's owner and mode, so they are undone here. (Its mtime stays the archive's, which is
 * reproducible; Docker's is the time of the extraction.)
 */
function keepOwnerAndMode(dir: string, before: Stats): void {
  const after = lstatSync(dir);
  if (after.uid !== before.uid || after.gid !== before.gid) lchownSync(dir, before.uid, before.gid);
  // after the chown, which may clear setgid
  if ((after.mode & 0o7777) !== (before.mode & 0o7777) || after.uid !== before.uid || after.gid !== before.gid) chmodSync(dir, before.mode & 0o7777);
}

/** Creates the image directory `dir` (0755, root) unless it exists; returns its host path. */
async function ensureDir(rootfs: string, dir: string): Promise<string> {
  const host = await resolveInRoot(rootfs, dir);
  // dockerd resolves the destination first (FollowSymlinkInScope lstats it): a file where a parent
  // should be fails there (checked: 'ADD x.tar /t/file/deeper/' with /t/file a file)
  try {
    lstatSync(host);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new ContextError('E_COPY_NOT_DIR', `failed to copy files: lstat ${dir}: not a directory`, {
        hint: 'a file in the image is where the destination needs a directory',
        cause,
      });
    }
  }
  const rel = path.relative(rootfs, host);
  let cur = rootfs;
  for (const seg of rel === '' ? [] : rel.split(path.sep)) {
    cur = path.join(cur, seg);
    let st;
    try {
      st = await lstat(cur);
    } catch {
      st = null;
    }
    if (st?.isDirectory()) continue;
    if (st !== null) {
      throw new ContextError('E_COPY_NOT_DIR', `ADD failed: mkdir ${dir}: not a directory`, {
        hint: 'a file in the image is where the destination needs a directory',
      });
    }
    // as Docker's MkdirAllAndChownNew: root's, 0755 plus the setgid bit mkdir(2) inherits
    await mkdir(cur, { mode: 0o755 });
    await lchown(cur, 0, 0);
  }
  return host;
}

/**
 * Unpacks a build context given as an archive (`tsbuild build - < ctx.tar`; plain tar or tar
 * compressed with gzip, bzip2 or xz, detected by content as Docker's DetectArchiveReader does)
 * into the existing directory `dir`, with the store's safe applier (entries leaving `dir` are
 * refused).
 * @returns false, writing nothing, when `file` is no archive (Docker then reads it as the Dockerfile).
 * @throws ContextError E_CONTEXT_ARCHIVE when the archive cannot be unpacked.
 */
export async function extractContextArchive(file: string, dir: string, signal?: AbortSignal): Promise<boolean> {
  const format = await detectArchive(file, signal);
  if (format === null) return false;
  try {
    await applyLayer(decompressedStream(file, format, signal), dir, { format: 'plain', signal });
  } catch (cause) {
    throw new ContextError('E_CONTEXT_ARCHIVE', 'unpacking the build context archive read from stdin', { cause, hint: 'send a tar (optionally gzip, bzip2 or xz compressed) or a Dockerfile' });
  }
  return true;
}
