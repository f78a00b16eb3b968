/**
 * The build cache: keys, records and miss explanations.
 *
 * A step's key is the sha256 of its named inputs (see {@link CacheInputs}) — the parent step's key,
 * the expanded instruction, the environment, build args, user, workdir, shell, platform, network,
 * mounts, and for COPY/ADD the digest of every selected source. A record `cache/<keyhex>.json`
 * holds the step's result (config after it, the layers and history entries it added) and a
 * top-level `blobs` array, so the store's garbage collection keeps those layers alive even after
 * the image that made them is removed. Pointer files under `cache/index/` name the latest record
 * of a step position, so a miss can be explained against the nearest previous record cheaply.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerConfig, Descriptor, DiffID, HistoryEntry } from '@tsbuild/layer-store';

/**
 * How fresh a record's `lastUsed` is kept: a hit less than this after the recorded time writes
 * nothing (a no-change rebuild then rewrites no record); `prune --cache` orders by it, to the hour.
 */
export const LAST_USED_RESOLUTION_MS = 60 * 60 * 1000;

/** Version of the record format; records of another version are ignored (misses). */
export const CACHE_RECORD_VERSION = 1;

/** One selected file or directory of a COPY/ADD source, as recorded for explanations. */
export type SourceFileFact = readonly [rel: string, type: string, mode: number, uid: number, gid: number, size: number, link: string, sha256: string];

/** The named inputs of a step's cache key. Absent fields do not take part. */
export interface CacheInputs {
  /** key of the previous step (or of FROM) */
  parent: string;
  /** the step's kind, e.g. `RUN` */
  kind: string;
  /** the instruction as written (for explanations; the key uses `instruction`) */
  text: string;
  /** canonical JSON of the expanded instruction */
  instruction: string;
  env: ReadonlyArray<readonly [string, string]>;
  /**
   * build args a RUN's command lists (name → value; Docker's prependEnvOnCmd: predefined proxy
   * args not declared in the stage are not listed, though the RUN sees them)
   */
  args?: ReadonlyArray<readonly [string, string]>;
  /** RUN: only unlisted args are in scope (Docker's command reads `|0 <argv>`, not `<argv>`) */
  argsPrefix?: boolean;
  user: string;
  workdir: string;
  shell: readonly string[];
  platform: string;
  network?: string;
  /** canonical JSON of each mount spec (secrets: the id only, never the value) */
  mounts?: readonly string[];
  /** COPY/ADD: digest of the selected sources (hashSources) */
  sources?: string;
  /** per-file facts of the sources, for explanations (left out for very large selections) */
  files?: readonly SourceFileFact[];
  /** COPY --from / RUN --mount from=: digest of the rootfs it reads (its diffIDs) */
  fromRootfs?: string;
  /**
   * SOURCE_DATE_EPOCH of the build, when set: it decides layer mtimes and `created` times, so a
   * record made without it (or with another) must not serve a reproducible build.
   */
  epoch?: number;
}

/** A cache record: what a step produced. */
export interface CacheRecord {
  version: number;
  key: string;
  inputs: CacheInputs;
  /** container config after the step */
  config: ContainerConfig;
  /** layers the step added (usually zero or one) */
  layers: Array<{ descriptor: Descriptor; diffID: DiffID }>;
  /** history entries the step added */
  history: HistoryEntry[];
  /** every blob this record keeps alive (the store's GC convention) */
  blobs: string[];
  lastUsed: string;
}

/** Computes the cache key (`sha256:<hex>`) of a step from its inputs. Pure. */
export function cacheKeyOf(inputs: CacheInputs): string {
  const h = createHash('sha256');
  // A fixed field order and JSON arrays make the encoding unambiguous. `text` and `files` are
  // explanation aids only: the expanded instruction and the sources digest decide the key.
  const parts: Array<[string, unknown]> = [
    ['v', CACHE_RECORD_VERSION],
    ['parent', inputs.parent],
    ['instruction', inputs.instruction],
    ['env', inputs.env],
    ['args', inputs.args ?? null],
    ['user', inputs.user],
    ['workdir', inputs.workdir],
    ['shell', inputs.shell],
    ['platform', inputs.platform],
    ['network', inputs.network ?? null],
    ['mounts', inputs.mounts ?? null],
    ['sources', inputs.sources ?? null],
    ['fromRootfs', inputs.fromRootfs ?? null],
  ];
  // only when set: the keys of builds without SOURCE_DATE_EPOCH stay what they were
  if (inputs.epoch !== undefined) parts.push(['epoch', inputs.epoch]);
  if (inputs.argsPrefix === true) parts.push(['argsPrefix', true]);
  for (const p of parts) h.update(`${JSON.stringify(p)}\n`);
  return `sha256:${h.digest('hex')}`;
}

