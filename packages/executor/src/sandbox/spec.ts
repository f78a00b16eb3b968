import type { HostEntry, HostFiles } from './host-files.js';

/** A bind or tmpfs mount added to the sandbox (RUN --mount). */
export interface SandboxMount {
  type: 'bind' | 'tmpfs';
  /** Host path (bind only). */
  source?: string;
  /** Absolute path inside the container. */
  destination: string;
  readonly?: boolean;
  /** Extra mount options (e.g. `size=64m`, `mode=1777`). */
  options?: string[];
}

/** What a RUN step runs and how. */
export interface RunSpec {
  /** Merged rootfs (see mountRootfs). */
  rootfs: string;
  /** argv; args[0] is looked up through the PATH in `env` inside the container. */
  args: string[];
  /** `KEY=value` entries, exactly the container's environment. */
  env: string[];
  /** Absolute working directory inside the container; created (root-owned) if missing. */
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  /** `host` shares the host's network namespace; `none` gets its own with only `lo` (up). */
  network: 'host' | 'none';
  /** extra /etc/hosts entries (`--add-host`) */
  extraHosts?: readonly HostEntry[];
  /** UTS hostname; default: a short random id (like Docker's container id). */
  hostname?: string;
  mounts?: SandboxMount[];
  /** Memory limit in bytes (OCI isolation only). */
  memoryBytes?: number;
  /** CPU limit in cores, e.g. 1.5 (OCI isolation only). */
  cpus?: number;
  /** Receives the step's output as it comes; chunks are not line-aligned. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** Aborting kills the step and everything it started, cleans up, and rejects. */
  signal?: AbortSignal;
}

/** Docker's default capability set (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
] as const;

/** Docker's default masked and read-only /proc and /sys paths (moby oci/defaults.go). */
export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Docker's RLIMIT_NOFILE for containers. */
export const DEFAULT_NOFILE = 1048576;

/** The character devices every sandbox gets in its /dev (path, major, minor). */
export const DEFAULT_DEVICES: readonly [string, number, number][] = [
  ['/dev/null', 1, 3], ['/dev/zero', 1, 5], ['/dev/full', 1, 7],
  ['/dev/random', 1, 8], ['/dev/urandom', 1, 9], ['/dev/tty', 5, 0],
];

/** JSON shape of the parts of an OCI runtime config we produce (runtime-spec v1.0.2). */
export type OciConfig = Record<string, unknown>;

export interface OciConfigInput {
  spec: RunSpec;
  hostname: string;
  hostFiles: HostFiles;
  /** Relative cgroup path (joined by runc to its own cgroup). */
  cgroupsPath: string;
  /** Memory limit runc should set on the container cgroup (omit when a parent cgroup holds it). */
  memoryLimit?: number;
  /** RLIMIT_NOFILE (soft = hard); Docker's 1048576 unless the caller cannot raise it that far. */
  nofile?: number;
}

/**
 * Builds the OCI runtime config (config.json) for one RUN step: Docker's defaults for mounts
 * (with the read-only /sys/fs/cgroup), capabilities, masked paths and devices, no_new_privs off; pid/ipc/uts/mount namespaces (+ network for `none`).
 * Pure: same input, same object.
 */
export function ociConfig(input: OciConfigInput): OciConfig {
  const { spec, hostname, hostFiles } = input;
  const hostFileOpts = ['rbind', 'rprivate'];
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (spec.network === 'none') namespaces.push({ type: 'network' });
  const resources: Record<string, unknown> = {
    devices: [
      { allow: false, access: 'rwm' },
      ...DEFAULT_DEVICES.map(([, major, minor]) => ({ allow: true, type: 'c', major, minor, access: 'rwm' })),
      { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
      { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
      { allow: true, type: 'c', access: 'm' },
      { allow: true, type: 'b', access: 'm' },
    ],
  };
  if (input.memoryLimit !== undefined) resources['memory'] = { limit: input.memoryLimit, swap: input.memoryLimit };
  if (spec.cpus !== undefined) resources['cpu'] = { quota: Math.max(1000, Math.round(spec.cpus * 100000)), period: 100000 };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: spec.user.uid, gid: spec.user.gid, additionalGids: spec.user.additionalGids },
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: input.nofile ?? DEFAULT_NOFILE, soft: input.nofile ?? DEFAULT_NOFILE }],
      // Docker's default (no --security-opt no-new-privileges): setuid binaries work, so
      // `USER app` + `RUN sudo …` builds as it does with Docker
      noNewPrivileges: false,
    },
    root: { path: spec.rootfs, readonly: false },
    hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      // read-only cgroup fs as Docker mounts it (runc makes the v1 tmpfs + hierarchies, or cgroup2)
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
      // writable, as Docker mounts them (rbind, rprivate): a step may append to /etc/hosts; the
      // files are this step's copies outside the rootfs, so nothing written reaches a layer
      { destination: '/etc/resolv.conf', type: 'bind', source: hostFiles.resolvConf, options: hostFileOpts },
      { destination: '/etc/hostname', type: 'bind', source: hostFiles.hostname, options: hostFileOpts },
      { destination: '/etc/hosts', type: 'bind', source: hostFiles.hosts, options: hostFileOpts },
      ...(spec.mounts ?? []).map(userMount),
    ],
    linux: {
      cgroupsPath: input.cgroupsPath,
      namespaces,
      resources,
      devices: DEFAULT_DEVICES.map(([p, major, minor]) => ({ path: p, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0 })),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}

function userMount(m: SandboxMount): Record<string, unknown> {
  const options = [...(m.type === 'bind' ? ['rbind'] : ['nosuid', 'nodev']), ...(m.readonly ? ['ro'] : []), ...(m.options ?? [])];
  return m.type === 'bind'
    ? { destination: m.destination, type: 'bind', source: m.source, options }
    : { destination: m.destination, type: 'tmpfs', source: 'tmpfs', options };
}
