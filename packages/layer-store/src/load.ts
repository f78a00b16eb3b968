/**
 * `load`: images from a tarball into the store. Reads docker-archive (classic `<id>/layer.tar`
 * form and Docker 25's `blobs/sha256/` form) and OCI layout archives, plain or compressed (gzip,
 * zstd: detected by magic).
 *
 * Every member is spooled once to a private directory under the store's `tmp/`, hashed on the
 * way; uncompressed layer tars are gzip'd on the way (their diffID is the hash of the raw bytes),
 * gzip'd layers are gunzip'd on a side branch only to compute their diffID. Only when the whole
 * archive has been read and checked (JSON, digests, diffIDs against the config's rootfs) are the
 * spooled files renamed into `blobs/` and the tags written to `index.json`. On any error the
 * spool directory is removed and `index.json` is untouched.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { ArchiveError } from './archive-errors.js';
import { byteCap, contentKindOf, decompressing, linkTarget, peek, safeMemberName, type ContentKind } from './archive-stream.js';
import { hashing, hexOf, isDigest } from './digest.js';
import { DigestMismatchError, StoreError } from './errors.js';
import { parseReference } from './reference.js';
import { CONTAINERD_NAME_ANNOTATION } from './save.js';
import { REF_NAME_ANNOTATION, type Store } from './store.js';
import { MediaTypes, type Cancellable, type Descriptor, type DiffID, type Digest, type ImageConfig, type Index, type Manifest } from './types.js';

/** Options of `load`. */
export interface LoadOptions extends Cancellable {
  /**
   * Largest number of bytes any decompressed stream (the archive, each gzip'd layer) may expand
   * to; more throws ArchiveError E_ARCHIVE_TOO_LARGE. Unlimited when absent.
   */
  maxBytes?: number;
}

/** One image `load` stored. */
export interface LoadedImage {
  /** Image ID (config digest). */
  id: Digest;
  manifest: Descriptor;
  /** Full references it was tagged with (may be empty). */
  tags: string[];
}

/** JSON members larger than this are refused (a manifest.json of thousands of images fits). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const BLOB_MEMBER_RE = /^blobs\/sha256\/([0-9a-f]{64})$/;

/** A spooled archive member: what its bytes were and where the blob to store sits. */
interface Spooled {
  name: string;
  kind: ContentKind;
  /** sha256 and size of the member's bytes as they were in the archive. */
  digest: Digest;
  size: number;
  /** The file to adopt as a blob: the member's bytes, or their gzip for an uncompressed tar. */
  blob: { file: string; digest: Digest; size: number };
  /** sha256 of the uncompressed tar (tar and gzip members; undefined for zstd). */
  diffID?: DiffID;
  /** Why the diffID of a gzip member could not be computed (corrupt, truncated, too large). */
  diffError?: unknown;
}

/** The image an archive holds, checked and ready to store. */
interface Plan {
  config: { blob: Spooled['blob']; mediaType: string };
  layers: Array<{ blob: Spooled['blob']; mediaType: string }>;
  /** An OCI manifest member to keep byte for byte (when no layer had to be converted). */
  keepManifest?: { blob: Spooled['blob']; mediaType: string };
  tags: string[];
}

/**
 * Loads every image of the archive `input` into the store.
 * @returns the images stored, in archive order.
 * @throws ArchiveError (E_ARCHIVE…: malformed, truncated, unsafe member path, missing member,
 * bad JSON, too large), DigestMismatchError (a blob or layer whose sha256 is not the one named),
 * ReferenceError (a bad tag). After a throw the store's index is as it was.
 */
export async function load(store: Store, input: Readable, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  const dir = await store.makeTempDir('load');
  try {
    const members = await spoolArchive(input, dir, opts);
    const plans = await planImages(members);
    return await commitPlans(store, plans);
  } finally {
    await store.removeTree(dir);
  }
}

// ---- reading the archive ----

class Members {
  readonly files = new Map<string, Spooled>();
  readonly links = new Map<string, string>();

  /** The spooled member `name` (following archive-internal links). */
  get(name: string, what: string): Spooled {
    let n = safeMemberName(name);
    for (let hops = 0; hops < 40; hops++) {
      const f = this.files.get(n);
      if (f) return f;
      const next = this.links.get(n);
      if (next === undefined) break;
      n = next;
    }
    throw new ArchiveError('E_ARCHIVE_MISSING_MEMBER', `the archive has no ${what}`, { member: name });
  }

  has(name: string): boolean {
    return this.files.has(name) || this.links.has(name);
  }

  async json<T>(name: string, what: string): Promise<T> {
    const m = this.get(name, what);
    if (m.kind !== 'other' || m.size > MAX_JSON_BYTES) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', `${what} is not a JSON document`, { member: name });
    }
    try {
      return JSON.parse(await readFile(m.blob.file, 'utf8')) as T;
    } catch (err) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', `${what} is not valid JSON`, { member: name, cause: err });
    }
  }
}

