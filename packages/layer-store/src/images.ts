/**
 * Image management on a store, as Docker's `images`, `image inspect`, `history`, `tag`, `rmi`,
 * `image prune` and `system df` show and do it, plus garbage collection.
 *
 * Garbage collection marks from `index.json` (every manifest → its config and layers, and the
 * snapshot of every layer chain) and from the build cache: any file `cache/*.json` whose
 * top-level object has `"blobs": ["sha256:…", …]` keeps those blobs, and `"chainIDs": [...]`
 * keeps those snapshots. Everything else in `blobs/sha256/` and `snapshots/` is removed, under
 * the store's lock.
 */
import { lstat, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIDsOf, hexOf, isDigest, parseDigest } from './digest.js';
import { BlobNotFoundError, StoreError } from './errors.js';
import { layerContentSize, LAYER_SIZES_DIR } from './layer-size.js';
import { GZIP_BLOCKS_DIR } from './gzip-blocks.js';
import { namesLegacyReference, parseReference, storedName } from './reference.js';
import { readRepoDigests, repoDigestsOf, repositoryOf, updateRepoDigests } from './repo-digests.js';
import { REF_NAME_ANNOTATION, type Store } from './store.js';
import { MediaTypes, type ContainerConfig, type Descriptor, type DiffID, type Digest, type HistoryEntry, type ImageConfig, type Index, type Manifest } from './types.js';

// ---- listing ----

/** One row of `images`: one per tag, or one `<none>` row for an untagged image. */
export interface ImageRow {
  /** Familiar repository name (`hello`, `user/app`), or `<none>`. */
  repository: string;
  tag: string;
  /** Image ID (config digest). */
  id: Digest;
  /**
   * The repository digest of this row (Docker's DIGEST column): the digest recorded for the row's
   * repository by a push or pull (see `repo-digests.ts`), `<none>` when none was. A repository with
   * several digests gives one row per digest; a repository with digests but no tag gives rows with
   * tag `<none>`.
   */
  digest: Digest | '<none>';
  created: string | undefined;
  /** The image config's labels (for `--filter label=…`). */
  labels: Record<string, string>;
  /** Docker's image size: the content size of its layers (see `layer-size.ts`), not compressed bytes. */
  size: number;
}

/**
 * Docker's size of an image: the sum of its layers' content sizes (files and symlink targets
 * unpacked, see `layer-size.ts`), which `docker images`, `image inspect` Size/VirtualSize report.
 * @throws BlobNotFoundError, CorruptLayerError when a size must be computed from a damaged blob.
 */
export async function imageContentSize(store: Store, manifest: Manifest, config: ImageConfig): Promise<number> {
  let sum = 0;
  for (const size of await layerContentSizes(store, manifest, config)) sum += size;
  return sum;
}

/** The content size of each layer of an image, bottom first. */
async function layerContentSizes(store: Store, manifest: Manifest, config: ImageConfig): Promise<number[]> {
  const diffIDs = config.rootfs?.diff_ids ?? [];
  const out: number[] = [];
  for (const [i, l] of manifest.layers.entries()) {
    const diffID = diffIDs[i];
    // a manifest and config that disagree on the layer count: the blob's own size is all we know
    out.push(diffID === undefined ? l.size : await layerContentSize(store, { digest: l.digest, diffID }));
  }
  return out;
}

/** The store's images as `docker images` lists them, newest first (ties by name). */
export async function listImages(store: Store): Promise<ImageRow[]> {
  const rows: ImageRow[] = [];
  const recorded = await readRepoDigests(store);
  for (const img of await store.listImages()) {
    const manifest = await store.readJSONBlob<Manifest>(img.manifestDescriptor.digest);
    const config = await store.readJSONBlob<ImageConfig>(img.id);
    const base = { id: img.id, created: img.created, labels: config.config?.Labels ?? {}, size: await imageContentSize(store, manifest, config) };
    // as Docker's CLI: per repository, each tag once per digest of that repository (or `<none>`),
    // then the repositories that only have digests, with tag `<none>`
    const tags = new Map<string, string[]>();
    const digests = new Map<string, Digest[]>();
    for (const r of img.refs) {
      const row = rowName(r);
      if (row.digest !== undefined) (digests.get(row.repository) ?? digests.set(row.repository, []).get(row.repository)!).push(row.digest);
      else (tags.get(row.repository) ?? tags.set(row.repository, []).get(row.repository)!).push(row.tag);
    }
    for (const c of repoDigestsOf(recorded, img.id)) {
      const row = rowName(c);
      const list = digests.get(row.repository) ?? digests.set(row.repository, []).get(row.repository)!;
      if (row.digest !== undefined && !list.includes(row.digest)) list.push(row.digest);
    }
    if (tags.size === 0 && digests.size === 0) rows.push({ repository: '<none>', tag: '<none>', digest: '<none>', ...base });
    for (const [repository, ts] of tags) {
      const ds = digests.get(repository) ?? [];
      digests.delete(repository);
      for (const tag of ts) {
        if (ds.length === 0) rows.push({ repository, tag, digest: '<none>', ...base });
        for (const digest of ds) rows.push({ repository, tag, digest, ...base });
      }
    }
    for (const [repository, ds] of digests) for (const digest of ds) rows.push({ repository, tag: '<none>', digest, ...base });
  }
  return rows.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag));
}

