/**
 * `export`: an image's flattened root filesystem as one tar, as `docker export` gives it:
 * layers applied in order (last wins), whiteouts applied and none left, hard links kept.
 *
 * Fast path (no unpacking): an image of one layer whose tar is already in the form that
 * unpacking and re-walking it would give — entries strictly in the walk order of `layerTarStream`
 * (depth-first, children in byte order, parents first), every parent an earlier directory entry,
 * no whiteouts, hard links only to earlier non-directory entries — is streamed straight through,
 * each header re-encoded as the walk would encode it (symlinks 0777, only kept xattrs, a link
 * carries its target's metadata). Layers written by this store (import, build) have that form.
 * A first pass over the headers decides; otherwise (several layers, or any other tar) the layers
 * are unpacked into a temp dir and that tree is tarred.
 *
 * First choice, before both: when every layer of the image has its snapshot in the store (an
 * image built here or used as a base), the snapshots are walked as one merged tree (`mergedTarStream`),
 * nothing unpacked and no blob read; the tar is the one unpacking would give.
 */
import { statSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer, decompressed } from './apply.js';
import { chainIDsOf, hashing } from './digest.js';
import { CorruptLayerError, DigestMismatchError } from './errors.js';
import { layerTarStream, mergedTarStream } from './layer-tar.js';
import { openLayerBlob } from './snapshots.js';
import { compareUtf8 } from './order.js';
import type { Store } from './store.js';
import { encodeHeader, padding, readTar, trailer, type TarHeader, type TarEntry } from './tar.js';
import type { Cancellable, Digest } from './types.js';
import { whiteoutMeaning } from './whiteout.js';

/**
 * Writes the flattened rootfs of image `ref` to `out` as a deterministic tar and ends `out`.
 * Every layer blob is checked against its digest on the way.
 * @throws ImageNotFoundError, DigestMismatchError, CorruptLayerError, UnsafePathError.
 */
