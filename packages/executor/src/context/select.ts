import { lstatSync, readdirSync, readlinkSync, type BigIntStats, type Dirent } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import * as path from 'node:path';
import { compareUtf8, TimeSlices } from '@tsbuild/layer-store';
import { fastFs, LSTAT_FIELDS, type FastFs } from '@tsbuild/sys';
import { ContextError } from './errors.js';
import type { IgnoreMatcher } from './dockerignore.js';
import { BadPatternError, goMatch, hasWildcards, validatePattern } from './match.js';
import { cleanPath, isWithin, resolveInRoot } from './paths.js';

/** What a selected entry is. `other` (fifo, socket, device) is listed but not copied. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

/** One file system entry of a source, with the metadata the cache key and the copy need. */
export interface SourceEntry {
  /** Slash path relative to the source; `''` for the source itself. */
  readonly rel: string;
  /** Absolute host path. */
  readonly hostPath: string;
  readonly type: EntryType;
  /** Permission bits with setuid/setgid/sticky (`st_mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly nlink: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  /** Target of a symlink, as stored. */
  readonly linkTarget?: string;
}

/** One selected COPY/ADD source: a file or a directory (whose contents are copied). */
export interface Source {
  /** Host path of the root it was selected from (build context or a stage's rootfs). */
  readonly root: string;
  /** The source path relative to `root`, cleaned, slash-separated (`.` for the root itself). */
  readonly rel: string;
  /** `entries[0]` is the source itself (`rel: ''`); for a directory, then every entry below it, sorted by path. */
  readonly entries: readonly SourceEntry[];
}

/** Options of {@link selectSources}. */
export interface SelectOptions {
  /** .dockerignore patterns of the context (none for another stage's rootfs). */
  ignore?: IgnoreMatcher;
  /** A wildcard that matches nothing is not an error (COPY's `--parents`-less optional sources). */
  allowEmptyWildcard?: boolean;
  /** The `--from` value when `root` is another stage's or image's rootfs (error messages name it). */
  from?: string;
  /** The instruction selecting, which Docker's errors start with (`ADD failed: …`); default COPY. */
  instruction?: 'COPY' | 'ADD';
  signal?: AbortSignal;
}

/** Type of a source or entry from its stat. */
function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** The entry for `rel` from its lstat; `linkTarget` read only for symlinks. */
function entryFromStats(hostPath: string, rel: string, st: BigIntStats, readLink: (p: string) => string | undefined): SourceEntry {
  const type = typeOf(st);
  const linkTarget = type === 'symlink' ? readLink(hostPath) : undefined;
  return {
    rel,
    hostPath,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    dev: st.dev,
    ino: st.ino,
    nlink: Number(st.nlink),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ...(linkTarget !== undefined ? { linkTarget } : {}),
  };
}

async function entryOf(hostPath: string, rel: string): Promise<SourceEntry> {
  const st = await lstat(hostPath, { bigint: true });
  const linkTarget = st.isSymbolicLink() ? await readlink(hostPath) : undefined;
  return entryFromStats(hostPath, rel, st, () => linkTarget);
}

/** {@link entryOf} with synchronous calls: the walk's hot path (see {@link walk}). */
function entryOfSync(hostPath: string, rel: string): SourceEntry {
  return entryFromStats(hostPath, rel, lstatSync(hostPath, { bigint: true }), (p) => readlinkSync(p));
}


/**
 * {@link entryOfSync} of a walked name; a name that is not valid UTF-8 (Node decodes it with
 * U+FFFD, so the decoded path names nothing) fails with a clear error rather than ENOENT.
 * Docker copies such names byte for byte; we cannot yet.
 */
function entryOrNameError(host: string, rel: string, rootRel: string): SourceEntry {
  try {
    return entryOfSync(host, rel);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT' && path.basename(host).includes('\ufffd')) {
      throw new ContextError('E_NAME_ENCODING', `file name is not valid UTF-8: ${joinRel(rootRel, rel)}`, {
        hint: 'rename the file (tsbuild handles UTF-8 file names only), or exclude it in .dockerignore',
        cause,
      });
    }
    throw cause;
  }
}