/**
 * The repository and tag an `images` row shows for a stored reference. A reference that
 * `parseReference` now refuses (an uppercase `Up/x:latest` an older version tagged) is shown as it
 * is stored, split at its tag, rather than failing the whole listing.
 */
function rowName(stored: string): { repository: string; tag: string; digest?: Digest } {
  const s = storedName(stored);
  if (s.digest !== undefined && s.tag === undefined) return { repository: s.repository, tag: '<none>', digest: s.digest };
  return { repository: s.repository, tag: s.tag ?? '<none>' };
}

// ---- inspect ----

/**
 * A container config as Docker 20.10's API prints it (`container.Config`): every field, in Go's
 * order, `null`/`""`/`false` when unset; the `omitempty` ones only when set.
 */
export interface DockerContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Healthcheck?: ContainerConfig['Healthcheck'];
  ArgsEscaped?: boolean;
  Image: string;
  Volumes: Record<string, Record<string, never>> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  OnBuild: string[] | null;
  Labels: Record<string, string> | null;
  StopSignal?: string;
  Shell?: string[];
}

/** `docker image inspect`'s shape: Docker 20.10's keys in its order, plus our `Descriptor`. */
export interface ImageInspect {
  Id: Digest;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  /** The build container Docker committed; "" here (no containers), as for imported images. */
  Container: string;
  ContainerConfig: DockerContainerConfig;
  DockerVersion: string;
  Author: string;
  Config: DockerContainerConfig;
  Architecture: string;
  Variant?: string;
  Os: string;
  /** Docker's size: the layers' content sizes (files and symlink targets), see `imageContentSize`. */
  Size: number;
  /** Same as Size, as in Docker 20.10. */
  VirtualSize: number;
  /**
   * The unpacked layers: `Name` "tsbuild", `Data.UpperDir` the top layer's snapshot and
   * `Data.LowerDir` the others (top first, `:`-joined), when every snapshot is unpacked; else null.
   */
  GraphDriver: { Data: { LowerDir?: string; UpperDir: string } | null; Name: string };
  RootFS: { Type: string; Layers: DiffID[] };
  /** The tag time is not recorded: Go's zero time, as Docker shows for an image never tagged. */
  Metadata: { LastTagTime: string };
  /** The manifest's descriptor (not in Docker's output). */
  Descriptor: Descriptor;
}

type DockerishConfig = ImageConfig & { comment?: string; docker_version?: string; container?: string; container_config?: ContainerConfig };

/** Go's zero `time.Time` as JSON. */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** `c` in Docker's API shape (see {@link DockerContainerConfig}). */
export function dockerContainerConfig(c: ContainerConfig & { Image?: string; Hostname?: string; Domainname?: string } = {}): DockerContainerConfig {
  const set = <K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> => (v === undefined || v === null || v === false || v === '' ? {} : ({ [k]: v } as Record<K, V>));
  return {
    Hostname: c.Hostname ?? '',
    Domainname: c.Domainname ?? '',
    User: c.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...set('ExposedPorts', c.ExposedPorts && Object.keys(c.ExposedPorts).length > 0 ? c.ExposedPorts : undefined),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: c.Env ?? null,
    Cmd: c.Cmd ?? null,
    ...set('Healthcheck', c.Healthcheck),
    ...set('ArgsEscaped', c.ArgsEscaped),
    Image: c.Image ?? '',
    Volumes: c.Volumes ?? null,
    WorkingDir: c.WorkingDir ?? '',
    Entrypoint: c.Entrypoint ?? null,
    OnBuild: c.OnBuild ?? null,
    Labels: c.Labels ?? null,
    ...set('StopSignal', c.StopSignal),
    ...set('Shell', c.Shell && c.Shell.length > 0 ? c.Shell : undefined),
  };
}

async function graphDriverData(store: Store, diffIDs: readonly DiffID[]): Promise<ImageInspect['GraphDriver']['Data']> {
  if (diffIDs.length === 0) return null;
  const dirs = chainIDsOf(diffIDs).map((c) => store.snapshotDirFor(c)).reverse();
  for (const d of dirs) if (!(await stat(d).catch(() => undefined))?.isDirectory()) return null;
  return { ...(dirs.length > 1 ? { LowerDir: dirs.slice(1).join(':') } : {}), UpperDir: dirs[0]! };
}

/**
 * Inspects one image.
 * @throws ImageNotFoundError, AmbiguousImageError
 */
