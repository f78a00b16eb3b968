export { SandboxError } from './errors.js';
export { mountRootfs, type Rootfs, type MountRootfsOptions } from './overlay.js';
export { type RunSpec, type SandboxMount, ociConfig, type OciConfig, type OciConfigInput, DEFAULT_CAPABILITIES } from './spec.js';
export { detectIsolation, type Isolation } from './detect.js';
export { runInSandbox, type SandboxOptions, type SandboxResult } from './run.js';
export { resolveChown, resolveUser, type ResolvedUser } from './user.js';
export { removeSandboxArtifacts } from './cleanup.js';
export type { HostEntry } from './host-files.js';
export { releaseStaleDir, reapStaleWork } from './stale.js';
