/**
 * Pull and push of images against OCI distribution registries
 * (https://github.com/opencontainers/distribution-spec/blob/main/spec.md), as `docker pull` /
 * `docker push` do. Blobs stream between the network and the store, every byte verified against
 * its digest; manifests are stored and sent as the exact bytes they were, so digests survive.
 */
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressionOf, decompressor, peek } from './archive-stream.js';
import { hashing, isDigest, sha256Of } from './digest.js';
import { DigestMismatchError, ImageNotFoundError, StoreError } from './errors.js';
import { recordContentSize } from './layer-size.js';
import { ContentSizeScanner } from './layer-size-scan.js';
import { parseReference, type Reference } from './reference.js';
import { readRepoDigests, recordRepoDigest, repositoryOf } from './repo-digests.js';
import {
  RegistryClient,
  RegistryError,
  networkReason,
  parseJSON,
  readSmallBody,
  type RegistryCredentials,
} from './registry-client.js';
import { REF_NAME_ANNOTATION, type Store } from './store.js';
import { MediaTypes, type Cancellable, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from './types.js';

/** What pull and push report while they work (the CLI renders these). */
export type RegistryEvent =
  /** The manifest (or index) the reference names. */
  | { type: 'resolved'; ref: string; digest: Digest; mediaType: string }
  /**
   * Push only, once the registry answered: the layers about to be pushed (diffIDs, top layer
   * first), as dockerd lists them ('ID: Preparing') before any is sent.
   */
  | { type: 'preparing'; ids: string[] }
  /**
   * A blob was handled: `exists` = already there (in the store for pull, in the registry for
   * push), `done` = downloaded or uploaded. `id` is the layer's diffID for push, the digest
   * otherwise (what Docker shows).
   */
  | {
      type: 'blob';
      kind: 'config' | 'layer';
      digest: Digest;
      id: string;
      size: number;
      /** `mounted`: push only, linked from another repository of the same registry (`from`). */
      status: 'exists' | 'done' | 'mounted';
      /** For `mounted`: the repository path it came from (`x`, `library/busybox`). */
      from?: string;
    };

/** Options shared by pull, push and login. */
export interface RegistryOptions extends Cancellable {
  /** Credentials for the registry; anonymous when absent. */
  auth?: RegistryCredentials | undefined;
  /** Plain HTTP for a registry that is not on loopback (loopback always uses HTTP). */
  insecure?: boolean | undefined;
  /** Progress sink. */
  onEvent?: ((e: RegistryEvent) => void) | undefined;
}

/** Options of `pull`. */
export interface PullOptions extends RegistryOptions {
  /** Platform to pick from an index / manifest list; the host's by default. */
  platform?: Platform | undefined;
}

/** What `pull` did. */
export interface PullResult {
  /** The full reference that was tagged (`docker.io/library/hello:latest`, or `name@sha256:…`). */
  ref: string;
  /** Image ID (config digest). */
  id: Digest;
  /** The platform manifest now in the store. */
  manifest: Descriptor;
  /** Digest the registry knows the image by (the index's when the reference named an index). */
  digest: Digest;
  /** False when the reference already pointed at this manifest ("Image is up to date"). */
  updated: boolean;
}

/** What `push` did. */
export interface PushResult {
  /** Full reference pushed. */
  ref: string;
  /** Digest of the manifest as the registry now has it. */
  digest: Digest;
  /** Manifest size in bytes. */
  size: number;
}

export { RegistryError, parseAuthChallenge, isLoopbackRegistry, type RegistryCredentials, type RegistryErrorDetail, type AuthChallenge } from './registry-client.js';
export { findCredentials, saveCredentials, removeCredentials, registryKey, CredentialsError } from './registry-credentials.js';

const MANIFEST_ACCEPT = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList].join(', ');
const BLOB_CONCURRENCY = 3;
const MAX_MANIFEST = 4 << 20;

/** The platform of this process, in OCI's words (linux/amd64 on x64). */
export function hostPlatform(): Platform {
  const arch: Record<string, Platform> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return arch[process.arch] ?? { os: 'linux', architecture: process.arch };
}

/**
 * Picks the manifest for `platform` from an index / manifest list: same os and architecture,
 * an exact variant preferred; an entry without variant matches (arm64 images rarely say v8).
 * @returns undefined when none matches.
 */
