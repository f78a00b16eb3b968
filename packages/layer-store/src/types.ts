/**
 * OCI data types shared by every module of the store (and by its callers).
 * Field names follow the OCI image spec (https://github.com/opencontainers/image-spec).
 * This file is the contract between the store's modules: change it only together with its users.
 */

/** sha256 of stored bytes, `sha256:<64 hex>`. Made only by `parseDigest` / hashing helpers. */
export type Digest = string & { readonly __brand: 'Digest' };
/** sha256 of an uncompressed layer tar, `sha256:<64 hex>`. */
export type DiffID = string & { readonly __brand: 'DiffID' };
/** OCI chain ID of a layer stack, `sha256:<64 hex>`. */
export type ChainID = string & { readonly __brand: 'ChainID' };

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/**
 * The `config` object of an image config, with Docker's extensions (Healthcheck, OnBuild, Shell),
 * as `docker image inspect .Config` shows them. Optional keys are omitted when unset.
 */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The image config blob (application/vnd.oci.image.config.v1+json). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: DiffID[] };
  history?: HistoryEntry[];
}

/** A stored, compressed layer. `open()` returns a fresh stream of the compressed bytes on every call. */
export interface Layer {
  readonly digest: Digest;
  readonly diffID: DiffID;
  readonly size: number;
  readonly mediaType: string;
  open(): import('node:stream').Readable;
}

/** Options every long operation takes. */
export interface Cancellable {
  signal?: AbortSignal;
}
