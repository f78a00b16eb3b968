/**
 * `export`: an image's flattened root filesystem as one tar, as `docker export` gives it:
 * layers applied in order (last wins), whiteouts applied and none left, hard links kept.
 */
import { chmod } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer } from './apply.js';
import { hashing } from './digest.js';
import { DigestMismatchError } from './errors.js';
import { layerTarStream } from './layer-tar.js';
import type { Store } from './store.js';
import type { Cancellable } from './types.js';

/**
 * Writes the flattened rootfs of image `ref` to `out` as a deterministic tar and ends `out`.
 * The layers are unpacked into a private directory under the store's `tmp/` (removed after);
 * every layer blob is checked against its digest on the way.
 * @throws ImageNotFoundError, DigestMismatchError, CorruptLayerError, UnsafePathError.
 */
export async function exportImage(store: Store, ref: string, out: Writable, opts: Cancellable = {}): Promise<void> {
  const image = await store.resolveImage(ref);
  const dir = await store.makeTempDir('export');
  const signal = opts.signal ? { signal: opts.signal } : {};
  try {
    await chmod(dir, 0o755);
    for (const layer of image.manifest.layers) {
      const h = hashing();
      const src = store.openBlob(layer.digest);
      src.on('error', (e) => h.destroy(e));
      await applyLayer(src.pipe(h), dir, { format: 'plain', ...signal });
      if (h.digest() !== layer.digest) throw new DigestMismatchError({ expected: layer.digest, actual: h.digest(), what: 'layer blob' });
    }
    await pipeline(layerTarStream(dir, { kind: 'rootfs', ...signal }), out, signal);
  } finally {
    await store.removeTree(dir);
  }
}