export async function inspectImage(store: Store, ref: string): Promise<ImageInspect> {
  const img = await store.resolveImage(ref);
  const config = img.config as DockerishConfig;
  const size = await imageContentSize(store, img.manifest, img.config);
  const diffIDs = config.rootfs?.diff_ids ?? [];
  return {
    Id: img.id,
    // Docker's reference store lists an image's references sorted by their full string
    RepoTags: [...img.refs].filter((r) => !isDigestRef(r)).sort().map((r) => storedName(r).familiar),
    // digest references: a pull by digest (in index.json) and the pushes and pulls recorded
    RepoDigests: [...new Set([...img.refs.filter(isDigestRef), ...repoDigestsOf(await readRepoDigests(store), img.id)])].sort().map(familiarCanonical),
    Parent: '',
    Comment: config.comment ?? '',
    Created: config.created ?? GO_ZERO_TIME,
    Container: config.container ?? '',
    ContainerConfig: dockerContainerConfig(config.container_config),
    DockerVersion: config.docker_version ?? '',
    Author: config.author ?? '',
    Config: dockerContainerConfig(config.config),
    Architecture: config.architecture,
    ...(config.variant ? { Variant: config.variant } : {}),
    Os: config.os,
    Size: size,
    VirtualSize: size,
    GraphDriver: { Data: await graphDriverData(store, diffIDs), Name: 'tsbuild' },
    RootFS: { Type: config.rootfs?.type ?? 'layers', Layers: diffIDs },
    Metadata: { LastTagTime: GO_ZERO_TIME },
    Descriptor: img.manifestDescriptor,
  };
}

function isDigestRef(stored: string): boolean {
  const r = storedName(stored);
  return r.digest !== undefined && r.tag === undefined;
}

/** `127.0.0.1:5000/x@sha256:…` as Docker shows it (`docker.io/library/` dropped). */
function familiarCanonical(canonical: string): string {
  return storedName(canonical).familiar;
}

// ---- history ----

/** One row of `history`, newest first. */
export interface HistoryRow {
  /** The image ID on the newest row; undefined (`<missing>`) below it, as for pulled images. */
  id: Digest | undefined;
  created: string | undefined;
  createdBy: string;
  /** Content size of the layer this step made (as Docker's, see `imageContentSize`), 0 for an empty-layer step. */
  size: number;
  comment: string;
  emptyLayer: boolean;
}

/**
 * The history of one image, newest first. Each history entry without `empty_layer` is matched with
 * the next layer bottom-up, as Docker does; an image without history gets one row per layer.
 * @throws ImageNotFoundError, AmbiguousImageError
 */
export async function imageHistory(store: Store, ref: string): Promise<HistoryRow[]> {
  const img = await store.resolveImage(ref);
  const layers = img.manifest.layers;
  const sizes = await layerContentSizes(store, img.manifest, img.config);
  const history: HistoryEntry[] = img.config.history ?? layers.map(() => ({}));
  const rows: HistoryRow[] = [];
  let li = 0;
  for (const h of history) {
    const empty = h.empty_layer === true;
    const size = empty ? undefined : sizes[li++];
    rows.push({ id: undefined, created: h.created, createdBy: h.created_by ?? '', size: size ?? 0, comment: h.comment ?? '', emptyLayer: empty });
  }
  rows.reverse();
  if (rows[0]) rows[0].id = img.id;
  return rows;
}

// ---- tag ----

/**
 * Points reference `target` at the image `source` names (reference, ID or ID prefix).
 * @throws ImageNotFoundError, AmbiguousImageError, ReferenceError
 */
export async function tagImage(store: Store, source: string, target: string): Promise<void> {
  const img = await store.resolveImage(source);
  await store.tag(target, img.manifestDescriptor);
}

// ---- rmi ----

/** What removing one name did: Docker's `Untagged:` and `Deleted:` lines. */
export interface RemoveResult {
  /** Familiar references removed. */
  untagged: string[];
  /** The image ID, when the image itself went (no reference left). */
  deleted: Digest | undefined;
  /**
   * When the image went: chain IDs of its layers no image left in the index has, top first (Docker
   * 20.10's rmi prints a 'Deleted:' line for each layer it released after the image's own).
   */
  layers: string[];
}

/** An image that several references name, removed by ID without force. */
export class ImageConflictError extends StoreError {
  constructor(readonly ref: string, reason: string) {
    super(`conflict: unable to delete ${ref} (must be forced) - ${reason}`, {
      code: 'E_IMAGE_CONFLICT',
      hint: 'remove it by its tags, or pass -f to remove every tag and the image',
    });
  }
}

/**
 * Removes `ref` as `docker rmi` does: a tag is untagged, and the image goes with its last tag; an
 * image ID removes the image and all its tags, which needs `force` when it has several.
 * Content is not deleted here: call `collectGarbage` after.
 * @throws ImageNotFoundError, AmbiguousImageError, ImageConflictError
 */
