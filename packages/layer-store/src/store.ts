/**
 * The content store: an OCI image layout directory (so skopeo/umoci read it as it is) plus
 * private state beside it (`snapshots/`, `cache/`, `tmp/`, a lock file).
 */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashing, hexOf, isDigest, parseDigest, sha256Of } from './digest.js';
import {
  AmbiguousImageError,
  BlobNotFoundError,
  DigestMismatchError,
  ImageNotFoundError,
  StoreError,
} from './errors.js';
import { fileSink, fsyncDir, OWNER_TAG, tempName, writeFileAtomic } from './fsutil.js';
import { canonicalJSON, shapeForMediaType } from './json.js';
import { acquireLock, type HeldLock } from './lock.js';
import { adoptSnapshot, prepareSnapshots, type AdoptOptions } from './snapshots.js';
import { namesLegacyReference, parseReference, referenceProblem, ReferenceError, storedName, type Reference } from './reference.js';
import {
  MediaTypes,
  type Cancellable,
  type ChainID,
  type Descriptor,
  type DiffID,
  type Digest,
  type ImageConfig,
  type Index,
  type Layer,
  type Manifest,
} from './types.js';

/** The annotation OCI layouts use for tags. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Options of `writeBlob`. */
export interface WriteBlobOptions extends Cancellable {
  /** The digest the bytes must have; a mismatch throws DigestMismatchError and stores nothing. */
  expected?: Digest;
  /** The size the bytes must have. */
  expectedSize?: number;
}

/** What `resolveImage` finds. */
export interface ResolvedImage {
  /** Image ID: the config digest, as Docker shows it. */
  id: Digest;
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** Full references (e.g. `docker.io/library/hello:latest`) that point at this manifest. */
  refs: string[];
}

/** One row of `listImages`. */
export interface ImageSummary {
  id: Digest;
  manifestDescriptor: Descriptor;
  /** Full references naming this image; empty for an untagged (dangling) image. */
  refs: string[];
  created: string | undefined;
  /** Sum of the compressed layer sizes plus config and manifest. */
  size: number;
}

/** Input of `commitImage`. */
export interface CommitImageInput {
  config: ImageConfig;
  /** Layers bottom-first; must already be in the store. */
  layers: ReadonlyArray<Layer | Descriptor>;
  /** References to tag (normalised like Docker); may be empty. */
  tags: readonly string[];
  /** Manifest annotations. */
  annotations?: Record<string, string>;
}

const LOCK_FILE = 'tsbuild.lock';
const CONTENT_LOCK_FILE = 'gc.lock';

/**
 * A store directory. Open with `Store.open(root)`; every method is safe to call concurrently,
 * from this and other processes.
 */
export class Store {
  /** Absolute root directory. */
  readonly root: string;
  readonly blobsDir: string;
  readonly tmpDir: string;
  readonly snapshotsDir: string;
  readonly cacheDir: string;
  readonly lockPath: string;
  /** The content lock: shared by running builds (`lease`), exclusive for garbage collection. */
  readonly contentLockPath: string;
  #lease: { count: number; held: Promise<HeldLock> } | undefined;

