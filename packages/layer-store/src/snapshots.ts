/**
 * Snapshots: each layer unpacked once (overlay format) into `snapshots/<chainID hex>/`, for use
 * as overlay lower dirs. Staged under `tmp/` and renamed into place, so concurrent builders on one
 * store never see a half-unpacked snapshot; the loser of a race discards its copy.
 *
 * Durability: nothing is fsynced per entry (see apply.ts) — a crash during unpacking leaves only a
 * staging directory under tmp/, never a snapshot. Not covered: a power loss shortly after the
 * rename can leave a snapshot whose file data had not reached the disk yet; one `syncfs` of the
 * store's filesystem before the rename would close that (Node has no binding; `sync -f DIR` is one
 * process per snapshot) at the price of flushing everything else dirty on that filesystem.
 */
import { createReadStream, lstatSync, lutimesSync, openSync, readdirSync } from 'node:fs';
import { chmod, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer } from './apply.js';
import { TimeSlices } from './slices.js';
import { chainIDsOf, hashing } from './digest.js';
import { BlobNotFoundError, DigestMismatchError, StoreError } from './errors.js';
import type { Store } from './store.js';
import type { Cancellable, DiffID, Digest } from './types.js';

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * A blob's bytes in 1 MiB chunks (not the 64 KiB of `Store.openBlob`): the applier yields to the
 * event loop only every few milliseconds, and each chunk read costs one event-loop turn, so small
 * chunks would starve it. The caller consumes or destroys the stream.
 * @throws BlobNotFoundError (synchronously) when the blob is missing.
 */