/** Field `i` of `fields` as a signed 64-bit BigInt (`words`: the same memory in 32-bit halves). */
function signed(fields: BigUint64Array, words: Uint32Array, i: number): bigint {
  return (words[2 * i + 1]! & 0x80000000) === 0 ? fields[i]! : BigInt.asIntN(64, fields[i]!);
}

/** Whether 64-bit fields keep their low 32 bits first (entriesOf reads them in halves). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Names per native lstat call of the walk (bounds its output buffer). */
const STAT_BATCH = 256;

/**
 * The entries of `listed` (children of the directory `host`), appended to `out`: their lstats by
 * the addon's batched call where it is built (Node's bigint lstatSync per name cost 150-180 ms
 * for 20,000 files here, against 51-65 ms for the system calls alone), else {@link entryOrNameError}.
 * A name the batch could not stat is done by entryOrNameError, which throws the usual error.
 */
function entriesOf(host: string, listed: ReadonlyArray<[string, string, string]>, rootRel: string, fast: FastFs | undefined, fields: BigUint64Array, out: SourceEntry[]): void {
  // (little-endian: the low half of field i is words[2i])
  const words = new Uint32Array(fields.buffer, fields.byteOffset, fields.length * 2);
  if (fast === undefined) {
    for (const [childHost, childRel] of listed) out.push(entryOrNameError(childHost, childRel, rootRel));
    return;
  }
  const base = host.endsWith('/') ? host : `${host}/`;
  for (let c = 0; c < listed.length; c += STAT_BATCH) {
    const part = listed.slice(c, c + STAT_BATCH);
    const done = fast.lstatBatch(base, part.map(([, , name]) => name), fields, false);
    for (let k = 0; k < part.length; k++) {
      const [childHost, childRel] = part[k]!;
      const o = k * LSTAT_FIELDS;
      if (k >= done || fields[o + 11] !== 0n) {
        out.push(entryOrNameError(childHost, childRel, rootRel));
        continue;
      }
      // the small fields as numbers through 32-bit halves (no BigInt made and converted per field)
      const w = 2 * o;
      const mode = words[w]!;
      const format = mode & 0o170000;
      const type: EntryType = format === 0o100000 ? 'file' : format === 0o040000 ? 'dir' : format === 0o120000 ? 'symlink' : 'other';
      const linkTarget = type === 'symlink' ? readlinkSync(childHost) : undefined;
      const entry: SourceEntry = {
        rel: childRel,
        hostPath: childHost,
        type,
        mode: mode & 0o7777,
        uid: words[w + 2]!,
        gid: words[w + 4]!,
        size: type === 'file' ? words[w + 6]! + words[w + 7]! * 2 ** 32 : 0,
        dev: fields[o + 6]!,
        ino: fields[o + 7]!,
        nlink: words[w + 10]! + words[w + 11]! * 2 ** 32,
        mtimeNs: signed(fields, words, o + 12),
        ctimeNs: signed(fields, words, o + 13),
      };
      out.push(linkTarget !== undefined ? { ...entry, linkTarget } : entry);
    }
  }
}

/** Path of `rel` under `base` relative to the root, for ignore matching. */
function joinRel(base: string, rel: string): string {
  if (base === '.') return rel;
  return rel === '' ? base : `${base}/${rel}`;
}

/**
 * Lists a directory source: the directory itself and every entry below it (not following
 * symlinks), minus what `ignore` excludes, sorted by path (parents before children).
 * Synchronous lstat/readdir in time slices ({@link TimeSlices}), yielding to the event loop between
 * them: per call, the thread-pool round trip of the async API costs several times the syscall
 * (measured 4x slower for 20,000 files), and a walk is a long run of tiny calls.
 */