/** Key of FROM: the base image's config digest, the parent stage's final key, or scratch's. */
export function fromKeyOf(base: { kind: 'scratch'; platform: string } | { kind: 'image'; configDigest: string } | { kind: 'stage'; key: string }): string {
  if (base.kind === 'stage') return base.key;
  if (base.kind === 'image') return base.configDigest;
  return `sha256:${createHash('sha256').update(`${JSON.stringify(['scratch', base.platform])}\n`).digest('hex')}`;
}

const hexOfKey = (key: string): string => key.replace(/^sha256:/, '');

/** Reads and writes records and pointers under a store's `cache/` directory. */
export class CacheRecords {
  readonly #dir: string;
  constructor(cacheDir: string) {
    this.#dir = cacheDir;
  }

  /** The record of `key`, or undefined (missing, unreadable or another version). */
  async get(key: string): Promise<CacheRecord | undefined> {
    let text: string;
    try {
      // a small file read once per step: synchronously, without a thread-pool round trip
      text = readFileSync(join(this.#dir, `${hexOfKey(key)}.json`), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const rec = JSON.parse(text) as CacheRecord;
      return rec.version === CACHE_RECORD_VERSION && rec.key === key ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes a record: temp file, fsync, rename (a crash leaves the old file or none). */
  async put(rec: CacheRecord): Promise<void> {
    await this.#write(`${hexOfKey(rec.key)}.json`, JSON.stringify(rec), true);
  }

  /**
   * Updates `lastUsed` of a record that was hit, unless it was set less than
   * {@link LAST_USED_RESOLUTION_MS} before `when`. Not fsynced: losing this update in a crash only
   * makes the record look older to `prune --cache`.
   */
  async touch(rec: CacheRecord, when: Date): Promise<void> {
    const age = when.getTime() - Date.parse(rec.lastUsed);
    if (age >= 0 && age < LAST_USED_RESOLUTION_MS) return;
    await this.#write(`${hexOfKey(rec.key)}.json`, JSON.stringify({ ...rec, lastUsed: when.toISOString() }), false);
  }

  /** The key a pointer names, if any. */
  async pointer(name: string): Promise<string | undefined> {
    try {
      const k = (await readFile(join(this.#dir, 'index', name), 'utf8')).trim();
      return /^sha256:[0-9a-f]{64}$/.test(k) ? k : undefined;
    } catch {
      return undefined;
    }
  }

  /** Sets pointers to `key` (hints only: not fsynced; a lost pointer costs only an explanation). */
  async setPointers(names: readonly string[], key: string): Promise<void> {
    await mkdir(join(this.#dir, 'index'), { recursive: true });
    for (const n of names) await this.#write(join('index', n), key, false);
  }

  async #write(rel: string, text: string, sync: boolean): Promise<void> {
    const target = join(this.#dir, rel);
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      if (sync) {
        const fh = await open(tmp, 'w', 0o644);
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
      } else await writeFile(tmp, text);
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
}

/** Pointer names of a step: by position, and by position + instruction text. */
export function pointerNames(project: string, stage: string, index: number, text: string): { byPosition: string; byText: string } {
  const h = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex');
  return { byPosition: `p-${h([project, stage, index])}`, byText: `t-${h([project, stage, index, text])}` };
}

function pairsDiff(label: string, before: ReadonlyArray<readonly [string, string]>, after: ReadonlyArray<readonly [string, string]>): string[] {
  const a = new Map(before);
  const b = new Map(after);
  const out: string[] = [];
  for (const [k, v] of b) {
    const old = a.get(k);
    if (old === undefined) out.push(`${label} ${k} added (${v})`);
    else if (old !== v) out.push(`${label} ${k} ${old}→${v}`);
  }
  for (const k of a.keys()) if (!b.has(k)) out.push(`${label} ${k} removed`);
  return out;
}

function filesDiff(before: readonly SourceFileFact[], after: readonly SourceFileFact[]): string[] {
  const a = new Map(before.map((f) => [f[0], f]));
  const b = new Map(after.map((f) => [f[0], f]));
  const out: string[] = [];
  const fields = ['type', 'mode', 'uid', 'gid', 'size', 'link target', 'content'] as const;
  for (const [rel, f] of b) {
    const old = a.get(rel);
    if (old === undefined) {
      out.push(`${rel || '.'} added`);
      continue;
    }
    const changed = fields.filter((_, i) => old[i + 1] !== f[i + 1]);
    // a content change shows as a size change too; name the content, as the user thinks of it
    const shown = changed.includes('content') ? changed.filter((c) => c !== 'size') : changed;
    if (shown.length > 0) out.push(`${rel || '.'} ${shown.join(', ')}`);
  }
  for (const rel of a.keys()) if (!b.has(rel)) out.push(`${rel || '.'} removed`);
  return out;
}

/** Joins a list, keeping it short: the first few and a count. */
function short(list: readonly string[], max = 5): string {
  return list.length <= max ? list.join(', ') : `${list.slice(0, max).join(', ')} and ${list.length - max} more`;
}

/**
 * Says which inputs differ between a previous record's inputs and this step's, e.g.
 * `COPY src/ changed: src/app.js content`, `RUN: build arg VERSION 1.2→1.3`,
 * `parent step 4 missed`. Pure.
 * @param parentMissed the step before this one missed in the current build (its number as shown)
 */
export function explainDifference(prev: CacheInputs, cur: CacheInputs, parentMissed: number | undefined): string {
  const reasons: string[] = [];
  if (prev.parent !== cur.parent) {
    if (parentMissed !== undefined) return `parent step ${parentMissed} missed`;
    reasons.push('parent changed (base image or earlier step differs from the recorded build)');
  }
  if (prev.instruction !== cur.instruction) reasons.push('expanded instruction changed');
  reasons.push(...pairsDiff('env', prev.env, cur.env));
  reasons.push(...pairsDiff('build arg', prev.args ?? [], cur.args ?? []));
  if ((prev.argsPrefix === true) !== (cur.argsPrefix === true)) reasons.push(cur.argsPrefix === true ? 'an undeclared proxy build arg was given' : 'no undeclared proxy build arg any more');
  if (prev.user !== cur.user) reasons.push(`user ${JSON.stringify(prev.user)}→${JSON.stringify(cur.user)}`);
  if (prev.workdir !== cur.workdir) reasons.push(`workdir ${JSON.stringify(prev.workdir)}→${JSON.stringify(cur.workdir)}`);
  if (JSON.stringify(prev.shell) !== JSON.stringify(cur.shell)) reasons.push('shell changed');
  if (prev.platform !== cur.platform) reasons.push(`platform ${prev.platform}→${cur.platform}`);
  if ((prev.network ?? '') !== (cur.network ?? '')) reasons.push(`network ${prev.network ?? 'default'}→${cur.network ?? 'default'}`);
  if (JSON.stringify(prev.mounts ?? []) !== JSON.stringify(cur.mounts ?? [])) reasons.push('mounts changed');
  if ((prev.fromRootfs ?? '') !== (cur.fromRootfs ?? '')) reasons.push('--from source changed');
  if (prev.epoch !== cur.epoch) reasons.push(`SOURCE_DATE_EPOCH ${prev.epoch ?? 'unset'}→${cur.epoch ?? 'unset'}`);
  let sourceNote: string | undefined;
  if ((prev.sources ?? '') !== (cur.sources ?? '')) {
    const files = prev.files !== undefined && cur.files !== undefined ? filesDiff(prev.files, cur.files) : [];
    sourceNote = files.length > 0 ? short(files) : 'sources changed';
  }
  if (sourceNote !== undefined) {
    const what = sourceTitle(cur.text);
    reasons.unshift(`${what} changed: ${sourceNote}`);
  }
  if (reasons.length === 0) return 'inputs changed';
  return sourceNote !== undefined && reasons.length === 1 ? (reasons[0] as string) : `${cur.kind}: ${reasons.join('; ')}`;
}

/** `COPY src/` from `COPY --chown=1 src/ /app/`: the keyword and its source words. */
function sourceTitle(text: string): string {
  const words = text.trim().split(/\s+/);
  const kw = (words[0] ?? '').toUpperCase();
  const rest = words.slice(1).filter((w) => !w.startsWith('--'));
  return rest.length > 1 ? `${kw} ${rest.slice(0, -1).join(' ')}` : kw;
}