export function openLayerBlob(store: Store, digest: Digest): Readable {
  let fd: number;
  try {
    fd = openSync(store.blobPath(digest), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(digest, { cause: err });
    throw new StoreError(`reading blob ${digest}`, { cause: err });
  }
  return createReadStream('', { fd, highWaterMark: 1024 * 1024 });
}

/**
 * Makes sure every layer has its snapshot and returns the directories bottom-first.
 * The compressed blob's digest is verified while unpacking; a mismatch throws DigestMismatchError
 * and leaves no snapshot.
 */
export async function prepareSnapshots(
  store: Store,
  layers: ReadonlyArray<{ digest: Digest; diffID: DiffID }>,
  opts: Cancellable = {},
): Promise<string[]> {
  const chains = chainIDsOf(layers.map((l) => l.diffID));
  const dirs: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const dir = store.snapshotDirFor(chains[i]!);
    dirs.push(dir);
    if (await exists(dir)) continue;
    const staging = await store.makeTempDir('snapshot');
    try {
      await chmod(staging, 0o755);
      const h = hashing();
      const src = openLayerBlob(store, layer.digest);
      src.on('error', (e) => h.destroy(e));
      await applyLayer(src.pipe(h), staging, { format: 'overlay', ...(opts.signal ? { signal: opts.signal } : {}) });
      if (h.digest() !== layer.digest) throw new DigestMismatchError({ expected: layer.digest, actual: h.digest(), what: 'layer blob' });
      try {
        await rename(staging, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw new StoreError(`installing snapshot ${dir}`, { cause: err });
      }
    } finally {
      await store.removeTree(staging);
    }
  }
  return dirs;
}

/**
 * Installs `dir` — an overlay upper dir whose tar just became the top layer of `diffIDs` — as
 * that chain's snapshot, by renaming it: a layer built here is never unpacked again (Docker's
 * overlay2 likewise keeps a step's diff dir as the next step's lower dir). The upper dir already
 * holds the overlay form of the layer (0/0 whiteout devices, opaque xattrs). With
 * `sourceDateEpoch`, mtimes newer than it are clamped first, so the snapshot holds what
 * unpacking the layer's tar would give and later steps see the same files on every machine.
 *
 * `wholeSeconds` names the entries (paths relative to `dir`) whose mtime the step set to "now":
 * they are cut to whole seconds, as the tar holds them and as Docker 20.10's next step sees them
 * (its commit unpacks the tar). Only those: entries copied with a source mtime hold whole seconds
 * already, and a pass over every file would cost a COPY of many files dearly. `'all'`: every
 * entry, atime = mtime (a RUN's upper dir, whatever its command wrote), in the same single pass
 * as the `sourceDateEpoch` clamp.
 *
 * @returns false, leaving `dir` alone, when the chain already has a snapshot.
 * `dir` must be on the store's file system (under `tmp/`) and no longer mounted.
 */
export async function adoptSnapshot(
  store: Store,
  diffIDs: readonly DiffID[],
  dir: string,
  opts: AdoptOptions = {},
): Promise<boolean> {
  const chain = chainIDsOf(diffIDs).at(-1);
  if (chain === undefined) return false;
  const target = store.snapshotDirFor(chain);
  if (await exists(target)) return false;
  const all = opts.wholeSeconds === 'all';
  if (opts.wholeSeconds !== undefined && opts.wholeSeconds !== 'all') truncateMtimes(dir, opts.wholeSeconds);
  if (all || opts.sourceDateEpoch !== undefined) await settleTimes(dir, all, opts.sourceDateEpoch, opts.signal);
  await chmod(dir, 0o755);
  try {
    await rename(dir, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // another builder installed the same chain first: theirs is as good as ours
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw new StoreError(`installing snapshot ${target}`, { cause: err });
  }
}

/** Options of {@link adoptSnapshot}. */
export interface AdoptOptions extends Cancellable {
  /** Clamp mtimes newer than this (Unix seconds), as the layer tar did. */
  sourceDateEpoch?: number;
  /** Entries (relative to the dir; missing ones skipped) whose mtime is cut to whole seconds, or `'all'` of them. */
  wholeSeconds?: readonly string[] | 'all';
}

/** Cuts the mtime of each of `paths` under `dir` (not following symlinks) to whole seconds; the atime stays. */
function truncateMtimes(dir: string, paths: readonly string[]): void {
  for (const rel of new Set(paths)) {
    const p = join(dir, rel);
    const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
    if (st === undefined || st.mtimeNs % 1_000_000_000n === 0n) continue;
    lutimesSync(p, Number(st.atimeNs) / 1e9, Number(st.mtimeNs / 1_000_000_000n));
  }
}

const NS_PER_S = 1_000_000_000n;

/**
 * One pass over every entry below `dir`: an mtime newer than `epoch` becomes `epoch` (atime too),
 * as the layer tar writer clamps them; with `whole`, any other sub-second mtime is cut to its
 * second (atime = mtime; toward zero, as the tar's header takes `mtimeMs / 1000n`), and so is
 * `dir`'s own. Synchronous calls in time slices (an async call per entry costs a thread-pool
 * round trip each).
 */
async function settleTimes(dir: string, whole: boolean, epoch: number | undefined, signal?: AbortSignal): Promise<void> {
  const slices = new TimeSlices(signal);
  const limit = epoch === undefined ? undefined : BigInt(epoch) * NS_PER_S;
  const settle = (p: string, clamp: boolean): void => {
    const ns = lstatSync(p, { bigint: true }).mtimeNs;
    if (clamp && limit !== undefined && ns > limit) {
      lutimesSync(p, epoch!, epoch!);
    } else if (whole && ns % NS_PER_S !== 0n) {
      const s = Number(ns / NS_PER_S);
      lutimesSync(p, s, s);
    }
  };
  if (whole) settle(dir, false);
  const pending = [dir];
  for (let d = pending.pop(); d !== undefined; d = pending.pop()) {
    signal?.throwIfAborted();
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (slices.due()) await slices.yield();
      const p = join(d, e.name);
      if (e.isDirectory()) pending.push(p);
      settle(p, true);
    }
  }
}