export async function removeImage(store: Store, ref: string, { force = false }: { force?: boolean } = {}): Promise<RemoveResult> {
  const img = await store.resolveImage(ref);
  const named = namedTag(ref, img.refs);
  if (named !== undefined) {
    const untagged = [storedName(named).familiar];
    let { stillReferenced } = await store.untag(named);
    const repository = storedName(named).name;
    const tagsLeft = img.refs.filter((r) => r !== named && !isDigestRef(r));
    if (!tagsLeft.some((r) => storedName(r).name === repository)) {
      // as Docker: the last tag of a repository takes that repository's digest references with it
      for (const r of img.refs.filter((x) => isDigestRef(x) && storedName(x).name === repository)) {
        stillReferenced = (await store.untag(r)).stillReferenced;
        untagged.push(storedName(r).familiar);
      }
      const dropped = await updateRepoDigests(store, (map) => {
        const out: string[] = [];
        for (const [k, v] of map) {
          if (v === img.id && repositoryOf(k) === repository) {
            map.delete(k);
            if (!img.refs.includes(k)) out.push(k);
          }
        }
        return out.sort();
      });
      untagged.push(...dropped.map(familiarCanonical));
    }
    if (stillReferenced) return { untagged, deleted: undefined, layers: [] };
    await dropRepoDigestsOf(store, img.id);
    return { untagged, deleted: img.id, layers: await releasedChains(store, img.manifestDescriptor) };
  }
  const canonical = digestRef(ref);
  if (canonical !== undefined) {
    // a digest reference (`repo@sha256:…`): removes that reference; the image goes with its last one
    const recorded = await updateRepoDigests(store, (map) => map.get(canonical) === img.id && map.delete(canonical));
    const inIndex = img.refs.includes(canonical);
    if (recorded || inIndex) {
      const stillReferenced = inIndex ? (await store.untag(canonical)).stillReferenced : true;
      const othersLeft = img.refs.some((r) => r !== canonical) || repoDigestsOf(await readRepoDigests(store), img.id).length > 0;
      if (othersLeft && stillReferenced) return { untagged: [familiarCanonical(canonical)], deleted: undefined, layers: [] };
      await store.removeImage(img.manifestDescriptor.digest);
      await dropRepoDigestsOf(store, img.id);
      return { untagged: [familiarCanonical(canonical)], deleted: img.id, layers: await releasedChains(store, img.manifestDescriptor) };
    }
  }
  if (img.refs.length > 1 && !force) throw new ImageConflictError(hexOf(img.id).slice(0, 12), 'image is referenced in multiple repositories');
  const removed = await store.removeImage(img.manifestDescriptor.digest);
  const digests = await dropRepoDigestsOf(store, img.id);
  return { untagged: [...new Set([...removed, ...digests])].sort().map(familiarCanonical), deleted: img.id, layers: await releasedChains(store, img.manifestDescriptor) };
}

/** Chain IDs of a removed image's layers that no image in the index has, top first. */
async function releasedChains(store: Store, removed: Descriptor): Promise<string[]> {
  const live = new Set<string>();
  for (const m of (await store.readIndex()).manifests) for (const c of await chainsOf(store, m)) live.add(c);
  return (await chainsOf(store, removed)).reverse().filter((c) => !live.has(c));
}

/** Drops every recorded repository digest of image `id`; @returns the references dropped. */
async function dropRepoDigestsOf(store: Store, id: Digest): Promise<string[]> {
  return updateRepoDigests(store, (map) => {
    const out = repoDigestsOf(map, id);
    for (const k of out) map.delete(k);
    return out;
  });
}

/** The full form of a `repo@sha256:…` reference, or undefined for anything else. */
function digestRef(input: string): string | undefined {
  try {
    const r = parseReference(input);
    return r.digest !== undefined && r.tag === undefined ? r.full() : undefined;
  } catch {
    return undefined;
  }
}

/** The stored tag `input` names among `refs`: a reference, or a legacy stored name (see `storedName`). */
function namedTag(input: string, refs: readonly string[]): string | undefined {
  try {
    const r = parseReference(input);
    return r.digest === undefined && refs.includes(r.full()) ? r.full() : undefined;
  } catch {
    return refs.find((stored) => namesLegacyReference(stored, input));
  }
}

// ---- garbage collection ----

/** What a prune removed. */
export interface PruneReport {
  /** Image IDs of the dangling (untagged) images removed from the index. */
  imagesDeleted: Digest[];
  blobsDeleted: Digest[];
  /** Chain IDs of the snapshots removed. */
  snapshotsDeleted: string[];
  /** Bytes freed on disk (blob sizes plus snapshot file sizes). */
  reclaimed: number;
}

/** The blobs and snapshots something refers to. */
interface Live {
  blobs: Set<string>;
  snapshots: Set<string>;
  /** Hex of the diffIDs of indexed images (their recorded content sizes stay). */
  diffIDs: Set<string>;
  /** Blobs only the build cache refers to. */
  cacheOnly: Set<string>;
  cacheRecords: number;
}

/** Options of the garbage-collecting calls. */
export interface GcOptions {
  /** Called when garbage collection has to wait for running builds (their content leases). */
  onWait?: () => void;
}

