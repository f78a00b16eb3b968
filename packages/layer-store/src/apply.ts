/**
 * Applies a layer tar (plain, gzip or zstd) onto a directory, safely.
 *
 * Path safety: entry names are normalised (leading `/` and `./` stripped, like Docker); a `..`
 * component is refused. Parent directories are resolved one component at a time inside the
 * target with chroot semantics (what Docker gets by applying layers in a chroot): a symlink in
 * the target is followed only within the root (an absolute target is taken relative to the root),
 * and a symlink whose `..` would climb above the root is refused. The final component is never
 * followed: an existing file, symlink or device there is replaced, not written through.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { setAttribute } from 'fs-xattr';
import { CorruptLayerError, StoreError, UnsafePathError } from './errors.js';
import { fileSink } from './fsutil.js';
import { readTar, type TarHeader } from './tar.js';
import type { Cancellable } from './types.js';
import { OVERLAY_OPAQUE_XATTR, whiteoutMeaning } from './whiteout.js';

export interface ApplyLayerOptions extends Cancellable {
  /**
   * `plain`: whiteouts delete (a whole tree is built, e.g. for export);
   * `overlay`: whiteouts are kept the overlayfs way (0/0 char device, opaque xattr), for a
   * directory used as an overlay lower dir.
   */
  format: 'plain' | 'overlay';
  /** Refuse layers whose uncompressed tar exceeds this many bytes (gzip bombs). */
  maxBytes?: number;
}

const MAX_SYMLINKS = 40;

/**
 * The target directory, plus the relative paths verified (or made) as real directories during
 * this application: they need no second walk. Cleared on every removal.
 */
interface Root {
  path: string;
  dirs: Set<string>;
}

/** Normalises an entry name into components; refuses `..`. */
function components(name: string, entry: string): string[] {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new UnsafePathError(entry, 'contains a ".." component');
  return parts;
}

function isENOENT(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Resolves parent components inside `root` (chroot semantics, never above root), creating missing
 * directories. Returns the resolved components.
 */
async function resolveParent(root: Root, parts: readonly string[], entry: string, create: boolean): Promise<string[]> {
  const key = parts.join('/');
  if (root.dirs.has(key)) return [...parts];
  const cur: string[] = [];
  const queue = [...parts];
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (cur.length === 0) throw new UnsafePathError(entry, 'resolves through a symlink to outside the target');
      cur.pop();
      continue;
    }
    const p = join(root.path, ...cur, c);
    let st;
    try {
      st = await lstat(p);
    } catch (err) {
      if (!isENOENT(err)) throw err;
      // Looking up (a hard link's target): a missing directory means a missing target. Never
      // return the unresolved rest, which may hold ".." from a symlink.
      if (!create) throw new CorruptLayerError(`layer entry "${entry}" refers to "${[...cur, c].join('/')}", which does not exist`);
      await mkdir(p, { mode: 0o755 });
      cur.push(c);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINKS) throw new UnsafePathError(entry, 'goes through too many symlinks');
      const target = await readlink(p);
      if (target.startsWith('/')) cur.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    if (!st.isDirectory()) throw new CorruptLayerError(`layer entry "${entry}": parent "${[...cur, c].join('/')}" is not a directory`);
    cur.push(c);
  }
  if (hops === 0) root.dirs.add(key);
  return cur;
}

