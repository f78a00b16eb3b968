/**
 * A layer's content size, as Docker reports image and layer sizes (`docker images` SIZE,
 * `image inspect` Size/VirtualSize, `history` SIZE).
 *
 * Docker 20.10 (overlay2) records for each layer the size of its unpacked diff directory:
 * `layerStore.applyTar` keeps what `ApplyDiff` returns, which is `directory.Size` of the diff dir —
 * the sum of `lstat` sizes of every entry that is not a directory, each inode once (so a hard
 * link counts once, a symlink counts the length of its target, whiteouts and devices count 0).
 * An image's size is the sum over its layers (`roLayer.Size`). The same number follows from the
 * layer tar alone: regular file sizes plus symlink target lengths (link entries are 0).
 *
 * The store records it per diffID in a private side file, `layer-sizes/<diffID hex>` (decimal),
 * when `writeLayer` makes a layer, and when `load` and `pull` check a layer's diffID (counted in
 * the same pass by `ContentSizeScanner`, layer-size-scan.ts). A layer without a record (a zstd
 * layer from `load`, one whose tar was not whole, one from an older version) gets it computed from
 * its blob on first use and recorded then. The file is a cache: a missing or unreadable one
 * is computed again, so it is written without fsync, and no digest depends on it.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decompressed } from './apply.js';
import { hexOf } from './digest.js';
import { tempName } from './fsutil.js';
import type { Store } from './store.js';
import { readTar, type TarHeader } from './tar.js';
import type { Cancellable, DiffID, Digest } from './types.js';

/** Name of the store-private directory of recorded layer content sizes. */
export const LAYER_SIZES_DIR = 'layer-sizes';

/** The content size one tar entry adds: a regular file's size, a symlink's target length, else 0. */
export function entryContentSize(h: Pick<TarHeader, 'type' | 'size' | 'linkname'>): number {
  if (h.type === 'file') return h.size;
  if (h.type === 'symlink') return Buffer.byteLength(h.linkname ?? '');
  return 0;
}

/** Adds up {@link entryContentSize} over the headers of one layer tar. */
export class ContentSizeCounter {
  total = 0;
  add(h: Pick<TarHeader, 'type' | 'size' | 'linkname'>): void {
    this.total += entryContentSize(h);
  }
}

function sizePath(store: Store, diffID: DiffID): string {
  return join(store.root, LAYER_SIZES_DIR, hexOf(diffID));
}

/** The recorded content size of a layer, or undefined when none (or a damaged one) is recorded. */
export async function recordedContentSize(store: Store, diffID: DiffID): Promise<number | undefined> {
  let text: string;
  try {
    // synchronous: a few bytes, read for every layer by `images` (a thread-pool hop each costs more)
    text = readFileSync(sizePath(store, diffID), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return /^\d+\n$/.test(text) ? Number(text.trim()) : undefined;
}

/**
 * Records the content size of the layer `diffID` (temp file in the store's `tmp/`, then rename;
 * two writers write the same bytes).
 */
export async function recordContentSize(store: Store, diffID: DiffID, size: number): Promise<void> {
  const path = sizePath(store, diffID);
  await mkdir(join(store.root, LAYER_SIZES_DIR), { recursive: true });
  const tmp = tempName(store.tmpDir, 'layer-size');
  try {
    await writeFile(tmp, `${size}\n`, { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * The content size of the stored layer blob `digest` (gzip, zstd or plain tar), read through.
 * @throws BlobNotFoundError, CorruptLayerError
 */
export async function countBlobContentSize(store: Store, digest: Digest, opts: Cancellable = {}): Promise<number> {
  const counter = new ContentSizeCounter();
  const src = store.openBlob(digest);
  try {
    for await (const entry of readTar(await decompressed(src, opts.signal))) {
      opts.signal?.throwIfAborted();
      counter.add(entry.header);
    }
  } finally {
    src.destroy();
  }
  return counter.total;
}

/**
 * The content size of one layer, as Docker reports it (see the module comment): the recorded one,
 * or computed from the blob and recorded.
 * @throws BlobNotFoundError, CorruptLayerError when it has to be computed and the blob is missing or damaged.
 */
export async function layerContentSize(store: Store, layer: { digest: Digest; diffID: DiffID }, opts: Cancellable = {}): Promise<number> {
  const known = await recordedContentSize(store, layer.diffID);
  if (known !== undefined) return known;
  const size = await countBlobContentSize(store, layer.digest, opts);
  await recordContentSize(store, layer.diffID, size);
  return size;
}
