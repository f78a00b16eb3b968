/**
 * The source hash Docker 20.10's classic builder writes into COPY/ADD history
 * (`COPY file:<hex> in /dst `, `dir:<hex>`, `multi:<hex>`), computed as dockerd computes it for a
 * build context the docker CLI sent:
 * - every entry of the context tar has a tarsum (pkg/tarsum, version 1): the sha256 of its header
 *   fields `name mode uid gid size typeflag linkname uname gname devmajor devminor` (each as
 *   `<field><value>`; the CLI's tar has uid/gid 0 and no user names, the mode carries the file type
 *   bits, a directory's name ends in `/`) followed by the content of a regular file;
 * - `Hash(path)` follows symlinks inside the context (FollowSymlinkInScope) and gives the tarsum of
 *   the entry reached; when there is none (a dangling link, or an entry .dockerignore kept out of the
 *   tar) it gives the path itself;
 * - a file source is `file:` + Hash(source); a directory source is `dir:` + the sha256 of the sorted
 *   Hash() of every path filepath.Walk visits below it, the directory itself included (not the
 *   context root); several sources (or wildcard matches) are `multi:` + the sha256 of their
 *   hashes joined by commas.
 * - a file with several links whose first path in the CLI's walk of the context (filepath.Walk:
 *   names sorted, depth first, .dockerignore'd entries left out) is another one is a link entry
 *   there (archive's SeenFiles): typeflag `1`, size 0, linkname that first path, no content.
 * Not modelled: file capabilities (security.capability) add a header field; rare in a context.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { sortUtf8, TimeSlices } from '@tsbuild/layer-store';
import type { IgnoreMatcher } from './dockerignore.js';
import { ContextError } from './errors.js';
import type { FileIdentity, StatIndex } from './hash.js';
import { resolveInRoot } from './paths.js';
import type { Source, SourceEntry } from './select.js';

/** What {@link dockerSourceHash} needs of the build context. */
export interface DockerHashContext {
  /** Host path of the context root. */
  root: string;
  /** The context's .dockerignore: ignored entries are not in the tar the CLI sends. */
  ignore?: IgnoreMatcher;
  /** Caches tarsums of unchanged files between builds. */
  index: StatIndex;
  /**
   * `context` (default): a context the docker CLI sent: owners 0:0, no user names. `rootfs`: a
   * stage's or image's root file system (COPY --from), which dockerd hashes where it lies: the
   * entries' own uid/gid, with the names the daemon's host gives them (Go's tar.FileInfoHeader
   * looks them up), here the host's /etc/passwd and /etc/group.
   */
  kind?: 'context' | 'rootfs';
  /** the host's user and group names by id, read on first use (kind `rootfs`) */
  names?: { users: Map<number, string>; groups: Map<number, string> };
  /** `dev:ino` of each multiply-linked file → its first path in the CLI's tar, made on first use (kind `context`) */
  firstLinks?: Map<string, string>;
  signal?: AbortSignal;
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** What a tarsum needs of an entry: its stat (lstat, bigint) or the select step's entry. */
interface EntryStat {
  kind: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  uid: number;
  gid: number;
  /** the full st_mode: permission, special and file type bits (Docker's tar mode field) */
  mode: number;
  size: number;
  rdev: number;
  nlink: number;
  /** With the entry's host path when it is a walked entry (then the stat index finds its identity string kept on it). */
  identity: Omit<FileIdentity, 'hostPath'> & { hostPath?: string };
}

const TYPEFLAGS: Record<EntryStat['kind'], string> = { file: '0', dir: '5', symlink: '2', char: '3', block: '4', fifo: '6', socket: '6' };

function statOf(st: BigIntStats): EntryStat {
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'socket';
  return { kind, uid: Number(st.uid), gid: Number(st.gid), mode: Number(st.mode), size: Number(st.size), rdev: Number(st.rdev), nlink: Number(st.nlink), identity: { dev: st.dev, ino: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs } };
}

const TYPE_BITS = { file: 0o100000, dir: 0o040000, symlink: 0o120000 } as const;

function entryStatOf(e: SourceEntry): EntryStat | undefined {
  if (e.type !== 'file' && e.type !== 'dir') return undefined;
  return { kind: e.type, uid: e.uid, gid: e.gid, mode: TYPE_BITS[e.type] | e.mode, size: e.size, rdev: 0, nlink: e.nlink, identity: e };
}

/**
 * The first path of every multiply-linked file in the docker CLI's context tar: its walk is Go's
 * filepath.Walk of the context root (names in byte order, a directory before what it holds), and
 * an entry .dockerignore excludes is not in the tar (an excluded directory is still walked when
 * exceptions may bring something below it back).
 */
function firstLinksOf(ctx: DockerHashContext): Map<string, string> {
  if (ctx.firstLinks !== undefined) return ctx.firstLinks;
  const out = new Map<string, string>();
  const visit = (rel: string): void => {
    ctx.signal?.throwIfAborted();
    let names: string[];
    try {
      names = readdirSync(rel === '' ? ctx.root : path.join(ctx.root, rel));
    } catch {
      return; // the CLI would fail; the step reports unreadable sources itself
    }
    sortUtf8(names);
    for (const name of names) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path.join(ctx.root, child), { bigint: true, throwIfNoEntry: false });
      if (st === undefined) continue;
      const ignored = ctx.ignore?.matches(child) ?? false;
      if (st.isDirectory()) {
        if (!ignored || ctx.ignore!.hasExceptions) visit(child);
      } else if (!ignored && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (!out.has(key)) out.set(key, child);
      }
    }
  };
  visit('');
  ctx.firstLinks = out;
  return out;
}

