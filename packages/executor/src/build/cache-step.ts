/**
 * The build cache as the build loop sees it: one {@link BuildCache} per build, a cursor per stage
 * carrying the parent key, and {@link BuildCache.step} wrapping each step — look the key up, reuse
 * the record on a hit (nothing runs), or run the step, explain the miss and record the result.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Instruction, RunMount } from '@tsbuild/parser';
import { ImageNotFoundError, type DiffID, type ResolvedImage, type Store } from '@tsbuild/layer-store';
import { compileIgnore, hashSources, readDockerignore, selectSources, StatIndex, type IgnoreMatcher, type Source } from '../context/index.js';
import { listedRunArgs, type BuildContext, type ImageState } from './build.js';
import { cacheKeyOf, CacheRecords, CACHE_RECORD_VERSION, explainDifference, fromKeyOf, pointerNames, type CacheInputs, type CacheRecord, type SourceFileFact } from './cache.js';
import type { ExpandedStep } from './expand.js';
import { platformString, stageRef, type PlannedStage } from './plan.js';
import { mountKeyParts } from './mounts.js';
import { copyFromNotFound, copyFromSourceHash } from './steps/copy.js';

/** Steps whose result is restored from the record on a hit instead of being run. */
const RESTORED = new Set(['RUN', 'COPY', 'ADD', 'WORKDIR']);
/** Selections with more entries than this record no per-file facts (explanations get coarser, and a rebuild of the COPY links no unchanged file from the earlier snapshot). */
const MAX_FILE_FACTS = 50000;

/** A stage being built: its identity and the key of its last step. */
export interface StageCursor {
  readonly stageIndex: number;
  /** stage name, or its index */
  readonly stageId: string;
  /** lookups are skipped in this stage (--no-cache, --no-cache-filter) */
  readonly noLookup: boolean;
  key: string;
  /** display number of the previous step if it missed in this build */
  lastMissed: number | undefined;
}

/** What {@link BuildCache.step} did. */
export interface StepOutcome {
  state: ImageState;
  cached: boolean;
  key: string;
  /** why the step missed (undefined on a hit) */
  reason?: string;
}

/** What one step hands to the cache. */
export interface CacheStepInput {
  state: ImageState;
  step: ExpandedStep;
  instr: Instruction;
  /** RUN --mount specs after expansion */
  mounts: readonly RunMount[];
  index: number;
}

const envPairs = (env: readonly string[]): Array<[string, string]> =>
  env.map((e) => {
    const i = e.indexOf('=');
    return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
  });

const isUrl = (s: string): boolean => /^(https?:\/\/|git@)/i.test(s);

const sha256Hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** The build cache of one build. */
export class BuildCache {
  readonly records: CacheRecords;
  readonly #store: Store;
  readonly #project: string;
  readonly #noCache: boolean;
  readonly #noCacheFilter: ReadonlySet<string>;
  readonly #now: () => Date;
  readonly #stageKeys = new Map<number, string>();
  /** cache mount dirs held by a step of this build with sharing=private */
  readonly privateInUse = new Set<string>();
  #statIndex: Promise<StatIndex> | undefined;
  #ignore: Promise<IgnoreMatcher> | undefined;
  /**
   * Context selections of this build by patterns: the COPY that missed copies exactly what its key
   * hashed, without walking the context again.
   */
  readonly #selections = new Map<string, Promise<Source[]>>();
  readonly #contextDir: string | null;
  /** base images by reference, resolved once per build */
  readonly #images = new Map<string, Promise<ResolvedImage>>();

  constructor(store: Store, opts: { project: string; noCache: boolean; noCacheFilter: readonly string[]; now: () => Date; contextDir?: string | null }) {
    this.#store = store;
    this.#contextDir = opts.contextDir ?? null;
    this.records = new CacheRecords(store.cacheDir);
    this.#project = opts.project;
    this.#noCache = opts.noCache;
    this.#noCacheFilter = new Set(opts.noCacheFilter.map((s) => s.toLowerCase()));
    this.#now = opts.now;
  }