async function walk(dirHost: string, rootRel: string, ignore: IgnoreMatcher | undefined, signal?: AbortSignal): Promise<SourceEntry[]> {
  const out: SourceEntry[] = [await entryOf(dirHost, '')];
  const stack: Array<[string, string]> = [[dirHost, '']];
  const fast = LITTLE_ENDIAN ? fastFs() : undefined;
  const fields = new BigUint64Array(STAT_BATCH * LSTAT_FIELDS);
  const slices = new TimeSlices(signal);
  while (stack.length > 0) {
    if (slices.due()) await slices.yield();
    const [host, rel] = stack.pop()!;
    let dirents: Dirent[];
    try {
      dirents = readdirSync(host, { withFileTypes: true });
    } catch (cause) {
      throw new ContextError('E_CONTEXT_READ', `reading directory ${host}`, { cause });
    }
    const listed: Array<[childHost: string, childRel: string, name: string]> = [];
    for (const d of dirents) {
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      const childHost = path.join(host, d.name);
      const ignored = ignore?.matches(joinRel(rootRel, childRel)) ?? false;
      // An ignored directory is still walked when exceptions might re-include something below
      // it; it is then not listed itself (Docker's context tar holds only the included files).
      if (ignored && !(d.isDirectory() && ignore!.hasExceptions)) continue;
      if (!ignored) listed.push([childHost, childRel, d.name]);
      if (d.isDirectory()) stack.push([childHost, childRel]);
    }
    entriesOf(host, listed, rootRel, fast, fields, out);
  }
  out.sort((a, b) => compareUtf8(a.rel, b.rel));
  return out;
}

function notFound(rel: string, opts: SelectOptions): ContextError {
  const { from, instruction = 'COPY' } = opts;
  if (from !== undefined) {
    // Docker 20.10 (checked against dockerd): "COPY failed: stat rel-shadow: file does not exist"
    return new ContextError('E_SOURCE_NOT_FOUND', `${instruction} failed: stat ${cleanPath(`/${rel}`).slice(1)}: file does not exist`, {
      hint: `the path is looked up in the filesystem of --from=${from} (symlinks resolve inside it); check it exists there`,
    });
  }
  return new ContextError(
    'E_SOURCE_NOT_FOUND',
    `${instruction} failed: file not found in build context or excluded by .dockerignore: stat ${rel}: file does not exist`,
    { hint: 'check the path (it is relative to the build context) and your .dockerignore' },
  );
}

/** Selects one concrete (wildcard-free, cleaned, relative) path; follows symlinks inside `root`. */
async function selectOne(root: string, rel: string, opts: SelectOptions, shown: string): Promise<Source> {
  if (rel !== '.' && opts.ignore?.matches(rel)) throw notFound(shown, opts);
  const host = await resolveInRoot(root, rel);
  const resolvedRel = path.relative(root, host).split(path.sep).join('/') || '.';
  if (resolvedRel !== '.' && opts.ignore?.matches(resolvedRel)) throw notFound(shown, opts);
  let top: SourceEntry;
  try {
    // synchronous: a wildcard may select thousands of sources, each one stat
    top = entryOfSync(host, '');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT' || (cause as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw notFound(shown, opts);
    }
    throw new ContextError('E_CONTEXT_READ', `reading ${shown}`, { cause });
  }
  const entries = top.type === 'dir' ? await walk(host, resolvedRel, opts.ignore, opts.signal) : [top];
  return { root, rel, entries };
}

/** Paths below `root` matching a wildcard pattern, segment by segment, like Docker's walk + filepath.Match. */
async function expandWildcard(root: string, pattern: string, ignore: IgnoreMatcher | undefined): Promise<string[]> {
  const segs = pattern.split('/');
  let current: string[] = ['.'];
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const last = i === segs.length - 1;
    const next: string[] = [];
    for (const base of current) {
      const baseHost = base === '.' ? root : path.join(root, base);
      if (!hasWildcards(seg)) {
        const name = seg.replace(/\\(.)/gs, '$1');
        const rel = base === '.' ? name : `${base}/${name}`;
        try {
          const st = await lstat(path.join(root, rel));
          // Docker's walk does not descend through symlinks.
          if (last || st.isDirectory()) next.push(rel);
        } catch {
          /* no such entry: no match here */
        }
        continue;
      }
      let dirents: Dirent[];
      try {
        dirents = await readdir(baseHost, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const d of dirents) {
        if (!goMatch(seg, d.name)) continue;
        if (!last && !d.isDirectory()) continue;
        next.push(base === '.' ? d.name : `${base}/${d.name}`);
      }
    }
    current = next.filter((rel) => !(ignore?.matches(rel) ?? false) || (!last && ignore!.hasExceptions));
  }
  return current.sort(compareUtf8);
}