/** The tarsum v1 of the context entry `rel` (slash path from the root). */
function tarsumOf(ctx: DockerHashContext, rel: string, st: EntryStat): string {
  if (st.kind === 'file' && st.nlink > 1 && ctx.kind !== 'rootfs') {
    // dockerd's COPY --from hash (lazycontext) has no link entries; the CLI's context tar has
    const first = firstLinksOf(ctx).get(`${st.identity.dev}:${st.identity.ino}`);
    if (first !== undefined && first !== rel) {
      return sha256Hex(`name${rel}mode${st.mode}uid0gid0size0typeflag1linkname${first}unamegnamedevmajor0devminor0`);
    }
  }
  const device = st.kind === 'char' || st.kind === 'block';
  const major = device ? ((st.rdev >> 8) & 0xfff) | (Math.floor(st.rdev / 2 ** 32) & ~0xfff) : 0;
  const minor = device ? (st.rdev & 0xff) | ((st.rdev >> 12) & ~0xff) : 0;
  const rootfs = ctx.kind === 'rootfs';
  const [uid, gid] = rootfs ? [st.uid, st.gid] : [0, 0];
  const names = rootfs ? (ctx.names ??= hostNames()) : undefined;
  const [uname, gname] = names ? [names.users.get(uid) ?? '', names.groups.get(gid) ?? ''] : ['', ''];
  const header =
    `name${st.kind === 'dir' ? `${rel}/` : rel}mode${st.mode}uid${uid}gid${gid}size${st.kind === 'file' ? st.size : 0}typeflag${TYPEFLAGS[st.kind]}` +
    `linknameuname${uname}gname${gname}devmajor${major}devminor${minor}`;
  if (st.kind !== 'file') return sha256Hex(header);
  // the walked entry itself when it is this path (most are: no second path.join, object or identity string)
  const given = st.identity.hostPath;
  const id: FileIdentity = given !== undefined && given.length === ctx.root.length + 1 + rel.length && given.endsWith(rel) && given.startsWith(ctx.root) && given[ctx.root.length] === '/' ? (st.identity as FileIdentity) : { ...st.identity, hostPath: path.join(ctx.root, rel) };
  const known = ctx.index.lookupTarsum(id);
  if (known !== undefined) return known;
  let content: Buffer;
  try {
    content = readFileSync(id.hostPath);
  } catch (cause) {
    throw new ContextError('E_CONTEXT_READ', `reading ${id.hostPath}`, { cause });
  }
  const sum = createHash('sha256').update(header).update(content).digest('hex');
  ctx.index.recordTarsum(id, sum);
  return sum;
}

/**
 * Docker's `Hash(rel)`: the tarsum of what `rel` leads to inside the context, symlinks followed;
 * `rel` itself when that is no entry of the context tar; undefined when it fails (a symlink loop:
 * FollowSymlinkInScope's "too many links"), which walkSource skips: the entry adds no sum.
 */