  /** The key of FROM, and a cursor for the stage's steps. */
  async startStage(ctx: BuildContext, p: PlannedStage): Promise<StageCursor> {
    let key: string;
    if (p.base.kind === 'scratch') key = fromKeyOf({ kind: 'scratch', platform: platformString(ctx.platform) });
    else if (p.base.kind === 'stage') key = fromKeyOf({ kind: 'stage', key: this.#stageKeys.get(p.base.index) ?? '' });
    else key = fromKeyOf({ kind: 'image', configDigest: (await this.resolveImage(p.base.ref)).id });
    const stageId = p.stage.name ?? String(p.stage.index);
    const noLookup = this.#noCache || this.#noCacheFilter.has(stageId.toLowerCase()) || this.#noCacheFilter.has(String(p.stage.index));
    return { stageIndex: p.stage.index, stageId, noLookup, key, lastMissed: undefined };
  }

  /**
   * The store's image named `ref`, resolved once per build: FROM's starting state, its cache key
   * and `--from` digests all read the same image (and the store once).
   */
  resolveImage(ref: string): Promise<ResolvedImage> {
    let resolved = this.#images.get(ref);
    if (resolved === undefined) {
      resolved = this.#store.resolveImage(ref);
      this.#images.set(ref, resolved);
    }
    return resolved;
  }

  /** The image a `--from` names when no stage does; a missing one fails as COPY --from does. */
  async #resolveFromImage(from: string): Promise<ResolvedImage> {
    try {
      return await this.resolveImage(from);
    } catch (err) {
      if (err instanceof ImageNotFoundError) throw copyFromNotFound(from, err);
      throw err;
    }
  }

  /** Records the stage's final key (FROM <stage> of later stages starts from it). */
  endStage(cursor: StageCursor): void {
    this.#stageKeys.set(cursor.stageIndex, cursor.key);
  }

  /**
   * Runs one step through the cache: on a hit the record's result is applied without running
   * `run` (for config-only steps, `run` is applied and the recorded history entries are kept, so
   * their `created` times stay); on a miss `run` runs and its result is recorded.
   */
  async step(ctx: BuildContext, cursor: StageCursor, input: CacheStepInput, run: (s: ImageState, prior?: CacheRecord) => Promise<ImageState>): Promise<StepOutcome> {
    const { state, index } = input;
    const { inputs, sources } = await this.#inputs(ctx, cursor, input);
    const key = cacheKeyOf(inputs);
    let rec = cursor.noLookup ? undefined : await this.records.get(key);
    const display = index + 1;
    // COPY --from: Docker keys the step by the hash of what it selects, not by the whole source
    // stage; a record made from another build of that stage with the same selected files serves
    const byContent = rec === undefined ? await this.#fromContentPointer(ctx, cursor, input, inputs) : undefined;
    if (rec === undefined && byContent !== undefined && !cursor.noLookup) {
      const k = await this.records.pointer(byContent);
      rec = k === undefined ? undefined : await this.records.get(k);
    }
    // on a hit by content the later steps continue from the record's key, as they did when it was made
    cursor.key = rec?.key ?? key;
    if (rec !== undefined) {
      ctx.emit({ type: 'step-cached', stage: cursor.stageIndex, index });
      const next = RESTORED.has(input.step.kind) ? this.#restore(ctx, state, rec, input.step.kind) : this.#adoptHistory(await run(state), state, rec);
      await this.records.touch(rec, this.#now());
      cursor.lastMissed = undefined;
      return { state: next, cached: true, key };
    }
    if (sources !== undefined && inputs.sources !== undefined) {
      const files = await this.#fileFacts(sources);
      if (files !== undefined) inputs.files = files;
    }
    const names = pointerNames(this.#project, cursor.stageId, index, input.instr.raw);
    const sameText = await this.#recordAt(names.byText);
    // Saying what changed compares every file of a COPY with the record's (~70 ms for 20,000
    // files): done when the reason is read (--explain-cache, progress events), not before
    const missed = { type: 'step-cache-miss' as const, stage: cursor.stageIndex, index, key, reason: '' };
    if (sameText !== undefined) {
      const parentMissed = cursor.lastMissed;
      let said: string | undefined;
      Object.defineProperty(missed, 'reason', { enumerable: true, get: () => (said ??= explainDifference(sameText.inputs, inputs, parentMissed)) });
    } else {
      missed.reason = await this.#explain(inputs, names, cursor.lastMissed, sameText);
    }
    ctx.emit(missed);
    // the last build of this step with the same inputs but its sources: COPY links unchanged files from it
    const prior = sameText !== undefined && sameInputsBut(sameText.inputs, inputs, ['sources', 'files', 'text']) ? sameText : undefined;
    const next = await run(state, prior);
    // a COPY or ADD from the context recorded its files' digests: the stat index is written while
    // the build goes on (the build's end waits for it, and writes what changed after)
    if (sources !== undefined) void this.saveStatIndex().catch(() => undefined);
    const added = next.layers.slice(state.layers.length);
    const addedDiffIDs = next.image.rootfs.diff_ids.slice(state.image.rootfs.diff_ids.length);
    const record: CacheRecord = {
      version: CACHE_RECORD_VERSION,
      key,
      inputs,
      config: next.image.config,
      layers: added.map((descriptor, i) => ({ descriptor, diffID: addedDiffIDs[i] as DiffID })),
      history: (next.image.history ?? []).slice((state.image.history ?? []).length),
      blobs: added.map((d) => d.digest),
      lastUsed: this.#now().toISOString(),
    };
    await this.records.put(record);
    await this.records.setPointers([names.byPosition, names.byText, ...(byContent !== undefined ? [byContent] : [])], key);
    cursor.lastMissed = display;
    return { state: next, cached: false, key, get reason() { return missed.reason; } };
  }

  /**
   * For COPY/ADD --from: the name of the pointer from the step's inputs with the source stage's
   * rootfs replaced by Docker's hash of the selected sources, to the key of the record they made.
   */
  async #fromContentPointer(ctx: BuildContext, cursor: StageCursor, input: CacheStepInput, inputs: CacheInputs): Promise<string | undefined> {
    const { step, instr } = input;
    if ((step.kind !== 'COPY' && step.kind !== 'ADD') || step.from === undefined) return undefined;
    const hash = await copyFromSourceHash(ctx, step, cursor.stageIndex, instr.range.start.line);
    if (hash === undefined) return undefined;
    return `c-${sha256Hex(cacheKeyOf({ ...inputs, fromRootfs: `content:${hash}` }))}`;
  }

  #restore(ctx: BuildContext, state: ImageState, rec: CacheRecord, kind: string): ImageState {
    // runCreatedBy marks the stage's ARGs as used when a RUN runs; a cached RUN used them too
    if (kind === 'RUN') for (const k of state.args.keys()) ctx.usedArgs.add(k);
    return {
      ...state,
      layers: [...state.layers, ...rec.layers.map((l) => l.descriptor)],
      image: {
        ...state.image,
        config: structuredClone(rec.config),
        rootfs: { type: 'layers', diff_ids: [...state.image.rootfs.diff_ids, ...rec.layers.map((l) => l.diffID)] },
        history: [...(state.image.history ?? []), ...rec.history],
      },
    };
  }

  #adoptHistory(next: ImageState, before: ImageState, rec: CacheRecord): ImageState {
    const from = (before.image.history ?? []).length;
    const history = next.image.history ?? [];
    if (history.length - from !== rec.history.length) return next;
    return { ...next, image: { ...next.image, history: [...history.slice(0, from), ...rec.history] } };
  }