/**
 * Removes every blob and snapshot nothing refers to (see the module comment), under the store's
 * lock, once no build holds the content lease (see `Store.lease`). Images in `index.json`, tagged or not, are kept.
 * @throws StoreError when a referenced manifest or config cannot be read (nothing is deleted then).
 */
export async function collectGarbage(store: Store, opts: GcOptions = {}): Promise<PruneReport> {
  // after running builds end (they hold the content lease while they mount and link snapshots)
  const report = await store.withContentLock(
    () =>
      store.withLock(async () => {
        const live = await markLive(store, await store.readIndex());
        return sweep(store, live);
      }),
    opts,
  );
  // repository digests of images no longer in the index go too
  await updateRepoDigests(store, async (map) => {
    if (map.size === 0) return;
    const ids = new Set<string>();
    for (const m of (await store.readIndex()).manifests) ids.add((await store.readJSONBlob<Manifest>(m.digest)).config.digest);
    for (const [k, v] of map) if (!ids.has(v)) map.delete(k);
  });
  return report;
}

/** Whether an index entry names its image by a tag (not by digest only, not untagged). */
function isTag(m: Descriptor): boolean {
  const stored = m.annotations?.[REF_NAME_ANNOTATION];
  if (!stored) return false;
  const s = storedName(stored);
  return s.tag !== undefined || s.digest === undefined;
}

/** One image `prune` removed: Docker's `untagged:` lines, then its `deleted:` line. */
export interface PrunedImage {
  /** Familiar digest references it had (`repo@sha256:…`): a pull by digest, pushes and pulls recorded. */
  untagged: string[];
  /** The image ID. */
  deleted: Digest;
  /**
   * Chain IDs of the image's layers no image in the index has any more, top first (Docker's
   * `deleted: sha256:<chain ID>` lines after the image's); each listed once per prune.
   */
  layers: string[];
}

/** What `prune` removed: the images, then what garbage collection freed. */
export interface ImagePruneReport extends PruneReport {
  /** The images removed, in index order. */
  images: PrunedImage[];
}

/**
 * `image prune`: removes dangling images from the index, then collects garbage. As in Docker 20.10,
 * an image is dangling when no tag names it: untagged, or named by digest references only (pulled
 * by digest); those references go with it.
 */
export async function prune(store: Store, opts: ImagePruneOptions = {}): Promise<ImagePruneReport> {
  // the filters read each candidate's config first (outside the index update, which is synchronous)
  const filtered = opts.until !== undefined || opts.labels !== undefined || opts.notLabels !== undefined;
  if (opts.all === true) return pruneAll(store, opts, filtered);
  const allowed = new Set<string>();
  if (filtered) {
    for (const m of (await store.readIndex()).manifests) {
      if (allowed.has(m.digest)) continue;
      let config: ImageConfig | undefined;
      try {
        config = await store.readJSONBlob<ImageConfig>((await store.readJSONBlob<Manifest>(m.digest)).config.digest);
      } catch {
        config = undefined;
      }
      if (config !== undefined && prunable(config, opts)) allowed.add(m.digest);
    }
  }
  const dangling: Array<{ desc: Descriptor; refs: string[] }> = [];
  await store.updateIndex((index) => {
    const tagged = new Set(index.manifests.filter(isTag).map((m) => m.digest));
    // an image the filters keep stays, as if it were tagged
    if (filtered) for (const m of index.manifests) if (!allowed.has(m.digest)) tagged.add(m.digest);
    dangling.length = 0;
    for (const m of index.manifests) {
      if (tagged.has(m.digest)) continue;
      let d = dangling.find((x) => x.desc.digest === m.digest);
      if (d === undefined) dangling.push((d = { desc: m, refs: [] }));
      const stored = m.annotations?.[REF_NAME_ANNOTATION];
      if (stored) d.refs.push(stored);
    }
    return { ...index, manifests: index.manifests.filter((m) => tagged.has(m.digest)) };
  });
  const recorded = await readRepoDigests(store);
  // the layer chains images still in the index have
  const liveChains = new Set<string>();
  for (const m of (await store.readIndex()).manifests) for (const c of await chainsOf(store, m)) liveChains.add(c);
  const images: PrunedImage[] = [];
  for (const { desc, refs } of dangling) {
    let id: Digest;
    try {
      id = (await store.readJSONBlob<Manifest>(desc.digest)).config.digest;
    } catch {
      id = desc.digest;
    }
    const untagged = [...new Set([...refs, ...repoDigestsOf(recorded, id)])].sort().map(familiarCanonical);
    const layers = (await chainsOf(store, desc)).reverse().filter((c) => !liveChains.has(c));
    for (const c of layers) liveChains.add(c);
    images.push({ untagged, deleted: id, layers });
  }
  const report = await collectGarbage(store, opts);
  return { ...report, imagesDeleted: images.map((i) => i.deleted), images };
}