export function selectPlatformManifest(index: Index, platform: Platform): Descriptor | undefined {
  const candidates = index.manifests.filter(
    (m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture && (m.mediaType === undefined || isManifestType(m.mediaType)),
  );
  return (
    candidates.find((m) => (m.platform?.variant ?? '') === (platform.variant ?? '')) ??
    candidates.find((m) => m.platform?.variant === undefined || platform.variant === undefined)
  );
}

/**
 * Pulls `ref` from its registry into the store and tags it: resolves the manifest (an index or
 * manifest list resolves to the `platform` entry), fetches the config and the layers not yet in
 * the store, verifying each blob's digest and size as it streams in, stores the manifest's exact
 * bytes, then points the reference at it. Nothing is tagged unless everything verified (blobs
 * fetched before a failure stay as unreferenced garbage for `prune`).
 * @throws ReferenceError for a bad reference; RegistryError (code E_REGISTRY: not found,
 * unauthorized, unreachable, malformed manifest, no platform match); DigestMismatchError when the
 * registry served bytes that are not what their digest promises.
 */
export async function pull(store: Store, ref: string, opts: PullOptions = {}): Promise<PullResult> {
  // blobs written before the index names them: no garbage collection meanwhile
  return store.withLease(() => pullImage(store, ref, opts), opts);
}

async function pullImage(store: Store, ref: string, opts: PullOptions): Promise<PullResult> {
  const given = parseReference(ref);
  // dockerd pulls `name:tag@digest` by the digest alone: the tag is neither fetched nor stored
  const r = given.digest !== undefined && given.tag !== undefined ? parseReference(`${given.name}@${given.digest}`) : given;
  const client = new RegistryClient(r.domain, `repository:${r.path}:pull`, opts);
  const top = await fetchManifest(client, r, r.digest ?? (r.tag as string));
  opts.onEvent?.({ type: 'resolved', ref: r.full(), digest: top.digest, mediaType: top.mediaType });
  let chosen = top;
  if (isIndexType(top.mediaType)) {
    const platform = opts.platform ?? hostPlatform();
    const desc = selectPlatformManifest(asIndex(top.json, r), platform);
    if (!desc) {
      // dockerd's words exactly; the reference goes to the hint
      throw new RegistryError(`no matching manifest for ${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''} in the manifest list entries`, {
        hint: `${r.familiar()} is not built for this platform; --platform picks another`,
      });
    }
    chosen = await fetchManifest(client, r, desc.digest);
    if (isIndexType(chosen.mediaType)) throw new RegistryError(`${r.familiar()}: nested indexes are not supported`);
  }
  const manifest = asManifest(chosen.json, r);
  await fetchBlobs(store, client, r, manifest, opts);
  const manifestDesc: Descriptor = { mediaType: chosen.mediaType, digest: chosen.digest, size: chosen.bytes.length };
  await store.writeBufferBlob(chosen.bytes, { expected: chosen.digest, ...(opts.signal ? { signal: opts.signal } : {}) });
  const tagRef = r.full();
  const id = manifest.config.digest;
  const before = (await store.readIndex()).manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tagRef);
  // dockerd's "up to date": the reference already named this image ID; a digest reference also
  // names it as a recorded RepoDigest (a pull by tag records repo@digest, as dockerd's reference
  // store holds it), and then nothing is added to the index
  const known = before !== undefined ? await configDigestOf(store, before.digest) : r.digest !== undefined && (await readRepoDigests(store)).get(tagRef) === id && (await store.findImage(id)) !== undefined ? id : undefined;
  const updated = known !== id;
  if (before !== undefined ? before.digest !== manifestDesc.digest : updated) await store.tag(tagRef, manifestDesc);
  // Docker's RepoDigests: the repository with the digest the registry knows the image by
  await recordRepoDigest(store, r.name, top.digest, id);
  return { ref: tagRef, id, manifest: manifestDesc, digest: top.digest, updated };
}

async function configDigestOf(store: Store, manifest: Digest): Promise<Digest | undefined> {
  try {
    return (await store.readJSONBlob<Manifest>(manifest)).config?.digest;
  } catch (err) {
    if (err instanceof StoreError) return undefined;
    throw err;
  }
}