export async function exportImage(store: Store, ref: string, out: Writable, opts: Cancellable = {}): Promise<void> {
  const image = await store.resolveImage(ref);
  const signal = opts.signal ? { signal: opts.signal } : {};
  const layers = image.manifest.layers;
  // An image with the snapshots of all its layers (built here, or used as a base): their merged
  // view, as an overlay mount of them shows it, is read straight from them.
  const snapshots = chainIDsOf(image.config.rootfs.diff_ids).map((c) => store.snapshotDirFor(c));
  if (snapshots.length > 0 && snapshots.every((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory() === true)) {
    await pipeline(mergedTarStream(snapshots.reverse(), opts), out, signal);
    return;
  }
  if (layers.length === 1 && (await isWalkOrdered(store, layers[0]!.digest, opts.signal))) {
    await pipeline(Readable.from(walkOrderedTar(store, layers[0]!.digest, opts.signal)), out, signal);
    return;
  }
  const dir = await store.makeTempDir('export');
  try {
    await chmod(dir, 0o755);
    for (const layer of layers) {
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

/** The entries of a layer blob, its digest checked at the end (throws DigestMismatchError). */
async function* layerEntries(store: Store, digest: Digest, signal?: AbortSignal): AsyncGenerator<TarEntry> {
  const h = hashing();
  const src = openLayerBlob(store, digest);
  src.on('error', (e) => h.destroy(e));
  const input = await decompressed(src.pipe(h), signal);
  try {
    yield* readTar(input);
  } catch (err) {
    if (err instanceof CorruptLayerError) throw err;
    throw new CorruptLayerError('layer compression is corrupt or truncated', { cause: err });
  } finally {
    src.destroy();
    input.destroy();
  }
  if (h.digest() !== digest) throw new DigestMismatchError({ expected: digest, actual: h.digest(), what: 'layer blob' });
}

/** `a` before `b` in the walk order: component by component in byte order, a parent before its children. */
function walkOrderBefore(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareUtf8(a[i]!, b[i]!);
    if (c !== 0) return c < 0;
  }
  return a.length < b.length;
}

/** Normalised name components, or undefined for a name unpacking would treat specially. */
function partsOf(name: string): string[] | undefined {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  return parts.includes('..') ? undefined : parts;
}

/**
 * Checks entry by entry that the layer is in walk form (see the module comment). Keeps state for
 * the order, the directories and the link targets seen.
 */
class WalkFormCheck {
  #prev: string[] = [];
  #dirs = new Set<string>(['']);
  #targets = new Map<string, TarHeader>();
  /** The header the walk would give for this entry, null to skip it (the root), undefined when not in walk form. */
  next(h: TarHeader): TarHeader | null | undefined {
    const parts = partsOf(h.name);
    if (parts === undefined) return undefined;
    if (parts.length === 0) return h.type === 'directory' ? null : undefined;
    const name = parts.join('/');
    if (whiteoutMeaning(name).kind !== 'none' || h.mtime < 0) return undefined;
    if (!walkOrderBefore(this.#prev, parts) || !this.#dirs.has(parts.slice(0, -1).join('/'))) return undefined;
    this.#prev = parts;
    const base = { name, uid: h.uid, gid: h.gid, mtime: h.mtime, size: 0 };
    // export keeps file capabilities only, as docker export (pkg/archive) does
    const cap = h.xattrs?.get('security.capability');
    const xattrs = cap !== undefined ? new Map([['security.capability', cap]]) : undefined;
    const withX = (x: TarHeader): TarHeader => (xattrs && xattrs.size > 0 ? { ...x, xattrs } : x);
    switch (h.type) {
      case 'directory':
        this.#dirs.add(name);
        return withX({ ...base, type: 'directory', mode: h.mode & 0o7777 });
      case 'symlink':
        return { ...base, type: 'symlink', mode: 0o777, linkname: h.linkname ?? '' };
      case 'link': {
        const target = partsOf(h.linkname ?? '')?.join('/');
        const t = target === undefined ? undefined : this.#targets.get(target);
        // a link whose own metadata differs gives the shared inode its metadata when unpacked
        // (see apply.ts): not streamable, the target's header went out already
        if (t === undefined || (h.mode & 0o7777) !== t.mode || h.uid !== t.uid || h.gid !== t.gid || h.mtime !== t.mtime || [...(xattrs ?? [])].some(([k, v]) => !t.xattrs?.get(k)?.equals(v))) return undefined;
        return { name, type: 'link', linkname: t.name, mode: t.mode, uid: t.uid, gid: t.gid, mtime: t.mtime, size: 0 };
      }
      case 'file':
      case 'char':
      case 'block':
      case 'fifo': {
        const out = withX({ ...base, type: h.type, mode: h.mode & 0o7777, size: h.type === 'file' ? h.size : 0 });
        if (h.type === 'char' || h.type === 'block') Object.assign(out, { devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 });
        this.#targets.set(name, out);
        return out;
      }
    }
  }
}

/** First pass: is the layer in walk form? (Reads and hashes the whole blob; bodies are skipped.) */
async function isWalkOrdered(store: Store, digest: Digest, signal?: AbortSignal): Promise<boolean> {
  const check = new WalkFormCheck();
  let ok = true;
  for await (const { header } of layerEntries(store, digest, signal)) {
    signal?.throwIfAborted();
    if (ok && check.next(header) === undefined) ok = false;
  }
  return ok;
}

/** Second pass: the layer re-encoded as the walk would write it, then the trailer. */
async function* walkOrderedTar(store: Store, digest: Digest, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const check = new WalkFormCheck();
  for await (const { header, body } of layerEntries(store, digest, signal)) {
    signal?.throwIfAborted();
    const h = check.next(header);
    // The blob was read once already; a different answer now means it changed underneath.
    if (h === undefined) throw new CorruptLayerError(`layer ${digest} changed while it was exported`);
    if (h === null) continue;
    yield encodeHeader(h);
    if (h.type !== 'file' || h.size === 0) continue;
    for await (const chunk of body) yield chunk;
    const pad = padding(h.size);
    if (pad.length > 0) yield pad;
  }
  yield trailer();
}