/** The source path Docker 20.10's copier works with: one leading "/", then one leading "./", trimmed. */
function dockerOrigPath(pattern: string): string {
  const p = pattern.startsWith('/') ? pattern.slice(1) : pattern;
  return p.startsWith('./') ? p.slice(2) : p;
}

/** True when no element of the slash pattern is (once unescaped) "", "." or "..". */
function isCleanPattern(pattern: string): boolean {
  return pattern.split('/').every((seg) => {
    const name = seg.replace(/\\(.)/gs, '$1');
    return name !== '' && name !== '.' && name !== '..';
  });
}

/**
 * Selects the sources of a COPY/ADD from `root` (the build context, or a stage's rootfs for
 * `--from`). Each pattern is relative to `root` (a leading `/` is `root` too) and may hold Go
 * `filepath.Match` wildcards; a symlink named by a source is followed inside `root`, symlinks below
 * a directory source are kept as symlinks. Ignored paths (.dockerignore) are never selected.
 * @returns one Source per matched path, in pattern order (matches of one wildcard sorted).
 * A wildcard pattern is matched as Docker 20.10 does, after trimming one leading `/` and one `./`,
 * against clean paths: one with `.`/`..`/empty elements or a trailing `/` matches nothing.
 * @throws ContextError E_OUTSIDE_CONTEXT for `../…` (no wildcard), E_SOURCE_NOT_FOUND for a missing or ignored
 *   path, E_NO_SOURCE_FILES for a wildcard matching nothing (a malformed one matches nothing).
 */
export async function selectSources(root: string, patterns: readonly string[], opts: SelectOptions = {}): Promise<Source[]> {
  const rootAbs = path.resolve(root);
  const out: Source[] = [];
  for (const pattern of patterns) {
    opts.signal?.throwIfAborted();
    // Docker 20.10's origPath: one leading "/" and then one leading "./" trimmed, nothing cleaned
    const orig = dockerOrigPath(pattern);
    const rel = cleanPath(`/${pattern}`).slice(1) || '.';
    if (!hasWildcards(orig)) {
      const lexical = cleanPath(pattern.replace(/^\/+/, ''));
      if (lexical === '..' || lexical.startsWith('../')) {
        throw new ContextError('E_OUTSIDE_CONTEXT', `${opts.instruction ?? 'COPY'} failed: forbidden path outside the build context: ${orig} ()`, {
          hint: 'sources must be inside the build context; move the file into it or use a larger context',
        });
      }
      out.push(await selectOne(rootAbs, rel, opts, orig));
      continue;
    }
    // A malformed pattern matches nothing: Docker 20.10's copyWithWildcards drops filepath.Match's
    // ErrBadPattern (checked against dockerd: `COPY [a /x` fails "no source files were specified").
    let bad: BadPatternError | undefined;
    try {
      validatePattern(orig);
    } catch (cause) {
      if (!(cause instanceof BadPatternError)) throw cause;
      bad = cause;
    }
    // Docker matches origPath against the walk's clean relative paths (copyWithWildcards): a
    // pattern with "", "." or ".." elements or a trailing "/" matches nothing (checked against
    // dockerd: 'd*/', './sub/../d*', '././d*', '//d*', 'd1//*' and '../d*' all fail "no source
    // files were specified"; before the walk, so '../d*' is not "outside the build context")
    const matches = bad === undefined && isCleanPattern(orig) ? await expandWildcard(rootAbs, orig, opts.ignore) : [];
    if (matches.length === 0 && !opts.allowEmptyWildcard) {
      throw new ContextError('E_NO_SOURCE_FILES', `${opts.instruction ?? 'COPY'} failed: no source files were specified`, {
        hint:
          bad !== undefined
            ? `${pattern} is no valid wildcard pattern (Go filepath.Match syntax: *, ?, [a-z], and \\ to escape), so it matches nothing`
            : `no file in the build context matches ${pattern} (or all matches are in .dockerignore)`,
        ...(bad !== undefined ? { cause: bad } : {}),
      });
    }
    for (const m of matches) {
      const src = await selectOne(rootAbs, m, opts, m);
      if (isWithin(rootAbs, src.entries[0]!.hostPath)) out.push(src);
    }
  }
  return out;
}