/**
 * Pushes the image `ref` names in the store to the registry it names: each layer and the config
 * (HEAD first; uploaded with POST + monolithic PUT `?digest=` only when missing, streamed from the
 * store), then the manifest's exact stored bytes by tag.
 * @throws ReferenceError; ImageNotFoundError when the store has no such image; RegistryError
 * (unauthorized with a login hint, unreachable, refused upload).
 */
export async function push(store: Store, ref: string, opts: RegistryOptions = {}): Promise<PushResult> {
  const r = parseReference(ref);
  if (r.digest !== undefined) {
    throw new RegistryError(`cannot push a digest reference: ${ref}`, { hint: 'push a tag (name:tag); tag the image first with tsbuild tag' });
  }
  let image;
  try {
    image = await store.resolveImage(r.full());
  } catch (err) {
    if (err instanceof ImageNotFoundError) throw new PushSourceNotFoundError(r, err);
    throw err;
  }
  const client = new RegistryClient(r.domain, `repository:${r.path}:pull,push`, opts);
  const blobs = [
    ...image.manifest.layers.map((l, i) => ({ desc: l, kind: 'layer' as const, id: image.config.rootfs.diff_ids[i] ?? l.digest })),
    { desc: image.manifest.config, kind: 'config' as const, id: image.manifest.config.digest },
  ];
  // the registry is reached (and its authentication done) before the layers are listed, as dockerd
  await client.ping();
  opts.onEvent?.({ type: 'preparing', ids: blobs.filter((b) => b.kind === 'layer').map((b) => b.id).reverse() });
  const sources = await mountSources(store, r);
  await eachLimit(blobs, BLOB_CONCURRENCY, async (b) => {
    const mountFrom = sources.get(b.desc.digest);
    const status = await pushBlob(store, client, r, b.desc, mountFrom);
    opts.onEvent?.({ type: 'blob', kind: b.kind, digest: b.desc.digest, id: b.id, size: b.desc.size, status, ...(status === 'mounted' && mountFrom !== undefined ? { from: mountFrom } : {}) });
  });
  const desc = image.manifestDescriptor;
  const bytes = await readStoredManifest(store, desc.digest);
  const res = await client.request('PUT', `/v2/${r.path}/manifests/${r.tag}`, {
    headers: { 'Content-Type': desc.mediaType ?? MediaTypes.ociManifest },
    body: bytes,
    ok: [200, 201, 202],
    what: `pushing manifest ${r.familiar()}`,
  });
  await res.body?.cancel();
  const answered = res.headers.get('docker-content-digest');
  if (answered !== null && answered.startsWith('sha256:') && answered !== desc.digest) {
    throw new RegistryError(`pushing manifest ${r.familiar()}: the registry stored it as ${answered}, not ${desc.digest}`, { hint: 'the registry rewrote the manifest' });
  }
  await recordRepoDigest(store, r.name, desc.digest, image.id);
  return { ref: r.full(), digest: desc.digest, size: bytes.length };
}

/** `push` of a reference the store has no image for: dockerd 20.10's words (its familiar name). */
class PushSourceNotFoundError extends ImageNotFoundError {
  constructor(r: Reference, cause: ImageNotFoundError) {
    super(r.familiar(), { hint: `no image in the store is tagged ${r.familiar()}; build one with -t or 'tsbuild tag' one`, cause });
    this.message = `An image does not exist locally with the tag: ${r.familiarName()}`;
  }
}

/**
 * Checks credentials against a registry the way `docker login` does: `GET /v2/`, then the
 * authentication it asks for (Basic, or a token from its token server).
 * @param domain registry host[:port] (`docker.io` for Docker Hub).
 * @throws RegistryError (status 401 when the credentials are refused; unreachable registry).
 */
export async function checkLogin(domain: string, opts: RegistryOptions = {}): Promise<void> {
  await new RegistryClient(domain, undefined, opts).ping();
}

interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  json: unknown;
}