async function spoolArchive(input: Readable, dir: string, opts: LoadOptions): Promise<Members> {
  const members = new Members();
  const { streams } = await decompressing(input, { maxBytes: opts.maxBytes, what: 'the archive' });
  const extract = tar.extract();
  const feeding = pipeline([...streams, extract], opts.signal ? { signal: opts.signal } : {});
  feeding.catch(() => undefined);
  let count = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const name = safeMemberName(h.name);
      if (h.type === 'file' || h.type === 'contiguous-file') {
        const spooled = await spoolMember(entry as AsyncIterable<Buffer>, name, join(dir, String(count++)), opts);
        members.files.set(name, spooled);
        members.links.delete(name);
      } else if (h.type === 'symlink' || h.type === 'link') {
        members.links.set(name, linkTarget(name, h.linkname ?? '', h.type));
        members.files.delete(name);
        entry.resume();
      } else {
        entry.resume();
      }
    }
    await feeding;
  } catch (err) {
    throw archiveReadError(err, opts.signal);
  }
  return members;
}

/** Turns what reading failed with into our error classes (ours pass through). */
function archiveReadError(err: unknown, signal: AbortSignal | undefined): unknown {
  if (err instanceof StoreError || signal?.aborted) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (/Unexpected end of data|unexpected end of file/i.test(msg) || code === 'Z_BUF_ERROR') {
    return new ArchiveError('E_ARCHIVE_TRUNCATED', 'the archive is truncated', { cause: err, hint: 'the file was cut short (an interrupted download or save?); nothing was loaded' });
  }
  if (/Invalid tar header/i.test(msg)) {
    return new ArchiveError('E_ARCHIVE', 'the input is not a tar archive (or it is corrupt)', { cause: err, hint: 'load takes the output of docker save, tsbuild save or skopeo copy docker-archive:/oci-archive:' });
  }
  if (code?.startsWith('Z_') || /incorrect header check|invalid .* (code|distance)/i.test(msg)) {
    return new ArchiveError('E_ARCHIVE', 'the archive\'s compressed data is corrupt', { cause: err });
  }
  return new StoreError('reading the archive', { cause: err });
}

/** Spools one member to `file`: hashes it, gzips a tar, computes a gzip member's diffID on the side. */
async function spoolMember(entry: AsyncIterable<Buffer>, name: string, file: string, opts: LoadOptions): Promise<Spooled> {
  const { head, rest } = await peek(entry, 512);
  const kind = contentKindOf(head);
  const raw = hashing();
  const signal = opts.signal ? { signal: opts.signal } : {};
  let spooled: Spooled;
  if (kind === 'tar') {
    const gz = hashing();
    await pipeline(rest, raw, createGzip(), gz, await fileSink(file), signal);
    spooled = { name, kind, digest: raw.digest(), size: raw.size, blob: { file, digest: gz.digest(), size: gz.size }, diffID: raw.digest() as string as DiffID };
  } else {
    const tee = kind === 'gzip' ? new DiffIDTee(opts.maxBytes, name) : undefined;
    await pipeline([rest, raw, ...(tee ? [tee] : []), await fileSink(file)], signal);
    spooled = { name, kind, digest: raw.digest(), size: raw.size, blob: { file, digest: raw.digest(), size: raw.size } };
    if (tee) {
      if (tee.error === undefined) spooled.diffID = tee.diffID();
      else spooled.diffError = tee.error;
    }
  }
  const named = BLOB_MEMBER_RE.exec(name)?.[1];
  if (named !== undefined && named !== hexOf(spooled.digest)) {
    throw new DigestMismatchError({ expected: `sha256:${named}`, actual: spooled.digest, path: `archive member ${name}` });
  }
  return spooled;
}

/** A write stream to a new file that is fsynced and closed before the stream finishes. */
async function fileSink(file: string): Promise<Writable> {
  const fh = await open(file, 'wx', 0o644);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      fh.write(chunk).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      fh.writev(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
    },
    final(cb) {
      fh.sync().then(close).then(() => cb(), cb);
    },
    destroy(err, cb) {
      close().then(() => cb(err), () => cb(err));
    },
  });
}

/**
 * Passes bytes through unchanged while gunzipping a copy to hash it (the diffID). A failure of the
 * copy (corrupt or truncated gzip, too large) is recorded, not thrown: it matters only if the
 * member turns out to be a layer.
 */
class DiffIDTee extends Transform {
  error: unknown;
  readonly #gunzip = createGunzip();
  readonly #hash = hashing();
  readonly #done: Promise<void>;