  private constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'tmp');
    this.snapshotsDir = join(root, 'snapshots');
    this.cacheDir = join(root, 'cache');
    this.lockPath = join(root, LOCK_FILE);
    this.contentLockPath = join(root, CONTENT_LOCK_FILE);
  }

  /**
   * Opens the store at `root`, creating the OCI layout (`oci-layout`, `index.json`,
   * `blobs/sha256/`) and private directories when missing.
   * @throws StoreError when the directory cannot be created or is not a store.
   */
  static async open(root: string): Promise<Store> {
    const store = new Store(resolve(root));
    if (store.#isComplete()) return store;
    try {
      for (const d of [store.blobsDir, store.tmpDir, store.snapshotsDir, store.cacheDir]) await mkdir(d, { recursive: true });
      await store.#ensureFile('oci-layout', `${canonicalJSON({ imageLayoutVersion: '1.0.0' })}`);
      await store.#ensureFile('index.json', canonicalJSON(emptyIndex(), 'index'));
      await (await open(store.lockPath, 'a', 0o644)).close();
    } catch (err) {
      throw new StoreError(`opening store ${store.root}`, { cause: err, hint: 'check that the directory is writable (or pass --root)' });
    }
    return store;
  }

  /**
   * Whether every file and directory `open` would create is there already: six synchronous stats,
   * the common case, in place of the async creating path (a command's start-up time matters).
   */
  #isComplete(): boolean {
    const dir = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
    const file = (p: string) => statSync(p, { throwIfNoEntry: false })?.isFile() === true;
    return (
      dir(this.blobsDir) && dir(this.tmpDir) && dir(this.snapshotsDir) && dir(this.cacheDir) &&
      file(join(this.root, 'oci-layout')) && file(join(this.root, 'index.json')) && file(this.lockPath)
    );
  }

  async #ensureFile(name: string, content: string): Promise<void> {
    const path = join(this.root, name);
    try {
      await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Two processes may create it at once: both write identical bytes atomically.
      await writeFileAtomic(path, content, this.tmpDir);
    }
  }

  // ---- blobs ----

  /** Path of a blob's file (whether or not it exists). */
  blobPath(d: Digest): string {
    return join(this.blobsDir, hexOf(parseDigest(d)));
  }

  /** True when the blob is stored. */
  async hasBlob(d: Digest): Promise<boolean> {
    try {
      await stat(this.blobPath(d));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new StoreError(`checking blob ${d}`, { cause: err });
    }
  }

  /** Size in bytes of a stored blob. @throws BlobNotFoundError */
  async blobSize(d: Digest): Promise<number> {
    try {
      return (await stat(this.blobPath(d))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(d);
      throw new StoreError(`reading blob ${d}`, { cause: err });
    }
  }

  /**
   * A fresh stream of a blob's bytes; the caller consumes or destroys it. A missing blob makes the
   * stream emit BlobNotFoundError. Bytes are not re-verified here (see `readJSONBlob`).
   */
  openBlob(d: Digest): Readable {
    const src = createReadStream(this.blobPath(d));
    const out = new PassThrough();
    src.on('error', (err: NodeJS.ErrnoException) =>
      out.destroy(err.code === 'ENOENT' ? new BlobNotFoundError(d, { cause: err }) : new StoreError(`reading blob ${d}`, { cause: err })),
    );
    out.on('close', () => src.destroy());
    return src.pipe(out);
  }

  /**
   * Streams `src` into the store: hashed on the way to a temp file in `tmp/`, fsynced, renamed
   * to `blobs/sha256/<hex>`. With `expected`, a different digest (or size) throws
   * DigestMismatchError and nothing is stored. If the blob is already present, the bytes are
   * still read (and verified) but the file is not replaced.
   */
  async writeBlob(src: Readable, opts: WriteBlobOptions = {}): Promise<{ digest: Digest; size: number }> {
    const expected = opts.expected === undefined ? undefined : parseDigest(opts.expected);
    if (expected !== undefined && (await this.hasBlob(expected))) {
      const h = hashing();
      await pipeline(src, h, devNull(), opts.signal ? { signal: opts.signal } : {});
      verify(h.digest(), h.size, expected, opts.expectedSize);
      return { digest: expected, size: h.size };
    }
    const tmp = tempName(this.tmpDir, 'blob');
    const h = hashing();
    try {
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await pipeline(src, h, fileSink(fh), opts.signal ? { signal: opts.signal } : {});
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = h.digest();
      verify(digest, h.size, expected, opts.expectedSize);
      await rename(tmp, this.blobPath(digest));
      await fsyncDir(this.blobsDir);
      return { digest, size: h.size };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if (err instanceof StoreError) throw err;
      if (opts.signal?.aborted) throw err;
      throw new StoreError(`writing blob${expected ? ` ${expected}` : ''}`, { cause: err });
    }
  }

  /** Moves an already-verified temp file (under `tmp/`) into place as blob `digest`. Internal to the package. */
  async adoptBlob(tmpFile: string, digest: Digest): Promise<void> {
    await rename(tmpFile, this.blobPath(digest));
    await fsyncDir(this.blobsDir);
  }

  /** Stores a buffer as a blob. */
  async writeBufferBlob(data: Buffer, opts: WriteBlobOptions = {}): Promise<{ digest: Digest; size: number }> {
    return this.writeBlob(Readable.from([data]), opts);
  }

  /**
   * Encodes `value` with the canonical encoder (field order chosen by `mediaType`) and stores it.
   * @returns the descriptor of the stored blob.
   */
  async writeJSONBlob(value: unknown, mediaType: string): Promise<Descriptor> {
    const bytes = Buffer.from(canonicalJSON(value, shapeForMediaType(mediaType)));
    const digest = sha256Of(bytes);
    if (!(await this.hasBlob(digest))) await this.writeBufferBlob(bytes, { expected: digest });
    return { mediaType, digest, size: bytes.length };
  }

  /**
   * Reads a small JSON blob, checks its digest, parses it.
   * @throws BlobNotFoundError, DigestMismatchError, StoreError (bad JSON)
   */
  async readJSONBlob<T>(d: Digest | Descriptor): Promise<T> {
    const digest = typeof d === 'string' ? d : d.digest;
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.blobPath(digest)); // small (manifests, configs): see readIndex
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(digest, { cause: err });
      throw new StoreError(`reading blob ${digest}`, { cause: err });
    }
    const actual = sha256Of(bytes);
    if (actual !== digest) throw new DigestMismatchError({ expected: digest, actual, path: this.blobPath(digest) });
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (err) {
      throw new StoreError(`blob ${digest} is not valid JSON`, { cause: err, code: 'E_CORRUPT_BLOB' });
    }
  }

  /** A `Layer` for a layer blob already in the store. */
  layerOf(descriptor: Descriptor, diffID: DiffID): Layer {
    const store = this;
    return {
      digest: descriptor.digest,
      diffID,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      open: () => store.openBlob(descriptor.digest),
    };
  }

  // ---- index and locking ----

  /** Reads `index.json`. */
  async readIndex(): Promise<Index> {
    try {
      // synchronous: a small file, read by nearly every command (async costs a thread-pool hop)
      const idx = JSON.parse(readFileSync(join(this.root, 'index.json'), 'utf8')) as Index;
      idx.manifests ??= [];
      return idx;
    } catch (err) {
      throw new StoreError(`reading ${join(this.root, 'index.json')}`, { cause: err, code: 'E_CORRUPT_INDEX' });
    }
  }

  /**
   * Holds the store's content for a running operation (a build): a shared lock on `gc.lock`, which
   * garbage collection takes exclusively (`withContentLock`), so that nothing a running build
   * mounts, links or has just written is removed under it. One lock per Store for all holders
   * (counted); release each handle when done.
   * @throws LockError
   */
  async lease(opts: Cancellable = {}): Promise<HeldLock> {
    const lease = (this.#lease ??= { count: 0, held: acquireLock(this.contentLockPath, { ...opts, shared: true }) });
    lease.count++;
    let lock: HeldLock;
    try {
      lock = await lease.held;
    } catch (err) {
      if (--lease.count === 0 && this.#lease === lease) this.#lease = undefined;
      throw err;
    }
    let held = true;
    return {
      release: async () => {
        if (!held) return;
        held = false;
        if (--lease.count > 0) return;
        if (this.#lease === lease) this.#lease = undefined;
        await lock.release();
      },
    };
  }

  /** Runs `fn` holding a content lease (see `lease`): what it writes is not collected under it. */
  async withLease<T>(fn: () => Promise<T>, opts: Cancellable = {}): Promise<T> {
    const lease = await this.lease(opts);
    try {
      return await fn();
    } finally {
      await lease.release();
    }
  }

  /**
   * Runs `fn` with the content lock exclusive: after every running build's lease is released, and
   * with none taken meanwhile (see `lease`). `onWait` is called if it has to wait. Do not call it
   * while this process holds a lease (it would wait for itself).
   */
  async withContentLock<T>(fn: () => Promise<T>, opts: Cancellable & { onWait?: () => void } = {}): Promise<T> {
    const lock = await acquireLock(this.contentLockPath, opts);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /**
   * Runs `fn` holding the store's exclusive inter-process lock. Not re-entrant: do not call
   * `withLock`/`updateIndex` inside `fn`.
   */
  async withLock<T>(fn: () => Promise<T>, opts: Cancellable = {}): Promise<T> {
    const lock = await acquireLock(this.lockPath, opts);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /**
   * Read-modify-write of `index.json` under the exclusive lock; `fn` returns the new index (or
   * mutates and returns the one given). Written atomically.
   */
  async updateIndex(fn: (index: Index) => Index | Promise<Index>, opts: Cancellable = {}): Promise<Index> {
    return this.withLock(async () => {
      const next = await fn(await this.readIndex());
      await writeFileAtomic(join(this.root, 'index.json'), canonicalJSON(next, 'index'), this.tmpDir);
      return next;
    }, opts);
  }

  /**
   * Creates a fresh directory under `tmp/` (same filesystem as the store); the caller removes it.
   * Its name carries this process's owner tag, so that the next process removes it if this one is
   * killed before it can (see temps.ts).
   */
  async makeTempDir(prefix: string): Promise<string> {
    return mkdtemp(join(this.tmpDir, `${prefix.replace(/[^A-Za-z0-9._-]/g, '_')}-${OWNER_TAG}-`));
  }

  // ---- images ----

  /**
   * Writes the image config and an OCI manifest, and references the manifest from `index.json`:
   * one entry per tag (annotation `org.opencontainers.image.ref.name` = full reference), or one
   * entry without annotation when `tags` is empty, so the image stays referenced.
   * A tag that pointed at another image moves; that image keeps an untagged entry (Docker's
   * dangling `<none>` image) if nothing else names it.
   * @returns the image ID (config digest, like Docker) and the manifest descriptor.
   * @throws ReferenceError for a bad tag; BlobNotFoundError when a layer is not in the store.
   */
  async commitImage(input: CommitImageInput): Promise<{ id: Digest; manifest: Descriptor }> {
    const refs = input.tags.map((t) => parseReference(t));
    const layers: Descriptor[] = [];
    for (const l of input.layers) {
      if (!(await this.hasBlob(l.digest))) throw new BlobNotFoundError(l.digest, { hint: 'write the layer with writeLayer before committing' });
      layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
    }
    const configDesc = await this.writeJSONBlob(input.config, MediaTypes.ociConfig);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: configDesc,
      layers,
      ...(input.annotations && Object.keys(input.annotations).length > 0 ? { annotations: input.annotations } : {}),
    };
    const manifestDesc = await this.writeJSONBlob(manifest, MediaTypes.ociManifest);
    const apply = (index: Index): Index => (refs.length === 0 ? addUntagged(index, manifestDesc) : refs.reduce((i, r) => setTag(i, r, manifestDesc), index));
    // A rebuild that changed nothing finds its tags already in place: nothing to write, so no lock
    // (readers need none: index.json is replaced by rename). Linearises at this read.
    const current = await this.readIndex();
    if (apply(current) !== current) await this.updateIndex(apply);
    return { id: configDesc.digest, manifest: manifestDesc };
  }

  /**
   * Points `ref` at a manifest (already in the store). Moves the tag if it named another image.
   * @throws ReferenceError
   */
  async tag(ref: string, manifestDescriptor: Descriptor): Promise<void> {
    const r = parseReference(ref);
    if (!(await this.hasBlob(manifestDescriptor.digest))) throw new BlobNotFoundError(manifestDescriptor.digest);
    await this.updateIndex((index) => setTag(index, r, manifestDescriptor));
  }

  /**
   * Removes the tag `ref` from the index.
   * @returns the descriptor it pointed at, and whether any other index entry still references it.
   * @throws ImageNotFoundError when the tag does not exist.
   */
  async untag(ref: string): Promise<{ removed: Descriptor; stillReferenced: boolean }> {
    // a stored name the parser now refuses (see storedName) is removed by its exact text
    const full = storedName(ref).legacy ? ref : parseReference(ref).full();
    let result: { removed: Descriptor; stillReferenced: boolean } | undefined;
    await this.updateIndex((index) => {
      const i = index.manifests.findIndex((m) => m.annotations?.[REF_NAME_ANNOTATION] === full);
      if (i < 0) throw new ImageNotFoundError(ref);
      const removed = index.manifests[i]!;
      const manifests = index.manifests.filter((_, j) => j !== i);
      result = { removed, stillReferenced: manifests.some((m) => m.digest === removed.digest) };
      return { ...index, manifests };
    });
    return result!;
  }

  /**
   * Removes every index entry of a manifest (tagged or not). The blobs stay until garbage
   * collection. @returns the references that were removed.
   */
  async removeImage(manifestDigest: Digest): Promise<string[]> {
    const removed: string[] = [];
    await this.updateIndex((index) => {
      for (const m of index.manifests) {
        if (m.digest === manifestDigest && m.annotations?.[REF_NAME_ANNOTATION]) removed.push(m.annotations[REF_NAME_ANNOTATION]);
      }
      return { ...index, manifests: index.manifests.filter((m) => m.digest !== manifestDigest) };
    });
    return removed;
  }

  /** Every image referenced from `index.json` (one row per manifest), in index order. */
  async listImages(): Promise<ImageSummary[]> {
    const index = await this.readIndex();
    const byDigest = new Map<string, ImageSummary>();
    for (const m of index.manifests) {
      const ref = m.annotations?.[REF_NAME_ANNOTATION];
      let row = byDigest.get(m.digest);
      if (!row) {
        const manifest = await this.readJSONBlob<Manifest>(m.digest);
        const config = await this.readJSONBlob<ImageConfig>(manifest.config.digest);
        row = {
          id: manifest.config.digest,
          manifestDescriptor: stripAnnotations(m),
          refs: [],
          created: config.created,
          size: manifest.layers.reduce((s, l) => s + l.size, 0),
        };
        byDigest.set(m.digest, row);
      }
      if (ref && !row.refs.includes(ref)) row.refs.push(ref);
    }
    return [...byDigest.values()];
  }

  /**
   * Finds an image the way `docker inspect` does: a reference (`hello`, `hello:1`,
   * `name@sha256:<manifest digest>`), an image ID `sha256:<config digest>` (or a manifest digest),
   * or a unique hex prefix of an image ID (with or without `sha256:`), or a name an older version
   * stored that `parseReference` now refuses (see `storedName`).
   * @throws ImageNotFoundError (its `cause` a ReferenceError when `refOrId` is no valid reference
   * or ID, e.g. uppercase), AmbiguousImageError
   */
  async resolveImage(refOrId: string): Promise<ResolvedImage> {
    const index = await this.readIndex();
    const found = await this.#findManifest(index, refOrId);
    if (!found) throw new ImageNotFoundError(refOrId, { cause: referenceProblem(refOrId) });
    return this.#load(index, found);
  }

  /**
   * {@link resolveImage}, or undefined where it finds no image (an invalid name included).
   * @throws AmbiguousImageError, and what reading the store throws
   */
  async findImage(refOrId: string): Promise<ResolvedImage | undefined> {
    try {
      return await this.resolveImage(refOrId);
    } catch (err) {
      if (err instanceof ImageNotFoundError) return undefined;
      throw err;
    }
  }

  async #findManifest(index: Index, input: string): Promise<Descriptor | undefined> {
    // 1. a full image ID or manifest digest
    if (isDigest(input)) {
      for (const m of index.manifests) if (m.digest === input) return m;
      for (const m of index.manifests) if ((await this.#configDigestOf(m)) === input) return m;
      return undefined;
    }
    // 2. a reference
    let ref: Reference | undefined;
    try {
      ref = parseReference(input);
    } catch (err) {
      if (!(err instanceof ReferenceError)) throw err;
      // a name an older version stored that the parser now refuses, named as it is stored or shown
      const legacy = index.manifests.find((m) => {
        const stored = m.annotations?.[REF_NAME_ANNOTATION];
        return stored !== undefined && namesLegacyReference(stored, input);
      });
      if (legacy) return legacy;
      ref = undefined;
    }
    if (ref) {
      if (ref.digest !== undefined) {
        const hit = index.manifests.find((m) => m.digest === ref!.digest);
        if (hit) return hit;
      } else {
        const full = ref.full();
        const hit = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === full);
        if (hit) return hit;
      }
    }
    // 3. an image ID prefix
    const prefix = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(input)?.[1];
    if (prefix === undefined) return undefined;
    const matches = new Map<string, Descriptor>();
    for (const m of index.manifests) {
      const id = await this.#configDigestOf(m);
      if (hexOf(id).startsWith(prefix) && !matches.has(id)) matches.set(id, m);
    }
    if (matches.size > 1) throw new AmbiguousImageError(input, [...matches.keys()]);
    return matches.values().next().value;
  }

  async #configDigestOf(m: Descriptor): Promise<Digest> {
    return (await this.readJSONBlob<Manifest>(m.digest)).config.digest;
  }

  async #load(index: Index, desc: Descriptor): Promise<ResolvedImage> {
    const manifest = await this.readJSONBlob<Manifest>(desc.digest);
    const config = await this.readJSONBlob<ImageConfig>(manifest.config.digest);
    const refs = index.manifests
      .filter((m) => m.digest === desc.digest && m.annotations?.[REF_NAME_ANNOTATION])
      .map((m) => m.annotations![REF_NAME_ANNOTATION]!);
    return { id: manifest.config.digest, manifestDescriptor: stripAnnotations(desc), manifest, config, refs };
  }

  // ---- snapshots ----

  /** Directory of the unpacked snapshot of a layer chain (whether or not it exists). */
  snapshotDirFor(chainID: ChainID): string {
    return join(this.snapshotsDir, hexOf(chainID));
  }

  /**
   * Unpacks each layer once (overlay format) into `snapshots/<chainID hex>/` and returns the
   * directories bottom-first, for overlay `lowerdir` (which lists them top-first: reverse it).
   */
  prepareSnapshots(layers: ReadonlyArray<{ digest: Digest; diffID: DiffID }>, opts: Cancellable = {}): Promise<string[]> {
    return prepareSnapshots(this, layers, opts);
  }

  /**
   * Renames `dir`, an overlay upper dir whose tar is the top layer of `diffIDs`, into place as
   * that chain's snapshot (mtimes clamped to `sourceDateEpoch` first), so the layer is never
   * unpacked again. Returns false, leaving `dir` alone, when the snapshot exists already.
   */
  adoptSnapshot(diffIDs: readonly DiffID[], dir: string, opts: AdoptOptions = {}): Promise<boolean> {
    return adoptSnapshot(this, diffIDs, dir, opts);
  }

  /** Removes a directory tree under the store (used for temp dirs). */
  async removeTree(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
  }
}

function emptyIndex(): Index {
  return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
}

function verify(actual: Digest, size: number, expected: Digest | undefined, expectedSize: number | undefined): void {
  if (expected !== undefined && actual !== expected) throw new DigestMismatchError({ expected, actual });
  if (expectedSize !== undefined && size !== expectedSize) {
    throw new DigestMismatchError({ expected: `${expectedSize} bytes`, actual: `${size} bytes`, what: expected ?? actual });
  }
}

function devNull(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() });
}

