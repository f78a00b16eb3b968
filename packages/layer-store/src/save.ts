/**
 * `save`: images as ONE tarball that both `docker load` and OCI readers take, in Docker 25's
 * layout: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) plus Docker's
 * `manifest.json` and `repositories`, whose Config and Layers paths point into `blobs/sha256/`.
 * Docker 20.10's `docker load` accepts that (it detects gzip'd layers and checks their diffIDs);
 * `skopeo` reads it as `docker-archive:` and as `oci-archive:`.
 */
import type { Writable } from 'node:stream';
import { writeArchive, type ArchiveMember } from './archive-tar.js';
import { hexOf } from './digest.js';
import { BlobNotFoundError } from './errors.js';
import { canonicalJSON } from './json.js';
import { parseReference, type Reference } from './reference.js';
import { REF_NAME_ANNOTATION, type ResolvedImage, type Store } from './store.js';
import { MediaTypes, type Cancellable, type Descriptor, type Index } from './types.js';

/** Annotation containerd (and Docker ≥ 25) use for an image's full name in an OCI index. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

/** Options of `save`. */
export interface SaveOptions extends Cancellable {
  /**
   * 'docker' (default): OCI layout plus `manifest.json`/`repositories`, read by `docker load` and
   * OCI tools alike. 'oci': the OCI layout alone.
   */
  format?: 'docker' | 'oci';
}

interface SavedImage {
  image: ResolvedImage;
  tags: Reference[];
}

/**
 * Writes the images named by `refs` (references, image IDs or ID prefixes) as one tar to `out`,
 * and ends `out`. Blobs stream from the store into the tar; the tar's bytes depend only on the
 * images and tags (entries sorted, mtime 0, uid/gid 0). An image named by a reference is saved
 * with that tag; one named by ID is saved untagged, as Docker does; a repository name without a
 * tag (`app`) saves every tag of that repository, as Docker 20.10 does.
 * @throws ImageNotFoundError / AmbiguousImageError before anything is written; BlobNotFoundError
 * or stream errors while writing (then `out` is destroyed with the error).
 */
export async function save(store: Store, refs: readonly string[], out: Writable, opts: SaveOptions = {}): Promise<void> {
  const images = await resolveAll(store, refs);
  const members = archiveMembers(store, images, opts.format ?? 'docker');
  await writeArchive(members, out, { signal: opts.signal });
}

async function resolveAll(store: Store, refs: readonly string[]): Promise<SavedImage[]> {
  const byManifest = new Map<string, SavedImage>();
  const add = (image: ResolvedImage, tag: Reference | undefined): void => {
    const saved = byManifest.get(image.manifestDescriptor.digest) ?? { image, tags: [] };
    byManifest.set(image.manifestDescriptor.digest, saved);
    if (tag && !saved.tags.some((t) => t.full() === tag.full())) saved.tags.push(tag);
  };
  for (const input of refs) {
    // as Docker 20.10: a repository name without a tag saves every tag of that repository (an ID
    // prefix when the repository has none)
    const tags = await repositoryTags(store, input);
    if (tags.length > 0) {
      for (const t of tags) add(await store.resolveImage(t.full()), t);
      continue;
    }
    const image = await store.resolveImage(input);
    add(image, tagNamed(input, image));
  }
  return [...byManifest.values()];
}

/** The tags of repository `input` when it is a name without tag or digest (`app`), sorted; else none. */
async function repositoryTags(store: Store, input: string): Promise<Reference[]> {
  let ref: Reference;
  try {
    ref = parseReference(input);
  } catch {
    return [];
  }
  if (ref.digest !== undefined || input.lastIndexOf(':') > input.lastIndexOf('/')) return [];
  const out = new Map<string, Reference>();
  for (const m of (await store.readIndex()).manifests) {
    const stored = m.annotations?.[REF_NAME_ANNOTATION];
    if (stored === undefined) continue;
    let r: Reference;
    try {
      r = parseReference(stored);
    } catch {
      continue;
    }
    if (r.name === ref.name && r.tag !== undefined && r.digest === undefined) out.set(r.full(), r);
  }
  return [...out.values()].sort((a, b) => (a.full() < b.full() ? -1 : 1));
}

/** The tag `input` names, if it is a reference the image carries (not an ID or digest). */
function tagNamed(input: string, image: ResolvedImage): Reference | undefined {
  let ref: Reference;
  try {
    ref = parseReference(input);
  } catch {
    return undefined;
  }
  return ref.digest === undefined && image.refs.includes(ref.full()) ? ref : undefined;
}

function* archiveMembers(store: Store, images: SavedImage[], format: 'docker' | 'oci'): Generator<ArchiveMember> {
  const blobs = new Map<string, Descriptor>();
  for (const { image } of images) {
    for (const d of [image.manifestDescriptor, image.manifest.config, ...image.manifest.layers]) blobs.set(d.digest, d);
  }
  yield { type: 'directory', name: 'blobs' };
  yield { type: 'directory', name: 'blobs/sha256' };
  for (const d of [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))) {
    yield { type: 'file', name: blobName(d), size: d.size, path: store.blobPath(d.digest), missing: (cause) => new BlobNotFoundError(d.digest, { cause }) };
  }
  yield { type: 'file', name: 'index.json', data: Buffer.from(canonicalJSON(ociIndex(images), 'index')) };
  if (format === 'docker') yield { type: 'file', name: 'manifest.json', data: Buffer.from(JSON.stringify(dockerManifest(images))) };
  yield { type: 'file', name: 'oci-layout', data: Buffer.from(canonicalJSON({ imageLayoutVersion: '1.0.0' })) };
  // as Docker 20.10's save: no `repositories` file when no image has a tag (saved by ID)
  const repos = repositories(images);
  if (format === 'docker' && Object.keys(repos).length > 0) yield { type: 'file', name: 'repositories', data: Buffer.from(canonicalJSON(repos)) };
}

function blobName(d: Descriptor): string {
  return `blobs/sha256/${hexOf(d.digest)}`;
}

/** index.json: one entry per tag (full name in both annotations), one bare entry for an untagged image. */
function ociIndex(images: SavedImage[]): Index {
  const manifests: Descriptor[] = [];
  for (const { image, tags } of images) {
    const { mediaType, digest, size } = image.manifestDescriptor;
    if (tags.length === 0) manifests.push({ mediaType, digest, size });
    for (const t of tags) {
      manifests.push({ mediaType, digest, size, annotations: { [CONTAINERD_NAME_ANNOTATION]: t.full(), [REF_NAME_ANNOTATION]: t.full() } });
    }
  }
  return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests };
}

/** Docker's manifest.json; RepoTags null for an untagged image, as Docker writes it. */
function dockerManifest(images: SavedImage[]): Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> {
  return images.map(({ image, tags }) => ({
    Config: blobName(image.manifest.config),
    RepoTags: tags.length === 0 ? null : tags.map((t) => t.familiar()),
    Layers: image.manifest.layers.map(blobName),
  }));
}

/** Docker's legacy `repositories` file: familiar name → tag → top layer ID. */
function repositories(images: SavedImage[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const { image, tags } of images) {
    const top = image.manifest.layers[image.manifest.layers.length - 1];
    if (!top) continue;
    for (const t of tags) (out[t.familiarName()] ??= {})[t.tag ?? 'latest'] = hexOf(top.digest);
  }
  return out;
}