  constructor(maxBytes: number | undefined, name: string) {
    super();
    const chain = [this.#gunzip, ...(maxBytes !== undefined ? [byteCap(maxBytes, `layer ${name}`)] : []), this.#hash, new Writable({ write: (_c, _e, cb) => cb() })];
    this.#done = pipeline(chain).catch((err: unknown) => {
      this.error = err;
    });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.error !== undefined || this.#gunzip.write(chunk)) {
      cb(null, chunk);
      return;
    }
    const drained = new Promise<void>((resolve) => this.#gunzip.once('drain', resolve));
    void Promise.race([drained, this.#done]).then(() => cb(null, chunk));
  }

  override _flush(cb: TransformCallback): void {
    if (this.error === undefined) this.#gunzip.end();
    void this.#done.then(() => cb());
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.#gunzip.destroy();
    cb(err);
  }

  diffID(): DiffID {
    return this.#hash.digest() as string as DiffID;
  }
}

// ---- understanding the archive ----

interface DockerManifestEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

async function planImages(members: Members): Promise<Plan[]> {
  if (members.has('manifest.json')) return planDocker(members);
  if (members.has('index.json')) return planOCI(members);
  throw new ArchiveError('E_ARCHIVE', 'not an image archive: it has neither manifest.json (docker save) nor index.json (OCI layout)', {
    hint: 'to make an image from a root filesystem tarball, use import',
  });
}

async function planDocker(members: Members): Promise<Plan[]> {
  const entries = await members.json<unknown>('manifest.json', 'image list');
  if (!Array.isArray(entries)) throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'manifest.json is not a list of images', { member: 'manifest.json' });
  const plans: Plan[] = [];
  for (const e of entries as DockerManifestEntry[]) {
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
      throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'manifest.json entry lacks Config or Layers', { member: 'manifest.json' });
    }
    const configMember = members.get(e.Config, 'image config');
    const namedHex = /^(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(safeMemberName(e.Config))?.[1];
    if (namedHex !== undefined && namedHex !== hexOf(configMember.digest)) {
      throw new DigestMismatchError({ expected: `sha256:${namedHex}`, actual: configMember.digest, path: `archive member ${e.Config}`, what: 'image config' });
    }
    const config = await members.json<ImageConfig>(e.Config, 'image config');
    const diffIDs = diffIDsOf(config, e.Config);
    const layerNames = e.Layers as string[];
    if (layerNames.length !== diffIDs.length) {
      throw new ArchiveError('E_ARCHIVE', `manifest.json lists ${layerNames.length} layers but the config's rootfs has ${diffIDs.length}`, { member: e.Config });
    }
    const layers = layerNames.map((n, i) => layerFor(members.get(n, `layer ${i + 1}`), diffIDs[i]!));
    const tags = Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string').map((t) => parseReference(t).full()) : [];
    plans.push({ config: { blob: configMember.blob, mediaType: MediaTypes.ociConfig }, layers: layers.map((l) => l.layer), tags });
  }
  return plans;
}

async function planOCI(members: Members): Promise<Plan[]> {
  const index = await members.json<Index>('index.json', 'OCI index');
  if (!Array.isArray(index?.manifests)) throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'index.json has no manifests list', { member: 'index.json' });
  const plans = new Map<string, Plan>();
  for (const desc of index.manifests) {
    const manifestDesc = await pickManifest(members, desc);
    let plan = plans.get(manifestDesc.digest);
    if (!plan) {
      plan = await planManifest(members, manifestDesc);
      plans.set(manifestDesc.digest, plan);
    }
    const name = desc.annotations?.[CONTAINERD_NAME_ANNOTATION] ?? desc.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined) {
      const full = parseReference(name).full();
      if (!plan.tags.includes(full)) plan.tags.push(full);
    }
  }
  return [...plans.values()];
}

/** The blob member a descriptor names, its size checked (its digest was checked while spooling). */
function blobMember(members: Members, desc: Descriptor, what: string): Spooled {
  if (typeof desc?.digest !== 'string' || !isDigest(desc.digest)) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', `${what} has an invalid digest "${String(desc?.digest)}"`);
  }
  const m = members.get(`blobs/sha256/${hexOf(desc.digest)}`, what);
  if (m.size !== desc.size) {
    throw new DigestMismatchError({ expected: `${desc.size} bytes`, actual: `${m.size} bytes`, path: `archive member ${m.name}`, what });
  }
  return m;
}

/** For a manifest list / index, the manifest for this machine's platform (else the first). */
async function pickManifest(members: Members, desc: Descriptor): Promise<Descriptor> {
  if (desc.mediaType !== MediaTypes.ociIndex && desc.mediaType !== MediaTypes.dockerManifestList) return desc;
  const m = blobMember(members, desc, 'nested index');
  const nested = await members.json<Index>(m.name, 'nested index');
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const list = Array.isArray(nested?.manifests) ? nested.manifests : [];
  const hit = list.find((d) => d.platform?.os === 'linux' && d.platform.architecture === arch) ?? list[0];
  if (!hit) throw new ArchiveError('E_ARCHIVE', 'a nested index lists no manifests', { member: m.name });
  return hit;
}

