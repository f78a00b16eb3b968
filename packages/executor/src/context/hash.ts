import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import type { Digest } from '@tsbuild/layer-store';
import { ContextError } from './errors.js';
import type { Source, SourceEntry } from './select.js';

/** Files at most this large are read whole; larger ones are streamed through the hash. */
const READ_WHOLE_MAX = 1 << 20;
const INDEX_VERSION = 1;

interface IndexRecord {
  dev: string;
  ino: string;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  /** sha256 hex of the content. */
  sha256: string;
}

/**
 * A persistent map from a file's identity and change times (path, dev, ino, size, mtime_ns,
 * ctime_ns) to the sha256 of its content, so unchanged files are not read again.
 * Like git's index, an entry whose mtime or ctime is not older than the index file's own mtime is
 * "racy" (the file may have changed within the same clock tick after it was hashed) and is not
 * trusted.
 */
export class StatIndex {
  readonly #file: string | undefined;
  readonly #records: Map<string, IndexRecord>;
  readonly #racyFromNs: bigint;
  #dirty = false;

  private constructor(file: string | undefined, records: Map<string, IndexRecord>, racyFromNs: bigint) {
    this.#file = file;
    this.#records = records;
    this.#racyFromNs = racyFromNs;
  }

  /** An index kept only in memory. */
  static inMemory(): StatIndex {
    return new StatIndex(undefined, new Map(), 0n);
  }

  /**
   * Loads the index stored in `file` (a missing or unreadable file gives an empty index: it is
   * only a cache).
   */
  static async load(file: string): Promise<StatIndex> {
    try {
      const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file, { bigint: true })]);
      const doc = JSON.parse(text) as { version?: number; entries?: Record<string, IndexRecord> };
      if (doc.version !== INDEX_VERSION || typeof doc.entries !== 'object' || doc.entries === null) {
        return new StatIndex(file, new Map(), 0n);
      }
      return new StatIndex(file, new Map(Object.entries(doc.entries)), st.mtimeNs);
    } catch {
      return new StatIndex(file, new Map(), 0n);
    }
  }

  /** The content sha256 (hex) recorded for this entry, if its identity and times are unchanged. */
  lookup(e: SourceEntry): string | undefined {
    const r = this.#records.get(e.hostPath);
    if (r === undefined) return undefined;
    if (r.size !== e.size || r.dev !== String(e.dev) || r.ino !== String(e.ino)) return undefined;
    if (r.mtimeNs !== String(e.mtimeNs) || r.ctimeNs !== String(e.ctimeNs)) return undefined;
    if (e.mtimeNs >= this.#racyFromNs || e.ctimeNs >= this.#racyFromNs) return undefined;
    return r.sha256;
  }

  /** Records the content sha256 (hex) of an entry as it was stat'ed before reading. */
  record(e: SourceEntry, sha256: string): void {
    this.#records.set(e.hostPath, {
      dev: String(e.dev),
      ino: String(e.ino),
      size: e.size,
      mtimeNs: String(e.mtimeNs),
      ctimeNs: String(e.ctimeNs),
      sha256,
    });
    this.#dirty = true;
  }

  /** Writes the index back to its file (temp file, fsync, rename) when it changed. */
  async save(): Promise<void> {
    if (this.#file === undefined || !this.#dirty) return;
    const tmp = `${this.#file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      const entries = Object.fromEntries(this.#records);
      await fh.writeFile(JSON.stringify({ version: INDEX_VERSION, entries }));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.#file);
    } catch (cause) {
      await unlink(tmp).catch(() => undefined);
      throw new ContextError('E_STAT_INDEX_WRITE', `writing the stat index ${this.#file}`, { cause });
    }
    this.#dirty = false;
  }
}

/** Options of {@link hashSources}. */
export interface HashOptions {
  /** File holding the persistent stat index (created if missing), or an open index. */
  statIndex?: string | StatIndex;
  /** Files hashed at once (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** What {@link hashSourcesDetailed} did. */
export interface HashResult {
  digest: Digest;
  /** Files whose content was read. */
  filesRead: number;
  /** Files whose digest came from the stat index. */
  filesCached: number;
}

async function sha256OfFile(e: SourceEntry, signal?: AbortSignal): Promise<string> {
  try {
    if (e.size <= READ_WHOLE_MAX) {
      return createHash('sha256').update(await readFile(e.hostPath, { signal })).digest('hex');
    }
    const h = createHash('sha256');
    await pipeline(createReadStream(e.hostPath), h, { signal });
    return h.digest('hex');
  } catch (cause) {
    throw new ContextError('E_CONTEXT_READ', `reading ${e.hostPath}`, { cause });
  }
}

/**
 * Digest of the selected sources for the cache key: for every entry, in order, the source path,
 * the entry's relative path, type, mode, uid/gid (as on disk: the caller adds --chown/--chmod to
 * the key), size, symlink target and content sha256. Not mtime, not ctime.
 * Files are hashed in parallel; with `statIndex`, files whose (dev, ino, size, mtime, ctime) are
 * unchanged are not read, and the index is saved afterwards.
 * @throws ContextError E_CONTEXT_READ when a file cannot be read.
 */
export async function hashSourcesDetailed(sources: readonly Source[], opts: HashOptions = {}): Promise<HashResult> {
  const index =
    opts.statIndex === undefined ? StatIndex.inMemory() : typeof opts.statIndex === 'string' ? await StatIndex.load(opts.statIndex) : opts.statIndex;
  const limit = pLimit(opts.concurrency ?? 8);
  let filesRead = 0;
  let filesCached = 0;
  const contents = await Promise.all(
    sources.map((s) =>
      Promise.all(
        s.entries.map((e) => {
          if (e.type !== 'file') return '';
          const known = index.lookup(e);
          if (known !== undefined) {
            filesCached++;
            return known;
          }
          return limit(async () => {
            opts.signal?.throwIfAborted();
            const sha = await sha256OfFile(e, opts.signal);
            filesRead++;
            index.record(e, sha);
            return sha;
          });
        }),
      ),
    ),
  );
  const h = createHash('sha256');
  sources.forEach((s, i) => {
    h.update(`${JSON.stringify(['source', s.rel])}\n`);
    s.entries.forEach((e, j) => {
      // JSON arrays: unambiguous even for names holding newlines.
      h.update(`${JSON.stringify([e.rel, e.type, e.mode, e.uid, e.gid, e.size, e.linkTarget ?? '', contents[i]![j]])}\n`);
    });
  });
  await index.save();
  return { digest: `sha256:${h.digest('hex')}` as Digest, filesRead, filesCached };
}

/** {@link hashSourcesDetailed}, returning only the digest. */
export async function hashSources(sources: readonly Source[], opts: HashOptions = {}): Promise<Digest> {
  return (await hashSourcesDetailed(sources, opts)).digest;
}
