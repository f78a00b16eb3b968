export * from './types.js';
export { parseDigest, isDigest, sha256Of, hashing, chainIDOf, chainIDsOf, type HashingStream } from './digest.js';
export {
  StoreError,
  ImageNotFoundError,
  AmbiguousImageError,
  DigestMismatchError,
  InvalidDigestError,
  UnsafePathError,
  CorruptLayerError,
  BlobNotFoundError,
  LockError,
} from './errors.js';
export { parseReference, referenceProblem, ReferenceError, storedName, type Reference, type StoredName } from './reference.js';
export { canonicalJSON, EncodedJSON } from './json.js';
export { TimeSlices } from './slices.js';
export { compareUtf8, sortUtf8 } from './order.js';
export { writeLayer, layerTarStream, DEFAULT_GZIP_LEVEL, NativeStat, type EntryStat, type LayerTarOptions, type WriteLayerOptions, type WrittenLayer } from './layer-tar.js';
export { applyLayer, type ApplyLayerOptions, type ApplyStats } from './apply.js';
export {
  Store,
  REF_NAME_ANNOTATION,
  type WriteBlobOptions,
  type ResolvedImage,
  type ImageSummary,
  type CommitImageInput,
} from './store.js';
export { ArchiveError } from './archive-errors.js';
export { acquireLock, type HeldLock, type LockOptions } from './lock.js';
export { save, CONTAINERD_NAME_ANNOTATION, type SaveOptions } from './save.js';
export { load, loadFile, type LoadOptions, type LoadedImage } from './load.js';
export { exportImage } from './export.js';
export * from './registry.js';
export { networkReason } from './registry-client.js';
export { importRootfs, applyChanges, ChangeError, type ImportOptions, type ImportedConfig } from './import.js';
export { isImportURL, openTarballURL } from './import-url.js';
export { layerContentSize } from './layer-size.js';
export { reapStaleTemps, mountsUnder, type ReapOptions } from './temps.js';
export { readRepoDigests, REPO_DIGESTS_FILE, type RepoDigestMap } from './repo-digests.js';
export {
  listImages,
  imageContentSize,
  dockerContainerConfig,
  inspectImage,
  imageHistory,
  tagImage,
  removeImage,
  collectGarbage,
  prune,
  pruneCache,
  systemDf,
  ImageConflictError,
  type ImageRow,
  type ImageInspect,
  type DockerContainerConfig,
  type HistoryRow,
  type RemoveResult,
  type PruneReport,
  type ImagePruneReport,
  type ImagePruneOptions,
  type PrunedImage,
  type PruneCacheOptions,
  type GcOptions,
  type PruneCacheReport,
  type DiskUsageRow,
} from './images.js';