/** Absolute path where an entry lands: resolved parent + final component (not followed). */
async function placeOf(root: Root, name: string, entry: string, create = true): Promise<{ abs: string; rel: string }> {
  const parts = components(name, entry);
  if (parts.length === 0) return { abs: root.path, rel: '' };
  const parent = await resolveParent(root, parts.slice(0, -1), entry, create);
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

/** Detects gzip/zstd by magic bytes and returns the uncompressed stream. */
async function decompressed(src: Readable, signal?: AbortSignal): Promise<Readable> {
  const it = src[Symbol.asyncIterator]();
  let first: Buffer = Buffer.alloc(0);
  while (first.length < 4) {
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
    const gunzip = createGunzip();
    rest.on('error', (e) => gunzip.destroy(e));
    return rest.pipe(gunzip);
  }
  if (first.readUInt32LE(0) === 0xfd2fb528 && first.length >= 4) {
    const child = spawn('zstd', ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'], ...(signal ? { signal } : {}) });
    const out = new PassThrough();
    pipeline(rest, child.stdin).catch((e) => out.destroy(e));
    child.stdout.pipe(out);
    child.on('close', (code) => {
      if (code !== 0) out.destroy(new CorruptLayerError(`zstd -dc failed (exit ${code})`));
    });
    child.on('error', (e) => out.destroy(new CorruptLayerError('cannot run zstd to decompress the layer', { cause: e })));
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
  const root: Root = { path: targetDir, dirs: new Set() };
  const created = new Set<string>();
  const dirTimes: Array<[string, number]> = [];
  const stats: ApplyStats = { entries: 0, whiteouts: 0 };
  let input: Readable = await decompressed(tar, opts.signal);
  if (opts.maxBytes !== undefined) {
    const limit = new ByteLimit(opts.maxBytes);
    input.on('error', (e) => limit.destroy(e));
    input = input.pipe(limit);
  }
  try {
    for await (const { header, body } of readTar(input)) {
      opts.signal?.throwIfAborted();
      stats.entries++;
      const wh = whiteoutMeaning(components(header.name, header.name).join('/'));
      if (wh.kind !== 'none') {
        stats.whiteouts++;
        await applyWhiteout(root, header, wh, created, opts);
        continue;
      }
      await applyEntry(root, header, body, created, dirTimes, opts);
    }
    for (const [p, t] of dirTimes.reverse()) await utimes(p, t, t);
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
    const { abs, rel } = await placeOf(root, `${wh.dir}/x`, header.name).then(async (p) => {
      const dirRel = p.rel.split('/').slice(0, -1).join('/');
      return { abs: join(root.path, dirRel), rel: dirRel };
    });
    if (opts.format === 'overlay') {
      await mkdir(abs, { recursive: true });
      await setAttribute(abs, OVERLAY_OPAQUE_XATTR, 'y');
      return;
    }
    // Hide what lower layers put here; keep what this layer already wrote.
    for (const child of await readdir(abs)) {
      const childRel = rel === '' ? child : `${rel}/${child}`;
      if (!created.has(childRel)) {
        root.dirs.clear();
        await rm(join(abs, child), { recursive: true, force: true });
      }
    }
    return;
  }
  const { abs, rel } = await placeOf(root, wh.target, header.name);
  if (rel === '') throw new UnsafePathError(header.name, 'whites out the root');
  if (created.has(rel)) return; // whiteouts hide lower layers only
  if (opts.format === 'plain') {
    root.dirs.clear();
    await rm(abs, { recursive: true, force: true });
    return;
  }
  root.dirs.clear();
  await rm(abs, { recursive: true, force: true });
  await run('mknod', [abs, 'c', '0', '0'], opts.signal);
  await lchown(abs, header.uid, header.gid);
  created.add(rel);
}

async function applyEntry(
  root: Root,
  h: TarHeader,
  body: AsyncIterable<Buffer>,
  created: Set<string>,
  dirTimes: Array<[string, number]>,
  opts: ApplyLayerOptions,
): Promise<void> {
  const { abs, rel } = await placeOf(root, h.name, h.name);
  // Refuse a hostile hard link before touching anything.
  let linkTarget: string | undefined;
  if (h.type === 'link') {
    const t = await placeOf(root, h.linkname ?? '', h.name, false);
    if (t.rel === '') throw new UnsafePathError(h.name, 'is a hard link to the root');
    linkTarget = t.abs;
  }
  let existing;
  try {
    existing = await lstat(abs);
  } catch (err) {
    if (!isENOENT(err)) throw err;
  }
  if (rel === '') {
    // The root itself ("./"): only its metadata applies.
    if (h.type !== 'directory') throw new UnsafePathError(h.name, 'would replace the target directory');
  } else if (existing && !(existing.isDirectory() && h.type === 'directory')) {
    root.dirs.clear();
    await rm(abs, { recursive: true, force: true });
  }
  switch (h.type) {
    case 'directory':
      if (!existing?.isDirectory()) await mkdir(abs, { mode: 0o755 });
      break;
    case 'file': {
      const fh = await open(abs, 'wx', 0o600);
      try {
        await pipeline(Readable.from(body), fileSink(fh), opts.signal ? { signal: opts.signal } : {});
      } finally {
        await fh.close();
      }
      break;
    }
    case 'symlink':
      await symlink(h.linkname ?? '', abs);
      break;
    case 'link':
      try {
        await link(linkTarget!, abs);
      } catch (err) {
        if (isENOENT(err)) throw new CorruptLayerError(`layer entry "${h.name}" is a hard link to missing "${h.linkname}"`, { cause: err });
        throw err;
      }
      created.add(rel);
      return; // a hard link shares the target's metadata
    case 'char':
    case 'block':
      await run('mknod', [abs, h.type === 'char' ? 'c' : 'b', String(h.devmajor ?? 0), String(h.devminor ?? 0)], opts.signal);
      break;
    case 'fifo':
      await run('mkfifo', [abs], opts.signal);
      break;
  }
  created.add(rel);
  await lchown(abs, h.uid, h.gid);
  if (h.type !== 'symlink') {
    await chmod(abs, h.mode & 0o7777); // after chown, which clears setuid/setgid
    for (const [k, v] of h.xattrs ?? []) {
      try {
        await setAttribute(abs, k, v);
      } catch (err) {
        if (!['ENOTSUP', 'EOPNOTSUPP'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
    }
  }
  if (h.type === 'directory') dirTimes.push([abs, h.mtime]);
  else if (h.type === 'symlink') await lutimes(abs, h.mtime, h.mtime);
  else await utimes(abs, h.mtime, h.mtime);
}