async function planManifest(members: Members, desc: Descriptor): Promise<Plan> {
  const manifestMember = blobMember(members, desc, 'image manifest');
  const manifest = await members.json<Manifest>(manifestMember.name, 'image manifest');
  if (!manifest?.config || !Array.isArray(manifest.layers)) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'image manifest lacks config or layers', { member: manifestMember.name });
  }
  const configMember = blobMember(members, manifest.config, 'image config');
  const config = await members.json<ImageConfig>(configMember.name, 'image config');
  const diffIDs = diffIDsOf(config, configMember.name);
  if (diffIDs.length !== manifest.layers.length) {
    throw new ArchiveError('E_ARCHIVE', `the manifest lists ${manifest.layers.length} layers but the config's rootfs has ${diffIDs.length}`, { member: manifestMember.name });
  }
  const layers = manifest.layers.map((d, i) => layerFor(blobMember(members, d, `layer ${i + 1}`), diffIDs[i]!));
  const converted = layers.some((l) => l.converted);
  return {
    config: { blob: configMember.blob, mediaType: manifest.config.mediaType },
    layers: layers.map((l) => l.layer),
    ...(converted ? {} : { keepManifest: { blob: manifestMember.blob, mediaType: desc.mediaType } }),
    tags: [],
  };
}

function diffIDsOf(config: ImageConfig, member: string): DiffID[] {
  const ids = config?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new ArchiveError('E_ARCHIVE_BAD_JSON', 'image config has no valid rootfs.diff_ids', { member });
  }
  return ids;
}

/** A layer member as a blob to store, its diffID checked against the config. */
function layerFor(m: Spooled, expected: DiffID): { layer: Plan['layers'][number]; converted: boolean } {
  if (m.kind === 'other') {
    throw new ArchiveError('E_ARCHIVE', 'layer is neither a tar nor a gzip/zstd-compressed tar', { member: m.name });
  }
  if (m.diffError !== undefined) {
    const err = m.diffError;
    if (err instanceof ArchiveError && err.code === 'E_ARCHIVE_TOO_LARGE') throw err;
    throw new ArchiveError('E_ARCHIVE', 'layer\'s gzip data is corrupt or truncated', { member: m.name, cause: err });
  }
  if (m.diffID !== undefined && m.diffID !== expected) {
    throw new DigestMismatchError({ expected, actual: m.diffID, path: `archive member ${m.name}`, what: 'layer diffID' });
  }
  const mediaType = m.kind === 'zstd' ? MediaTypes.ociLayerZstd : MediaTypes.ociLayerGzip;
  return { layer: { blob: m.blob, mediaType }, converted: m.kind === 'tar' };
}

// ---- storing ----

async function commitPlans(store: Store, plans: Plan[]): Promise<LoadedImage[]> {
  const adopted = new Set<string>();
  const adopt = async (blob: Spooled['blob']): Promise<void> => {
    if (adopted.has(blob.digest)) return;
    adopted.add(blob.digest);
    if (!(await store.hasBlob(blob.digest))) await store.adoptBlob(blob.file, blob.digest);
  };
  const out: LoadedImage[] = [];
  for (const plan of plans) {
    await adopt(plan.config.blob);
    for (const l of plan.layers) await adopt(l.blob);
    let manifestDesc: Descriptor;
    if (plan.keepManifest) {
      await adopt(plan.keepManifest.blob);
      manifestDesc = { mediaType: plan.keepManifest.mediaType, digest: plan.keepManifest.blob.digest, size: plan.keepManifest.blob.size };
    } else {
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: plan.config.mediaType, digest: plan.config.blob.digest, size: plan.config.blob.size },
        layers: plan.layers.map((l) => ({ mediaType: l.mediaType, digest: l.blob.digest, size: l.blob.size })),
      };
      manifestDesc = await store.writeJSONBlob(manifest, MediaTypes.ociManifest);
    }
    if (plan.tags.length === 0) await addUntagged(store, manifestDesc);
    for (const t of plan.tags) await store.tag(t, manifestDesc);
    out.push({ id: plan.config.blob.digest, manifest: manifestDesc, tags: plan.tags });
  }
  return out;
}

async function addUntagged(store: Store, desc: Descriptor): Promise<void> {
  await store.updateIndex((index) =>
    index.manifests.some((m) => m.digest === desc.digest) ? index : { ...index, manifests: [...index.manifests, desc] },
  );
}