async function fetchManifest(client: RegistryClient, r: Reference, reference: string): Promise<FetchedManifest> {
  const what = `${r.name}:${reference}`.replace(/:sha256:/, '@sha256:');
  let res: Response;
  try {
    res = await client.request('GET', `/v2/${r.path}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT }, ok: [200], what: `fetching manifest ${what}` });
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) {
      const detail = err.errors.map((e) => `${e.code.toLowerCase().replace(/_/g, ' ')}: ${e.message}`).join('; ') || 'not found';
      throw new RegistryError(`manifest for ${displayRef(r, reference)} not found: ${detail}`, {
        status: 404,
        errors: err.errors,
        hint: `check the name and tag; the registry ${r.domain} has no such image`,
        cause: err,
      });
    }
    throw err;
  }
  const bytes = await readSmallBody(res, MAX_MANIFEST, `manifest ${what}`);
  const digest = sha256Of(bytes);
  if (isDigest(reference) && digest !== reference) {
    throw new DigestMismatchError({ expected: reference, actual: digest, what: `manifest ${what} from ${r.domain}` });
  }
  const header = res.headers.get('docker-content-digest');
  if (header !== null && header.startsWith('sha256:') && header !== digest) {
    throw new DigestMismatchError({ expected: header, actual: digest, what: `manifest ${what} (Docker-Content-Digest)` });
  }
  const json = parseJSON(bytes, `manifest ${what}`);
  const declared = typeof json === 'object' && json !== null ? (json as { mediaType?: unknown }).mediaType : undefined;
  const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const mediaType = typeof declared === 'string' && declared !== '' ? declared : contentType;
  if (!isManifestType(mediaType) && !isIndexType(mediaType)) {
    throw new RegistryError(`${what}: unsupported manifest media type "${mediaType}"`, {
      hint: 'only OCI and Docker schema 2 manifests (and their indexes) are supported',
    });
  }
  return { bytes, digest, mediaType, json };
}

function displayRef(r: Reference, reference: string): string {
  const name = r.familiarName();
  return isDigest(reference) ? `${name}@${reference}` : `${name}:${reference}`;
}

function isManifestType(t: string): boolean {
  return t === MediaTypes.ociManifest || t === MediaTypes.dockerManifest;
}

function isIndexType(t: string): boolean {
  return t === MediaTypes.ociIndex || t === MediaTypes.dockerManifestList;
}

function malformed(r: Reference, why: string): RegistryError {
  return new RegistryError(`malformed manifest for ${r.familiar()}: ${why}`, { hint: 'the image in the registry is damaged or not a container image' });
}

function asDescriptor(v: unknown, r: Reference, where: string): Descriptor {
  if (typeof v !== 'object' || v === null) throw malformed(r, `${where} is not a descriptor`);
  const d = v as { mediaType?: unknown; digest?: unknown; size?: unknown };
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw malformed(r, `${where} has no sha256 digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw malformed(r, `${where} has no valid size`);
  if (typeof d.mediaType !== 'string') throw malformed(r, `${where} has no media type`);
  return v as Descriptor;
}

function asIndex(json: unknown, r: Reference): Index {
  const manifests = (json as { manifests?: unknown }).manifests;
  if (!Array.isArray(manifests)) throw malformed(r, 'index without manifests');
  manifests.forEach((m, i) => asDescriptor(m, r, `manifests[${i}]`));
  return json as Index;
}

function asManifest(json: unknown, r: Reference): Manifest {
  const m = json as { schemaVersion?: unknown; config?: unknown; layers?: unknown };
  if (m.schemaVersion !== 2) throw malformed(r, `schemaVersion ${String(m.schemaVersion)} (only 2 is supported)`);
  asDescriptor(m.config, r, 'config');
  if (!Array.isArray(m.layers)) throw malformed(r, 'no layers');
  m.layers.forEach((l, i) => asDescriptor(l, r, `layers[${i}]`));
  return json as Manifest;
}

async function fetchBlobs(store: Store, client: RegistryClient, r: Reference, manifest: Manifest, opts: PullOptions): Promise<void> {
  const have = async (desc: Descriptor): Promise<'exists' | 'done'> => {
    if (await store.hasBlob(desc.digest)) return 'exists';
    await fetchBlob(store, client, r, desc, opts.signal);
    return 'done';
  };
  const configStatus = await have(manifest.config);
  opts.onEvent?.({ type: 'blob', kind: 'config', digest: manifest.config.digest, id: manifest.config.digest, size: manifest.config.size, status: configStatus });
  const config = await store.readJSONBlob<ImageConfig>(manifest.config.digest);
  const diffIDs = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIDs) || diffIDs.length !== manifest.layers.length || !diffIDs.every((d) => typeof d === 'string' && isDigest(d))) {
    throw malformed(r, `the image config lists ${Array.isArray(diffIDs) ? diffIDs.length : 0} valid layer diffIDs but the manifest ${manifest.layers.length} layers`);
  }
  await eachLimit(
    manifest.layers.map((desc, i) => ({ desc, diffID: diffIDs[i]! })),
    BLOB_CONCURRENCY,
    async ({ desc, diffID }) => {
      const status = await have(desc);
      // Snapshots are keyed by chain IDs made of diffIDs: a config lying about them would plant
      // wrong content under an honest image's key. Docker checks them on pull too.
      const { diffID: actual, contentSize } = await readLayerBlob(store, desc.digest, opts.signal).catch((err: unknown) => {
        // zlib's 'unexpected end of file' of a truncated layer is not ours to let out
        if (err instanceof StoreError || opts.signal?.aborted) throw err;
        throw new RegistryError(`layer ${desc.digest} of ${r.familiar()} is damaged: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
          hint: 'the registry holds a layer that does not decompress; push the image again',
        });
      });
      if (actual !== diffID) throw new DigestMismatchError({ expected: diffID, actual, what: `diffID of layer ${desc.digest} of ${r.familiar()}` });
      // Counted in the same pass, so `images` need not decompress the layer again.
      if (contentSize !== undefined) await recordContentSize(store, diffID, contentSize);
      opts.onEvent?.({ type: 'blob', kind: 'layer', digest: desc.digest, id: desc.digest, size: desc.size, status });
    },
  );
}

/**
 * Reads a stored layer blob through once (gzip and zstd detected by magic): the sha256 of its
 * uncompressed bytes, and its content size (see `layer-size.ts`; undefined when they are not a
 * whole tar).
 */
async function readLayerBlob(store: Store, digest: Digest, signal: AbortSignal | undefined): Promise<{ diffID: string; contentSize: number | undefined }> {
  const { head, rest } = await peek(store.openBlob(digest), 4);
  const h = hashing();
  const scanner = new ContentSizeScanner();
  const sink = new Writable({
    write: (c: Buffer, _e, cb) => {
      scanner.update(c);
      cb();
    },
  });
  await pipeline(rest, decompressor(compressionOf(head)), h, sink, signal ? { signal } : {});
  return { diffID: h.digest(), contentSize: scanner.size };
}

async function fetchBlob(store: Store, client: RegistryClient, r: Reference, desc: Descriptor, signal: AbortSignal | undefined): Promise<void> {
  const res = await client.request('GET', `/v2/${r.path}/blobs/${desc.digest}`, { ok: [200], what: `fetching blob ${desc.digest} of ${r.familiarName()}` });
  if (!res.body) throw new RegistryError(`fetching blob ${desc.digest}: empty response`, { status: res.status });
  const what = `fetching blob ${desc.digest} of ${r.domain}/${r.path}`;
  // a length other than the descriptor's is wrong content, or a body that never ends (a lying
  // length on a connection left open hung the pull, as it hangs dockerd)
  const declared = res.headers.get('content-length');
  if (declared !== null && res.headers.get('content-encoding') === null && Number(declared) !== desc.size) {
    await res.body?.cancel().catch(() => undefined);
    throw new RegistryError(`${what}: the registry sends ${declared} bytes, the manifest says ${desc.size}`, {
      status: res.status,
      hint: 'the registry serves other content than the manifest describes',
    });
  }
  const body = Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]);
  const limited = sizeLimit(desc.size);
  // pipe() does not forward errors: a connection that breaks mid-body would be an uncaught
  // 'error' on `body` (the process died) instead of a failed write
  body.once('error', (err) => limited.destroy(signal?.aborted ? err : new RegistryError(`${what}: ${networkReason(err, new URL(res.url || client.baseURL))}`, { cause: err })));
  // writeBlob reports it; until its pipeline listens (it opens a temp file first) this one does
  limited.on('error', () => undefined);
  body.pipe(limited);
  try {
    await store.writeBlob(limited, { expected: desc.digest, expectedSize: desc.size, ...(signal ? { signal } : {}) });
  } catch (err) {
    body.destroy();
    if (err instanceof DigestMismatchError) {
      throw new DigestMismatchError({ expected: err.expected, actual: err.actual, what: `blob ${desc.digest} from ${r.domain}/${r.path}` }, { cause: err });
    }
    throw err;
  }
}

/** Fails a stream that carries more than `max` bytes (a registry must not fill the disk). */
function sizeLimit(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      seen += chunk.length;
      if (seen > max) cb(new DigestMismatchError({ expected: `${max} bytes`, actual: `more than ${max} bytes`, what: 'blob from registry' }));
      else cb(null, chunk);
    },
  });
}

/**
 * For each blob of the images recorded in repositories of the same registry (repository digests
 * of pushes and pulls), the repository to mount it from instead of sending it again, as dockerd's
 * per-layer metadata does: an image sharing only its base layers with one pushed elsewhere mounts
 * those. Among several, the repository whose path shares the most leading components with the
 * target's (dockerd's likeness order; it also prefers the most recent, which we do not record),
 * then by name.
 */
async function mountSources(store: Store, r: Reference): Promise<Map<string, string>> {
  const pathsOf = new Map<Digest, Set<string>>();
  for (const [canonical, id] of await readRepoDigests(store)) {
    const x = parseReference(repositoryOf(canonical));
    if (x.domain !== r.domain || x.path === r.path) continue;
    (pathsOf.get(id) ?? pathsOf.set(id, new Set()).get(id)!).add(x.path);
  }
  const likeness = (p: string): number => {
    const a = p.split('/');
    const b = r.path.split('/');
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return n;
  };
  const best = new Map<string, string>();
  for (const [id, paths] of pathsOf) {
    const image = await store.findImage(id);
    if (!image) continue;
    for (const blob of [image.manifest.config, ...image.manifest.layers]) {
      for (const p of paths) {
        const cur = best.get(blob.digest);
        if (cur === undefined || likeness(p) > likeness(cur) || (likeness(p) === likeness(cur) && p < cur)) best.set(blob.digest, p);
      }
    }
  }
  return best;
}

async function pushBlob(store: Store, client: RegistryClient, r: Reference, desc: Descriptor, mountFrom: string | undefined): Promise<'exists' | 'done' | 'mounted'> {
  const head = await client.request('HEAD', `/v2/${r.path}/blobs/${desc.digest}`, { ok: [200, 404], what: `checking blob ${desc.digest}`, bareAuthError: true });
  await head.body?.cancel();
  if (head.status === 200) return 'exists';
  const size = await store.blobSize(desc.digest);
  if (size !== desc.size) throw new StoreError(`blob ${desc.digest} is ${size} bytes, the manifest says ${desc.size}`, { code: 'E_CORRUPT_BLOB', hint: 'the store is damaged' });
  // a cross-repository mount: 201 = mounted; 202 = not possible, an upload session instead
  const query = mountFrom !== undefined ? `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(mountFrom)}` : '';
  const start = await client.request('POST', `/v2/${r.path}/blobs/uploads/${query}`, { ok: mountFrom !== undefined ? [201, 202] : [202], what: `starting upload of ${desc.digest}` });
  await start.body?.cancel();
  if (start.status === 201) return 'mounted';
  const location = start.headers.get('location');
  if (!location) throw new RegistryError(`starting upload of ${desc.digest}: the registry gave no Location`, { status: start.status });
  const url = new URL(location, client.baseURL);
  url.searchParams.set('digest', desc.digest);
  const put = await client.request('PUT', url.toString(), {
    body: { open: () => store.openBlob(desc.digest), size, contentType: 'application/octet-stream' },
    ok: [201, 204],
    what: `uploading blob ${desc.digest}`,
  });
  await put.body?.cancel();
  return 'done';
}

async function readStoredManifest(store: Store, digest: Digest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of store.openBlob(digest)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  const actual = sha256Of(bytes);
  if (actual !== digest) throw new DigestMismatchError({ expected: digest, actual, what: 'stored manifest' });
  return bytes;
}

/** Runs `fn` on every item, at most `limit` at once; the first failure rejects (others finish). */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        stop = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
}