/**
 * `image prune -a`: every image the filters allow goes, tagged or not, as dockerd 20.10's
 * ImagesPrune with danglingOnly false: each of its references (tags and digest references, in
 * lexical order of their full names) is removed as `rmi` removes it, skipping one an earlier
 * removal took along (a tag takes its repository's digest references); an image without any is
 * removed by ID. Then garbage collection. dockerd also removes the untagged parent images of the
 * classic builder; we have none.
 */
async function pruneAll(store: Store, opts: ImagePruneOptions, filtered: boolean): Promise<ImagePruneReport> {
  const images: PrunedImage[] = [];
  const seen = new Set<string>();
  for (const m of (await store.readIndex()).manifests) {
    if (seen.has(m.digest)) continue;
    seen.add(m.digest);
    let id: Digest = m.digest;
    let config: ImageConfig | undefined;
    try {
      id = (await store.readJSONBlob<Manifest>(m.digest)).config.digest;
      config = await store.readJSONBlob<ImageConfig>(id);
    } catch {
      config = undefined;
    }
    // an image whose config cannot be read passes no filter (dockerd cannot load it either)
    if (filtered && (config === undefined || !prunable(config, opts))) continue;
    const refs = await currentRefs(store, m.digest);
    const pruned: PrunedImage = { untagged: [], deleted: id, layers: [] };
    if (refs.length === 0) {
      const r = await removeImage(store, m.digest, { force: true });
      Object.assign(pruned, { deleted: r.deleted ?? m.digest, layers: r.layers });
    } else {
      for (const ref of refs) {
        // dockerd's imageDeleteFailed: a reference an earlier removal took along is skipped
        if (!(await currentRefs(store, m.digest)).includes(ref)) continue;
        const r = await removeImage(store, ref).catch((err: unknown) => {
          if (err instanceof StoreError && err.code === 'E_IMAGE_NOT_FOUND') return undefined;
          throw err;
        });
        if (r === undefined) continue;
        pruned.untagged.push(...r.untagged);
        if (r.deleted !== undefined) Object.assign(pruned, { deleted: r.deleted, layers: r.layers });
      }
    }
    images.push(pruned);
  }
  const report = await collectGarbage(store, opts);
  return { ...report, imagesDeleted: images.map((i) => i.deleted), images };
}

/** The references naming a manifest now: its index entries and its image's recorded repository digests, sorted. */
async function currentRefs(store: Store, manifestDigest: Digest): Promise<string[]> {
  const refs = new Set<string>();
  let id: Digest | undefined;
  for (const m of (await store.readIndex()).manifests) {
    if (m.digest !== manifestDigest) continue;
    const stored = m.annotations?.[REF_NAME_ANNOTATION];
    if (stored) refs.add(stored);
    id ??= (await store.readJSONBlob<Manifest>(m.digest).catch(() => undefined))?.config.digest;
  }
  if (id !== undefined) for (const r of repoDigestsOf(await readRepoDigests(store), id)) refs.add(r);
  return [...refs].sort();
}

/**
 * Options of {@link prune}: Docker 20.10's image prune filters. An image is pruned only when it
 * matches all of them.
 */
export interface ImagePruneOptions extends GcOptions {
  /** `-a`: every image, not only dangling ones (dockerd's `dangling=false`). */
  all?: boolean;
  /** `until=`: only images created at or before this time (a later one is kept). */
  until?: Date;
  /** `label=`: only images whose config has every one of these labels (`key` or `key=value`). */
  labels?: readonly string[];
  /** `label!=`: an image that has every one of these labels (`key` or `key=value`) is kept. */
  notLabels?: readonly string[];
}

/** Whether an image config passes the prune filters (dockerd's until check and matchLabels). */
function prunable(config: ImageConfig, opts: ImagePruneOptions): boolean {
  if (opts.until !== undefined) {
    const created = Date.parse(config.created ?? '');
    if (!Number.isNaN(created) && created > opts.until.getTime()) return false;
  }
  const labels = config.config?.Labels ?? undefined;
  // filters.Args.MatchKVList: every value must match; no labels at all matches nothing
  const matchAll = (wanted: readonly string[]): boolean =>
    labels != null &&
    wanted.every((w) => {
      const eq = w.indexOf('=');
      return eq < 0 ? Object.hasOwn(labels, w) : labels[w.slice(0, eq)] === w.slice(eq + 1);
    });
  if (opts.labels !== undefined && opts.labels.length > 0 && !matchAll(opts.labels)) return false;
  if (opts.notLabels !== undefined && opts.notLabels.length > 0 && matchAll(opts.notLabels)) return false;
  return true;
}

/** The chain IDs of an image manifest's layers, bottom first ([] when it cannot be read). */
async function chainsOf(store: Store, desc: Descriptor): Promise<string[]> {
  try {
    const manifest = await store.readJSONBlob<Manifest>(desc.digest);
    const diffIDs = (await store.readJSONBlob<ImageConfig>(manifest.config.digest)).rootfs?.diff_ids ?? [];
    return diffIDs.length === 0 ? [] : chainIDsOf(diffIDs);
  } catch {
    return [];
  }
}

