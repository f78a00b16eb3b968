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
import { chmod, rename, stat } from 'node:fs/promises';
import { applyLayer } from './apply.js';
import { chainIDsOf, hashing } from './digest.js';
import { DigestMismatchError, StoreError } from './errors.js';
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
      const src = store.openBlob(layer.digest);
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