function stripAnnotations(d: Descriptor): Descriptor {
  const { annotations: _a, ...rest } = d;
  return rest;
}

function entryFor(desc: Descriptor, ref?: Reference): Descriptor {
  const base = stripAnnotations(desc);
  return ref ? { ...base, annotations: { [REF_NAME_ANNOTATION]: ref.full() } } : base;
}

/** Adds an untagged entry unless the manifest is already referenced. */
function addUntagged(index: Index, desc: Descriptor): Index {
  if (index.manifests.some((m) => m.digest === desc.digest)) return index;
  return { ...index, manifests: [...index.manifests, entryFor(desc)] };
}

/** Points `ref` at `desc`; the image it left keeps an untagged entry if nothing else names it. */
function setTag(index: Index, ref: Reference, desc: Descriptor): Index {
  const full = ref.full();
  let manifests = [...index.manifests];
  const i = manifests.findIndex((m) => m.annotations?.[REF_NAME_ANNOTATION] === full);
  if (i >= 0) {
    const old = manifests[i]!;
    if (old.digest === desc.digest) return index;
    manifests.splice(i, 1);
    if (!manifests.some((m) => m.digest === old.digest)) manifests.push(entryFor(old));
  }
  // The new image's untagged placeholder is no longer needed.
  manifests = manifests.filter((m) => !(m.digest === desc.digest && !m.annotations?.[REF_NAME_ANNOTATION]));
  manifests.push(entryFor(desc, ref));
  return { ...index, manifests };
}