async function hashOfPath(ctx: DockerHashContext, rel: string, isSymlink: boolean): Promise<string | undefined> {
  let target = rel;
  if (isSymlink) {
    let full: string;
    try {
      full = await resolveInRoot(ctx.root, rel);
    } catch (err) {
      if (err instanceof ContextError && err.code === 'E_SYMLINK_LOOP') return undefined;
      throw err;
    }
    target = path.relative(ctx.root, full).split(path.sep).join('/');
    if (target === '' || target.startsWith('..')) return rel;
  }
  if (ctx.ignore?.matches(target) === true) return rel;
  const st = lstatSync(path.join(ctx.root, target), { bigint: true, throwIfNoEntry: false });
  if (st === undefined || st.isSymbolicLink()) return rel;
  return tarsumOf(ctx, target, statOf(st));
}

/**
 * The hash Docker 20.10 writes in ADD history for a URL source: the tarsum its lazy source gives
 * the downloaded file (no `file:` prefix), a file named `name` (Docker's file name for the
 * download, `__unnamed__` when it has none), mode 0600, owned by the daemon (root: uid/gid 0 with
 * the host's names for them), then its content. Reads `file` in 1 MiB slices.
 * @throws ContextError E_CONTEXT_READ when the file cannot be read.
 */
export function downloadTarsum(file: string, name: string): string {
  const names = hostNames();
  const hash = createHash('sha256');
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    hash.update(`name${name}mode${0o100600}uid0gid0size${size}typeflag0linknameuname${names.users.get(0) ?? ''}gname${names.groups.get(0) ?? ''}devmajor0devminor0`);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } catch (cause) {
    throw new ContextError('E_CONTEXT_READ', `reading ${file}`, { cause });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return hash.digest('hex');
}

/** The host's user and group names by id (what Go's os/user finds in /etc/passwd and /etc/group). */
function hostNames(): { users: Map<number, string>; groups: Map<number, string> } {
  const read = (file: string): Map<number, string> => {
    const out = new Map<number, string>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      const id = Number(f[2]);
      if (f.length >= 3 && f[0] && Number.isInteger(id) && !out.has(id)) out.set(id, f[0]);
    }
    return out;
  };
  return { users: read('/etc/passwd'), groups: read('/etc/group') };
}

/** Slash path from the context root of an entry `entryRel` of a source at `sourceRel`. */
function contextRel(sourceRel: string, entryRel: string): string {
  const base = sourceRel === '.' ? '' : sourceRel;
  return entryRel === '' ? base : base === '' ? entryRel : `${base}/${entryRel}`;
}

/**
 * The `<kind>:<hex>` Docker 20.10 writes in COPY/ADD history for `sources` selected from the build
 * context (see the module comment).
 */
export async function dockerSourceHash(sources: readonly Source[], ctx: DockerHashContext): Promise<string> {
  const slices = new TimeSlices(ctx.signal);
  const parts: string[] = [];
  for (const s of sources) {
    const top = s.entries[0];
    if (top === undefined) continue;
    if (top.type !== 'dir') {
      // followed whatever the selection made of it (a symlink source may stand for its target)
      const rel = contextRel(s.rel, '');
      parts.push(`file:${(await hashOfPath(ctx, rel, true)) ?? rel}`);
      continue;
    }
    // Docker walks the directory the source leads to (a symlink to a directory is followed): the
    // names are that directory's
    const real = s.rel === '.' ? '.' : path.relative(ctx.root, await resolveInRoot(ctx.root, s.rel)).split(path.sep).join('/') || '.';
    const sums: string[] = [];
    const listed = new Set<string>();
    for (const e of s.entries) {
      if (slices.due()) await slices.yield();
      const rel = contextRel(real, e.rel);
      if (rel === '') continue; // filepath.Walk of the context root skips "."
      listed.add(rel);
      // a directory the walk passes through without an entry of its own (ignored, re-entered by a
      // "!" exception) is in the extracted context but not in the tar's sums: its path stands in
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      if (parent !== '' && e.rel !== '' && !listed.has(parent) && parent !== contextRel(real, '')) {
        listed.add(parent);
        sums.push(parent);
      }
      const known = entryStatOf(e);
      const sum = known !== undefined && ctx.ignore?.matches(rel) !== true ? tarsumOf(ctx, rel, known) : await hashOfPath(ctx, rel, e.type === 'symlink');
      if (sum !== undefined) sums.push(sum);
    }
    sums.sort();
    parts.push(`dir:${sha256Hex(sums.join(','))}`);
  }
  if (parts.length === 1) return parts[0]!;
  return `multi:${sha256Hex(parts.join(','))}`;
}