  async #explain(cur: CacheInputs, names: { byPosition: string; byText: string }, parentMissed: number | undefined, sameText: CacheRecord | undefined): Promise<string> {
    if (sameText !== undefined) return explainDifference(sameText.inputs, cur, parentMissed);
    const samePlace = await this.#recordAt(names.byPosition);
    if (samePlace !== undefined) return `instruction text changed (was: ${samePlace.inputs.text})`;
    return 'no previous record';
  }

  async #recordAt(pointer: string): Promise<CacheRecord | undefined> {
    const k = await this.records.pointer(pointer);
    return k === undefined ? undefined : this.records.get(k);
  }

  /** The named inputs of a step's key (and the COPY/ADD sources, for per-file facts on a miss). */
  async #inputs(ctx: BuildContext, cursor: StageCursor, input: CacheStepInput): Promise<{ inputs: CacheInputs; sources?: Source[] }> {
    const { state, step, instr } = input;
    const config = state.image.config;
    const inputs: CacheInputs = {
      parent: cursor.key,
      kind: step.kind,
      text: instr.raw,
      instruction: JSON.stringify(instr.kind === 'RUN' ? [step, instr.heredocs.map((h) => [h.name, h.content, h.expand])] : step),
      env: envPairs(config.Env ?? []),
      user: config.User ?? '',
      workdir: config.WorkingDir ?? '',
      shell: config.Shell ?? [],
      platform: platformString(ctx.platform),
    };
    if (ctx.options.sourceDateEpoch !== undefined) inputs.epoch = ctx.options.sourceDateEpoch;
    if (step.kind === 'RUN') {
      // the args Docker's key (the RUN's saved command) lists: a proxy arg not declared is left out
      const { listed, prefixed } = listedRunArgs(ctx, state);
      inputs.args = listed;
      if (prefixed && listed.length === 0) inputs.argsPrefix = true;
      inputs.network = step.network === 'none' || ctx.options.network === 'none' ? 'none' : 'host';
      if (input.mounts.length > 0) {
        const parts: string[] = [];
        for (const m of input.mounts) parts.push(await this.#mountKey(ctx, cursor, m));
        inputs.mounts = parts;
      }
      return { inputs };
    }
    if (step.kind !== 'COPY' && step.kind !== 'ADD') return { inputs };
    if (step.from !== undefined) {
      inputs.fromRootfs = await this.#rootfsDigest(ctx, cursor, step.from);
      return { inputs };
    }
    const local = step.sources.filter((s) => !isUrl(s));
    if (local.length === 0 || ctx.options.contextDir === null) return { inputs };
    // the stat index is read (thread pool) while the context is walked
    const index = this.#index();
    const sources = await this.#select(ctx, ctx.options.contextDir, local, step.kind);
    // owners aside: Docker's CLI sends the context with every owner 0:0 (a chown alone is a hit)
    inputs.sources = await hashSources(sources, { statIndex: await index, owners: false, ...(ctx.options.signal ? { signal: ctx.options.signal } : {}) });
    return { inputs, sources };
  }

  async #select(ctx: BuildContext, contextDir: string, patterns: readonly string[], instruction: 'COPY' | 'ADD' = 'COPY'): Promise<Source[]> {
    this.#ignore ??= (async () => {
      const dfPath = 'path' in ctx.options.dockerfile ? ctx.options.dockerfile.path : undefined;
      return compileIgnore(await readDockerignore(contextDir, dfPath));
    })();
    const ignore = await this.#ignore;
    const memo = JSON.stringify([contextDir, patterns, instruction]);
    let selected = this.#selections.get(memo);
    if (selected === undefined) {
      selected = selectSources(contextDir, patterns, { ignore, allowEmptyWildcard: true, instruction, ...(ctx.options.signal ? { signal: ctx.options.signal } : {}) });
      this.#selections.set(memo, selected);
      // a failed selection is not remembered: the step reports it, a retry selects again
      selected.catch(() => this.#selections.delete(memo));
    }
    return selected;
  }

  /**
   * The context selection this build made for `patterns` (the one the step's key hashed), or
   * undefined when none was made; the COPY that runs after a miss reuses it.
   */
  selectionOf(contextDir: string, patterns: readonly string[], instruction: 'COPY' | 'ADD'): Promise<Source[]> | undefined {
    return this.#selections.get(JSON.stringify([contextDir, patterns, instruction]));
  }

  /**
   * The stat index of this build's context: one file per context directory under
   * `cache/stat-indexes/`, so a build loads only the digests of its own context.
   */
  statIndex(): Promise<StatIndex> {
    this.#statIndex ??= StatIndex.load(join(this.#store.cacheDir, 'stat-indexes', sha256Hex(this.#contextDir ?? '-').slice(0, 32)));
    return this.#statIndex;
  }

  /**
   * Writes the stat index back when this build changed it (new digests and tarsums) since it was
   * last written: after a step that hashed context files (in the background) and at the build's
   * end, since a large context's index is megabytes (0.1-0.2 s to write and fsync here).
   */
  async saveStatIndex(): Promise<void> {
    if (this.#statIndex !== undefined) await (await this.#statIndex).save();
  }

  #index(): Promise<StatIndex> {
    return this.statIndex();
  }

  /** Digest of the rootfs a `--from` / `from=` names: its diffIDs (content, not how it was made). */
  async #rootfsDigest(ctx: BuildContext, cursor: StageCursor, from: string): Promise<string> {
    const i = stageRef(ctx.df, from, cursor.stageIndex);
    const diffIDs =
      i !== undefined ? ((await ctx.stages.get(i)) as ImageState).image.rootfs.diff_ids : (await this.#resolveFromImage(from)).config.rootfs.diff_ids;
    return `sha256:${sha256Hex(JSON.stringify(diffIDs))}`;
  }

  async #mountKey(ctx: BuildContext, cursor: StageCursor, m: RunMount): Promise<string> {
    const parts = mountKeyParts(m);
    if (m.type === 'bind') {
      if (m.from !== undefined && m.from !== '') parts.push(['fromRootfs', await this.#rootfsDigest(ctx, cursor, m.from)]);
      else if (ctx.options.contextDir !== null) {
        const sources = await this.#select(ctx, ctx.options.contextDir, [m.source ?? '.']);
        parts.push(['content', await hashSources(sources, { statIndex: await this.#index() })]);
      }
    }
    return JSON.stringify(parts);
  }

  /** Per-file facts for explanations; content from the stat index or read again. */
  async #fileFacts(sources: readonly Source[]): Promise<SourceFileFact[] | undefined> {
    const total = sources.reduce((n, s) => n + s.entries.length, 0);
    if (total > MAX_FILE_FACTS) return undefined;
    const index = await this.#index();
    const out: SourceFileFact[] = [];
    for (const s of sources) {
      const prefix = s.rel === '.' ? '' : s.rel;
      for (const e of s.entries) {
        const rel = e.rel === '' ? prefix : prefix === '' ? e.rel : `${prefix}/${e.rel}`;
        const sha = e.type === 'file' ? (index.lookup(e) ?? sha256Hex(readFileSync(e.hostPath))) : '';
        out.push([rel, e.type, e.mode, e.uid, e.gid, e.size, e.linkTarget ?? '', sha]);
      }
    }
    return out;
  }
}

/** Whether two steps' inputs are equal but for the fields `except`. */
function sameInputsBut(a: CacheInputs, b: CacheInputs, except: ReadonlyArray<keyof CacheInputs>): boolean {
  const strip = (x: CacheInputs): string => JSON.stringify(Object.entries(x).filter(([k]) => !except.includes(k as keyof CacheInputs)).sort(([p], [q]) => (p < q ? -1 : 1)));
  return strip(a) === strip(b);
}