/** Options of {@link pruneCache}. */
export interface PruneCacheOptions extends GcOptions {
  /** remove only records last used before this time */
  usedBefore?: Date;
  /** keep the most recently used records whose blobs fit in this many bytes; remove the rest */
  keepStorage?: number;
}

/** What {@link pruneCache} removed. */
export interface PruneCacheReport extends PruneReport {
  /** cache record files removed */
  recordsDeleted: number;
  /** Their names (the record file names without `.json`), sorted. */
  records: string[];
}

/**
 * Removes build cache records (`cache/*.json` with a `lastUsed` time and `blobs`): all of them, or
 * those used before `usedBefore`, or the least recently used beyond `keepStorage` bytes (the sizes
 * of the blobs they keep, each blob counted once), then collects garbage. Other files in `cache/`
 * are left alone.
 */
export async function pruneCache(store: Store, opts: PruneCacheOptions = {}): Promise<PruneCacheReport> {
  const recs: Array<{ name: string; lastUsed: number; blobs: string[] }> = [];
  for (const name of await listDir(store.cacheDir)) {
    if (!name.endsWith('.json')) continue;
    try {
      const r = JSON.parse(await readFile(join(store.cacheDir, name), 'utf8')) as { lastUsed?: unknown; blobs?: unknown };
      const lastUsed = typeof r.lastUsed === 'string' ? Date.parse(r.lastUsed) : NaN;
      if (Number.isNaN(lastUsed)) continue;
      const blobs = Array.isArray(r.blobs) ? r.blobs.filter((d): d is string => typeof d === 'string' && isDigest(d)) : [];
      recs.push({ name, lastUsed, blobs });
    } catch {
      continue; // not a record (or being written)
    }
  }
  recs.sort((a, b) => b.lastUsed - a.lastUsed || (a.name < b.name ? -1 : 1));
  const doomed = new Set<string>();
  if (opts.keepStorage !== undefined) {
    const counted = new Set<string>();
    let used = 0;
    for (const r of recs) {
      let size = 0;
      for (const b of r.blobs) {
        if (counted.has(b)) continue;
        size += await store.blobSize(parseDigest(b)).catch(() => 0);
      }
      if (used + size > opts.keepStorage) doomed.add(r.name);
      else {
        used += size;
        for (const b of r.blobs) counted.add(b);
      }
    }
  }
  for (const r of recs) {
    if (opts.usedBefore !== undefined ? r.lastUsed < opts.usedBefore.getTime() : opts.keepStorage === undefined) doomed.add(r.name);
  }
  for (const name of doomed) await unlink(join(store.cacheDir, name)).catch(() => undefined);
  return { ...(await collectGarbage(store, opts.onWait ? { onWait: opts.onWait } : {})), recordsDeleted: doomed.size, records: [...doomed].map((n) => n.slice(0, -'.json'.length)).sort() };
}

async function markLive(store: Store, index: Index): Promise<Live> {
  const blobs = new Set<string>();
  const snapshots = new Set<string>();
  const diffIDHexes = new Set<string>();
  const markManifest = async (desc: Descriptor): Promise<void> => {
    if (blobs.has(desc.digest)) return;
    blobs.add(desc.digest);
    if (desc.mediaType === MediaTypes.ociIndex || desc.mediaType === MediaTypes.dockerManifestList) {
      const nested = await readForGC<Index>(store, desc.digest);
      for (const m of nested.manifests ?? []) if (await store.hasBlob(m.digest)) await markManifest(m);
      return;
    }
    const manifest = await readForGC<Manifest>(store, desc.digest);
    blobs.add(manifest.config.digest);
    for (const l of manifest.layers) blobs.add(l.digest);
    const config = await readForGC<ImageConfig>(store, manifest.config.digest);
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length > 0) for (const c of chainIDsOf(diffIDs)) snapshots.add(hexOf(c));
    for (const d of diffIDs) diffIDHexes.add(hexOf(d));
  };
  for (const m of index.manifests) await markManifest(m);
  const cacheOnly = new Set<string>();
  let cacheRecords = 0;
  for (const rec of await readCacheRecords(store)) {
    cacheRecords++;
    for (const b of rec.blobs) {
      if (!blobs.has(b)) cacheOnly.add(b);
    }
    for (const c of rec.chainIDs) snapshots.add(hexOf(c as Digest));
  }
  for (const b of cacheOnly) blobs.add(b);
  return { blobs, snapshots, diffIDs: diffIDHexes, cacheOnly, cacheRecords };
}

async function readForGC<T>(store: Store, d: Digest): Promise<T> {
  try {
    return await store.readJSONBlob<T>(d);
  } catch (err) {
    throw new StoreError(`garbage collection stopped: cannot read referenced blob ${d}`, {
      code: err instanceof BlobNotFoundError ? 'E_BLOB_NOT_FOUND' : 'E_CORRUPT_BLOB',
      cause: err,
      hint: 'the store is damaged; remove the image that refers to it (tsbuild rmi) and prune again',
    });
  }
}

