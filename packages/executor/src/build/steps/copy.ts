/**
 * COPY and ADD: an overlay of the parent's snapshots with a fresh upper dir (no sandbox process),
 * the context engineer's file work (`copyInto`, `addInto`, `writeHeredoc`) into it, then the upper
 * dir becomes the layer. Sources come from the build context (minus `.dockerignore`), or with
 * `--from` from an earlier stage's rootfs or a store image (mounted read-only through a throwaway
 * upper dir).
 */
import { readdir, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { chainIDsOf, writeLayer, ImageNotFoundError } from '@tsbuild/layer-store';
import type { Descriptor, DiffID } from '@tsbuild/layer-store';
import { mountRootfs, resolveChown, SandboxError, type Rootfs } from '../../sandbox/index.js';
import {
  addInto,
  cleanPath,
  compileIgnore,
  ContextError,
  copyInto,
  resolveInRoot,
  dockerSourceHash,
  hashSources,
  readDockerignore,
  selectSources,
  writeHeredoc,
  type DockerHashContext,
  type IgnoreMatcher,
  type Owner,
  type Source,
  StatIndex,
} from '../../context/index.js';
import { linkReused, type CopyReuse } from '../../context/copy.js';
import type { CacheRecord } from '../cache.js';
import { addHistory, addLayer, type BuildContext, type ImageState } from '../build.js';
import type { FsStep } from '../expand.js';
import { stageRef } from '../plan.js';
import { BuildError, invalidImageReference } from '../errors.js';
import { nopCreatedBy1 } from '../config.js';

/**
 * The entries a COPY or ADD set to "now" (sub-second): the destination and every directory above
 * it, as written and as resolved through the image's symlinks, relative to the rootfs. The
 * snapshot cuts them to whole seconds, as Docker 20.10's next step sees them (checked: after `COPY
 * f /newdir/sub/f`, `stat -c %y /newdir` in a RUN shows .000000000; the copied entries keep their
 * source mtimes, whole seconds already). A handful of paths: never a pass over what was copied.
 */
async function destinationPrefixes(rootfs: string, dest: string, workdir: string): Promise<string[]> {
  const image = dest.startsWith('/') ? cleanPath(dest) : cleanPath(`${workdir}/${dest}`);
  const prefixes = (rel: string): string[] => rel.split('/').filter(Boolean).map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  const resolved = relative(rootfs, await resolveInRoot(rootfs, image)).split(sep).join('/');
  return [...new Set([...prefixes(image), ...(resolved.startsWith('..') ? [] : prefixes(resolved))])];
}

/** A COPY or ADD step after expansion. */
export type CopyStep = Extract<FsStep, { kind: 'COPY' | 'ADD' }>;

/** Layers of an image state, paired with their diffIDs, for `prepareSnapshots`. */
function snapshotInputs(state: Pick<ImageState, 'layers' | 'image'>): Array<{ digest: Descriptor['digest']; diffID: DiffID }> {
  return state.layers.map((l, i) => ({ digest: l.digest, diffID: state.image.rootfs.diff_ids[i] as DiffID }));
}

/**
 * Mounts the rootfs of `state` at `<tmp>/<name>` over a fresh upper dir `<tmp>/<name>-upper`.
 * The caller unmounts (try/finally).
 */
export async function mountState(ctx: BuildContext, state: Pick<ImageState, 'layers' | 'image'>, tmp: string, name: string): Promise<Rootfs> {
  const signal = ctx.options.signal;
  await ctx.holdContent();
  const lowerdirs = await ctx.store.prepareSnapshots(snapshotInputs(state), signal ? { signal } : {});
  return mountRootfs({
    lowerdirs,
    upperdir: join(tmp, `${name}-upper`),
    workdir: join(tmp, `${name}-work`),
    target: join(tmp, name),
    ...(signal ? { signal } : {}),
  });
}

/** The context's `.dockerignore` matcher, read once per build. */
function contextIgnore(ctx: BuildContext, contextDir: string): Promise<IgnoreMatcher> {
  ctx.ignore ??= (async () => {
    const dfPath = 'path' in ctx.options.dockerfile ? ctx.options.dockerfile.path : undefined;
    return compileIgnore(await readDockerignore(contextDir, dfPath));
  })();
  return ctx.ignore;
}

/**
 * The error for a `COPY --from` naming neither an earlier stage nor an image in the store, worded
 * as Docker 20.10's dispatchCopy: `invalid from flag value X: ` and the reason, which for a name
 * that is no valid reference is distribution/reference's (`invalid reference format…`).
 * @param at the Dockerfile location when the caller does not prefix it itself.
 */
export function copyFromNotFound(from: string, err: ImageNotFoundError, at?: { file: string; line: number }): BuildError {
  const invalid = invalidImageReference(from, err.cause);
  const reason = invalid ?? `no stage or image named "${from}" in the store`;
  const message = `invalid from flag value ${from}: ${reason}`;
  return new BuildError('E_STEP', at === undefined ? message : `${at.file}:${at.line}: COPY --from=${from}: ${message}`, {
    hint: invalid !== undefined && err.hint !== undefined ? err.hint : 'name an earlier stage (FROM … AS name), its index, or an image in the store',
    cause: err,
    ...(at ?? {}),
  });
}

/**
 * The image state `COPY --from` names: an earlier stage (name or index) or an image in the store.
 * @throws BuildError E_STEP (with `line`) for a stage defined later, or a name that is neither.
 */
export async function resolveCopyFrom(ctx: BuildContext, from: string, stageIndex: number, line: number): Promise<Pick<ImageState, 'layers' | 'image'>> {
  const i = stageRef(ctx.df, from, stageIndex);
  if (i !== undefined) return (await ctx.stages.get(i)) as ImageState;
  const later = ctx.df.stages.find((s) => s.index >= stageIndex && (s.name === from.toLowerCase() || String(s.index) === from));
  if (later) {
    throw new BuildError('E_STEP', `${ctx.file}:${line}: COPY --from=${from}: stage "${from}" is defined at line ${later.from.range.start.line}, not before this one`, {
      hint: 'COPY --from can only read a stage defined earlier in the Dockerfile',
      file: ctx.file,
      line,
    });
  }
  try {
    const img = await ctx.store.resolveImage(from);
    return {
      image: { ...img.config, rootfs: { type: 'layers', diff_ids: [...img.config.rootfs.diff_ids] } },
      layers: img.manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
  } catch (err) {
    if (err instanceof ImageNotFoundError) throw copyFromNotFound(from, err, { file: ctx.file, line });
    throw err;
  }
}

/** `--chown` as Docker 20.10's parseChownFlag (see resolveChown); its errors are the step's. */
async function chownOwner(rootfs: string, chown: string): Promise<Owner> {
  try {
    return await resolveChown(rootfs, chown);
  } catch (err) {
    if (err instanceof SandboxError) {
      // dockerd wraps every parseChownFlag error so (also "invalid chown string format: a:b:c")
      const prefix = 'unable to convert uid/gid chown string to host mapping: ';
      const message = err.message.startsWith(prefix) ? err.message : prefix + err.message;
      throw new BuildError('E_STEP', message, { ...(err.hint ? { hint: err.hint } : {}), cause: err });
    }
    throw err;
  }
}

function chmodMode(chmod: string): number {
  if (!/^[0-7]{1,4}$/.test(chmod)) {
    throw new BuildError('E_STEP', `invalid chmod parameter ${chmod}`, { hint: 'give an octal mode such as 0644 or 755' });
  }
  return parseInt(chmod, 8);
}

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** One source as written: a URL, or the number of sources a local path or wildcard selected. */
type SourceSlot = 'url' | number;

/**
 * The `<kind>:<hex>` Docker writes in COPY/ADD history: `file:`/`dir:` for one source, `multi:`
 * for several. With `context` (sources from the build context or a stage's rootfs), Docker 20.10's
 * own tarsum-based hash (see docker-hash.ts); otherwise (heredocs, and without a stat index)
 * the sha256 of our source digest (content, mode, owner, size, link target; no mtimes). `urlParts`:
 * the parts of the URL sources as they are (addInto's urlHashes: Docker's tarsum of each download).
 */
async function sourceHash(sources: readonly Source[], heredocs: CopyStep['heredocs'], urlParts: readonly string[], signal?: AbortSignal, statIndex?: StatIndex, context?: DockerHashContext, order?: readonly SourceSlot[]): Promise<string> {
  let parts: string[] = [];
  for (const s of sources) {
    if (context !== undefined) {
      // from the build context: Docker's own hash (tarsums), so the history reads as Docker's
      parts.push(await dockerSourceHash([s], context));
      continue;
    }
    const d = await hashSources([s], { ...(signal ? { signal } : {}), ...(statIndex ? { statIndex } : {}) });
    parts.push(`${s.entries[0]?.type === 'dir' ? 'dir' : 'file'}:${d.slice('sha256:'.length)}`);
  }
  if (order !== undefined) {
    // Docker hashes the sources in the order written, URLs among the local ones
    const local = parts;
    let next = 0;
    let nextUrl = 0;
    parts = [];
    for (const slot of order) {
      if (slot === 'url') parts.push(urlParts[nextUrl++]!);
      else for (let i = 0; i < slot; i++) parts.push(local[next++]!);
    }
  } else {
    parts.push(...urlParts);
  }
  for (const h of heredocs) parts.push(`file:${createHash('sha256').update(h.content).digest('hex')}`);
  if (parts.length === 1) return parts[0] as string;
  return `multi:${createHash('sha256').update(parts.join(',')).digest('hex')}`;
}

/**
 * Docker 20.10's source hash (`file:…`/`dir:…`/`multi:…`, as in the history) of what a `COPY --from`
 * selects from the stage or image it names: Docker's cache criterion for the step (the parent image
 * and the command with this hash), whatever else that stage holds. Mounts the source read-only for
 * the walk. Undefined without `--from`, or when the selection fails (the step itself reports that).
 */
export async function copyFromSourceHash(ctx: BuildContext, step: CopyStep, stageIndex: number, line: number): Promise<string | undefined> {
  const local = step.sources.filter((s) => !isUrl(s));
  if (step.from === undefined || local.length === 0) return undefined;
  const signal = ctx.options.signal;
  const urls = step.kind === 'ADD' ? step.sources.filter(isUrl) : [];
  await ctx.holdContent();
  const tmp = await ctx.store.makeTempDir('copy-key');
  let src: Rootfs | undefined;
  try {
    src = await mountState(ctx, await resolveCopyFrom(ctx, step.from, stageIndex, line), tmp, 'from');
    const sources = await selectSources(src.path, local, { allowEmptyWildcard: true, from: step.from, ...(signal ? { signal } : {}) });
    if (sources.length === 0) return undefined;
    const context: DockerHashContext = { root: src.path, index: StatIndex.inMemory(), kind: 'rootfs', ...(signal ? { signal } : {}) };
    // (the URLs are not fetched for this key: their URL text stands in)
    const urlParts = urls.map((u) => `file:${createHash('sha256').update(u).digest('hex')}`);
    return await sourceHash(sources, step.heredocs, urlParts, signal, undefined, context);
  } catch (err) {
    if (signal?.aborted === true) throw err;
    return undefined; // the step runs and says what is wrong
  } finally {
    if (src) await src.unmount();
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * What a rebuild of a COPY may link instead of copy (see CopyReuse): the files of `prior`'s snapshot
 * (the last build of this step, with the same inputs but its sources) whose content digest is the
 * one the key just computed. Only for COPY from the context with per-file facts on record, and
 * while that snapshot is in the store.
 */
function reuseOf(ctx: BuildContext, state: ImageState, step: CopyStep, prior: CacheRecord | undefined, statIndex: StatIndex | undefined, upper: string): CopyReuse | undefined {
  const layer = prior?.layers.length === 1 ? prior.layers[0] : undefined;
  const files = prior?.inputs.files;
  if (layer === undefined || files === undefined || statIndex === undefined || step.kind !== 'COPY' || step.from !== undefined) return undefined;
  const chain = chainIDsOf([...state.image.rootfs.diff_ids, layer.diffID]).at(-1);
  if (chain === undefined) return undefined;
  const previous = ctx.store.snapshotDirFor(chain);
  if (statSync(previous, { throwIfNoEntry: false })?.isDirectory() !== true) return undefined;
  const shaOf = new Map<string, string>();
  for (const [rel, type, , , , , , sha] of files) if (type === 'file') shaOf.set(rel, sha);
  return {
    previous,
    upper,
    deferred: new Map(),
    sameContent(e, sourceRel) {
      const prefix = sourceRel === '.' ? '' : sourceRel;
      const rel = e.rel === '' ? prefix : prefix === '' ? e.rel : `${prefix}/${e.rel}`;
      const sha = shaOf.get(rel);
      return sha !== undefined && statIndex.lookup(e) === sha;
    },
  };
}

/**
 * Runs a COPY or ADD step; returns the state with its layer (or `empty_layer`) and history entry.
 * `prior`: the last record of this step with the same inputs but its sources, if any (a rebuild
 * links the files that did not change from its snapshot).
 */
export async function copyStep(ctx: BuildContext, state: ImageState, step: CopyStep, stageIndex: number, line: number, prior?: CacheRecord): Promise<ImageState> {
  const { store, options } = ctx;
  const signal = options.signal;
  const urls = step.kind === 'ADD' ? step.sources.filter(isUrl) : [];
  const local = step.sources.filter((s) => !isUrl(s));
  if (step.kind === 'COPY' && local.length < step.sources.length) {
    // dockerd 20.10 (getCopyInfoForSourcePath, allowRemote false)
    throw new ContextError('E_COPY_URL', "COPY failed: source can't be a URL for COPY", { hint: 'use ADD to download a file, or RUN with wget/curl' });
  }
  await ctx.holdContent();
  const tmp = await store.makeTempDir('copy');
  let src: Rootfs | undefined;
  try {
    let sources: Source[] = [];
    if (local.length > 0) {
      let root: string;
      let ignore: IgnoreMatcher | undefined;
      if (step.from !== undefined) {
        src = await mountState(ctx, await resolveCopyFrom(ctx, step.from, stageIndex, line), tmp, 'from');
        root = src.path;
      } else {
        if (options.contextDir === null) {
          throw new BuildError('E_CONTEXT', `${step.kind} failed: there is no build context (the Dockerfile was read from stdin with "-")`, {
            hint: 'pass a context directory instead of "-", or use a heredoc source or COPY --from',
          });
        }
        root = options.contextDir;
        ignore = await contextIgnore(ctx, options.contextDir);
      }
      // The selection the cache key hashed, when there is one: no second walk of the context.
      // A wildcard matching nothing is no error by itself (Docker 20.10 createCopyInstruction
      // counts the sources after expansion), as for the key.
      const selected = step.from === undefined ? ctx.cache.selectionOf(root, local, step.kind) : undefined;
      sources = selected !== undefined ? await selected : await selectSources(root, local, { allowEmptyWildcard: true, instruction: step.kind, ...(ignore ? { ignore } : {}), ...(step.from !== undefined ? { from: step.from } : {}), ...(signal ? { signal } : {}) });
    }
    if (sources.length + step.heredocs.length + urls.length === 0) {
      throw new ContextError('E_NO_SOURCE_FILES', `${step.kind} failed: no source files were specified`, {
        hint: `no file in the ${step.from === undefined ? 'build context' : `image of --from=${step.from}`} matches ${local.join(' ')} (or all matches are in .dockerignore)`,
      });
    }
    // the context's stat index: the digests the key just computed are not read again
    const statIndex = step.from === undefined && options.contextDir !== null ? await ctx.cache.statIndex() : undefined;
    let context: DockerHashContext | undefined;
    if (statIndex !== undefined && step.from === undefined && options.contextDir !== null) {
      context = { root: options.contextDir, index: statIndex, ignore: await contextIgnore(ctx, options.contextDir), ...(signal ? { signal } : {}) };
    } else if (src !== undefined) {
      context = { root: src.path, index: StatIndex.inMemory(), kind: 'rootfs', ...(signal ? { signal } : {}) };
    }
    const dest = await mountState(ctx, state, tmp, 'rootfs');
    const reuse = reuseOf(ctx, state, step, prior, statIndex, dest.upperdir);
    let urlHashes: string[] = [];
    let wholeSeconds: string[] = [];
    try {
      const owner = step.chown !== undefined && step.chown !== '' ? await chownOwner(dest.path, step.chown) : undefined;
      const mode = step.chmod !== undefined && step.chmod !== '' ? chmodMode(step.chmod) : undefined;
      const workdir = state.image.config.WorkingDir || '/';
      const count = sources.length + step.heredocs.length + urls.length;
      // Docker 20.10 (createCopyInstruction): several sources need a dest ending in "/", even ".".
      if (count > 1 && !step.dest.endsWith('/')) {
        throw new BuildError('E_STEP', `When using ${step.kind} with more than one source file, the destination must be a directory and end with a /`, {
          hint: `write the destination as "${step.dest}/"`,
        });
      }
      // Docker 20.10 (performCopy): --from without --chown keeps each entry's owner
      const preserveOwnership = step.from !== undefined && owner === undefined;
      const common = { rootfs: dest.path, dest: step.dest, workdir, destIsDir: count > 1, preserveOwnership, ...(owner ? { chown: owner } : {}), ...(mode !== undefined ? { chmod: mode } : {}), ...(signal ? { signal } : {}) };
      if (step.kind === 'ADD') {
        ({ urlHashes } = await addInto({ ...common, sources, urls, ...(step.checksum !== undefined ? { checksum: step.checksum } : {}), tmpDir: tmp }));
      } else if (sources.length > 0) {
        await copyInto({ ...common, sources, ...(reuse ? { reuse } : {}) });
      }
      for (const h of step.heredocs) {
        await writeHeredoc(dest.path, step.dest, h.content, { name: h.name, workdir, ...(owner ? { chown: owner } : {}), ...(mode !== undefined ? { chmod: mode } : {}) });
      }
      wholeSeconds = await destinationPrefixes(dest.path, step.dest, workdir);
    } finally {
      await dest.unmount();
    }
    /** The sources' hash for the history (Docker's `file:…`/`dir:…`), made while the links are. */
    const historyHash = async (): Promise<string> => {
      let order: SourceSlot[] | undefined;
      if (urls.length > 0 && sources.length > 0 && src === undefined && options.contextDir !== null) {
        // which selected sources each local pattern gave (a wildcard may give none or several)
        const ignore = await contextIgnore(ctx, options.contextDir);
        order = [];
        for (const s of step.sources) {
          order.push(isUrl(s) ? 'url' : (await selectSources(options.contextDir, [s], { allowEmptyWildcard: true, instruction: step.kind, ...(ignore ? { ignore } : {}), ...(signal ? { signal } : {}) })).length);
        }
      }
      return sourceHash(sources, step.heredocs, urlHashes, signal, statIndex, context, order);
    };
    // the links are made on the thread pool (where the addon is built) while the main thread hashes
    const linking = reuse !== undefined && reuse.deferred.size > 0 ? linkReused(reuse, signal) : undefined;
    // handled at once: a failure is thrown where it is awaited below, not first reported as unhandled
    linking?.catch(() => undefined);
    const [linked, hash] = await Promise.all([linking, historyHash()]).catch(async (err: unknown) => {
      // nothing is removed (finally, below) under links still being made
      await linking?.catch(() => undefined);
      throw err;
    });
    const chownComment = step.chown !== undefined && step.chown !== '' ? `--chown=${step.chown}` : '';
    // Docker's format string is "%s %s%s in %s " (no space after --chown=…, a trailing space).
    // with the stage's SHELL in front, as for every other `#(nop)` entry
    const createdBy = nopCreatedBy1(state.image.config, `${step.kind} ${chownComment}${hash} in ${step.dest} `);
    const upper = dest.upperdir;
    if ((await readdir(upper)).length === 0) return addHistory(ctx, state, createdBy, true);
    // COPY writes no xattrs (as Docker's): the layer writer need not list each file's; ADD extracts
    // archives with theirs, and COPY --from without --chown keeps file capabilities (copyCapability)
    const noFileXattrs = step.kind === 'COPY' && (step.from === undefined || (step.chown !== undefined && step.chown !== ''));
    // A rebuilt COPY/ADD mostly writes the tar it wrote before: the gzip blocks that did not change
    // are taken from the earlier blob instead of compressed again (same bytes; gzip-blocks.ts).
    const earlier = prior?.layers.length === 1 ? prior.layers[0]!.descriptor.digest : undefined;
    const layer = await writeLayer(store, upper, {
      kind: 'upper',
      noFileXattrs,
      indexBlocks: true,
      ...(earlier !== undefined ? { reuseBlocksOf: earlier } : {}),
      // the links to the earlier snapshot's files: stat'ed already, not stat'ed again
      ...(linked !== undefined && linked.size > 0 ? { knownStats: linked } : {}),
      ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
      ...(signal ? { signal } : {}),
    });
    const withLayer = addLayer(state, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, layer.diffID);
    // the upper dir is this layer's snapshot already: keep it instead of unpacking the tar again
    await store.adoptSnapshot(withLayer.image.rootfs.diff_ids, upper, { wholeSeconds, ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}), ...(signal ? { signal } : {}) });
    return addHistory(ctx, withLayer, createdBy, false);
  } finally {
    if (src) await src.unmount();
    await rm(tmp, { recursive: true, force: true });
  }
}