/** Build cache records: `cache/*.json` files with `blobs` (digests) and optional `chainIDs`. */
async function readCacheRecords(store: Store): Promise<Array<{ blobs: Digest[]; chainIDs: string[] }>> {
  const out: Array<{ blobs: Digest[]; chainIDs: string[] }> = [];
  for (const name of await listDir(store.cacheDir)) {
    if (!name.endsWith('.json')) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(await readFile(join(store.cacheDir, name), 'utf8'));
    } catch {
      continue; // being written (temp+rename makes this rare) or not ours: keeps nothing
    }
    const r = rec as { blobs?: unknown; chainIDs?: unknown };
    const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((d): d is string => typeof d === 'string' && isDigest(d)) : []);
    out.push({ blobs: list(r.blobs).map(parseDigest), chainIDs: list(r.chainIDs) });
  }
  return out;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function sweep(store: Store, live: Live): Promise<PruneReport> {
  const report: PruneReport = { imagesDeleted: [], blobsDeleted: [], snapshotsDeleted: [], reclaimed: 0 };
  for (const name of await listDir(store.blobsDir)) {
    const digest = `sha256:${name}`;
    if (live.blobs.has(digest)) continue;
    const path = join(store.blobsDir, name);
    const size = (await stat(path)).size;
    await unlink(path);
    if (isDigest(digest)) report.blobsDeleted.push(digest);
    report.reclaimed += size;
  }
  for (const name of await listDir(store.snapshotsDir)) {
    if (live.snapshots.has(name)) continue;
    const path = join(store.snapshotsDir, name);
    report.reclaimed += await treeSize(path);
    await rm(path, { recursive: true, force: true });
    report.snapshotsDeleted.push(`sha256:${name}`);
  }
  // recorded layer sizes of layers no image has any more (a build cache hit computes them again)
  const sizesDir = join(store.root, LAYER_SIZES_DIR);
  for (const name of await listDir(sizesDir)) {
    if (!live.diffIDs.has(name)) await unlink(join(sizesDir, name)).catch(() => undefined);
  }
  // gzip block indexes of blobs that are gone
  const blocksDir = join(store.root, GZIP_BLOCKS_DIR);
  for (const name of await listDir(blocksDir)) {
    if (!live.blobs.has(`sha256:${name}`)) await unlink(join(blocksDir, name)).catch(() => undefined);
  }
  return report;
}

/** Bytes of the regular files under `path` (each inode once). */
async function treeSize(path: string, seen = new Set<bigint>()): Promise<number> {
  const st = await lstat(path, { bigint: true });
  if (st.isDirectory()) {
    let sum = 0;
    for (const e of await readdir(path)) sum += await treeSize(join(path, e), seen);
    return sum;
  }
  if (!st.isFile() || seen.has(st.ino)) return 0;
  seen.add(st.ino);
  return Number(st.size);
}

// ---- system df ----

/** One row of `system df`. */
export interface DiskUsageRow {
  type: 'Images' | 'Snapshots' | 'Build Cache';
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

/**
 * Disk usage of the store by kind: images (blobs; active = tagged images; reclaimable = what
 * `prune` would free), snapshots (unpacked layers), build cache (blobs only cache records keep).
 */
export async function systemDf(store: Store): Promise<DiskUsageRow[]> {
  const index = await store.readIndex();
  const tagged = index.manifests.filter(isTag);
  const all = await markLive(store, index);
  const pruned = await markLive(store, { ...index, manifests: tagged });
  let blobBytes = 0;
  let reclaimable = 0;
  let cacheBytes = 0;
  for (const name of await listDir(store.blobsDir)) {
    const size = (await stat(join(store.blobsDir, name))).size;
    const d = `sha256:${name}`;
    if (all.cacheOnly.has(d)) {
      cacheBytes += size;
      continue;
    }
    blobBytes += size;
    if (!pruned.blobs.has(d)) reclaimable += size;
  }
  let snapBytes = 0;
  let snapReclaimable = 0;
  const snaps = await listDir(store.snapshotsDir);
  for (const name of snaps) {
    const size = await treeSize(join(store.snapshotsDir, name));
    snapBytes += size;
    if (!pruned.snapshots.has(name)) snapReclaimable += size;
  }
  const distinct = new Set(index.manifests.map((m) => m.digest));
  return [
    { type: 'Images', total: distinct.size, active: new Set(tagged.map((m) => m.digest)).size, size: blobBytes, reclaimable },
    { type: 'Snapshots', total: snaps.length, active: snaps.filter((s) => pruned.snapshots.has(s)).length, size: snapBytes, reclaimable: snapReclaimable },
    { type: 'Build Cache', total: all.cacheRecords, active: all.cacheRecords, size: cacheBytes, reclaimable: 0 },
  ];
}

