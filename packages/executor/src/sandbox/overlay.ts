import { existsSync } from 'node:fs';
import { mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { MNT_DETACH, MS_BIND, SysError, sysCalls, type SysCalls } from '@tsbuild/sys';
import { SandboxError } from './errors.js';
import { checkTool, requireTool, runTool } from './host-tools.js';

/** A mounted root filesystem for one RUN step. */
export interface Rootfs {
  /** The merged mount point: the container's `/`. */
  readonly path: string;
  /** Where the step's writes land: after unmount, this directory is the step's diff. */
  readonly upperdir: string;
  /** Unmounts (lazily if the mount is still busy). Safe to call twice. */
  unmount(): Promise<void>;
}

export interface MountRootfsOptions {
  /** Lower layers, **bottom-most first** (manifest order: base layer first). May be empty (FROM scratch). */
  lowerdirs: string[];
  /** Empty directory that receives the step's changes (overlay upper dir). */
  upperdir: string;
  /** Empty directory on the same filesystem as `upperdir` (overlay work dir). */
  workdir: string;
  /** Mount point (created if missing). */
  target: string;
  signal?: AbortSignal;
  /** The system calls that mount and unmount; null: mount(8) and umount(8). Default: `sysCalls()`. */
  sys?: SysCalls | null;
}

/** The kernel takes mount options in one page. */
const MAX_MOUNT_DATA = 4000;
/** overlayfs's stacking limit (OVL_MAX_STACK); Docker 20.10 refuses images of more than 125 layers. */
const MAX_LOWER_DIRS = 500;

/**
 * Mounts an overlay of `lowerdirs` + `upperdir` at `target`. With no lower dir, `upperdir` is
 * bind-mounted instead (overlay needs a lower), so the step's writes land in it all the same.
 * Long lower lists are passed as short symlinks to fit the kernel's one-page limit.
 * mount(2) and umount2(2) are called directly through `@tsbuild/sys`; where its addon is not
 * built, mount(8) and umount(8) run instead.
 * The caller must call `unmount()` (try/finally).
 * @throws SandboxError when a path holds `,` or `:` (overlay cannot escape them reliably) or mount fails.
 */
export async function mountRootfs(opts: MountRootfsOptions): Promise<Rootfs> {
  const sys = opts.sys === null ? undefined : opts.sys ?? sysCalls();
  const target = path.resolve(opts.target);
  const upperdir = path.resolve(opts.upperdir);
  await mkdir(target, { recursive: true });
  await mkdir(upperdir, { recursive: true });
  try {
    await mountAt(sys, target, upperdir, opts);
  } catch (err) {
    // An abort may land after the kernel mounted but before mount(8) returned (mount(8) also
    // mounts the long lower lists where the addon is loaded): nothing may stay mounted.
    if (opts.signal?.aborted === true) {
      if (sys !== undefined) await sys.umountAsync(target, MNT_DETACH).catch(() => undefined);
      else await runTool(await requireTool('umount', 'util-linux (mount)'), [target]);
    }
    throw err;
  }
  let mounted = true;
  return {
    path: target,
    upperdir,
    async unmount() {
      if (!mounted) return;
      await unmountAt(sys, target);
      mounted = false;
    },
  };
}

/** Unmounts `target`; lazily (detached) when it is still busy, as `umount --lazy`. */
async function unmountAt(sys: SysCalls | undefined, target: string): Promise<void> {
  if (sys !== undefined) {
    try {
      // on the thread pool: an overlay's unmount can take tens of milliseconds
      await sys.umountAsync(target);
    } catch (err) {
      if (!(err instanceof SysError) || err.code !== 'EBUSY') throw new SandboxError(`unmounting ${target}: ${(err as Error).message}`, { cause: err });
      try {
        sys.umount(target, MNT_DETACH);
      } catch (err2) {
        throw new SandboxError(`unmounting ${target} (busy): ${(err2 as Error).message}`, { cause: err2 });
      }
    }
    return;
  }
  const umountBin = await requireTool('umount', 'util-linux (mount)');
  const r = await runTool(umountBin, [target]);
  if (r.code !== 0) await checkTool(umountBin, ['--lazy', target], `unmounting ${target} (${r.stderr.trim()})`);
}

/** mount(2) when the addon is there, else mount(8) with `args`. */
async function mountCall(sys: SysCalls | undefined, what: string, call: { source: string; target: string; fstype: string | null; flags: number; data: string | null }, args: string[], opts: { signal?: AbortSignal; cwd?: string }): Promise<void> {
  if (sys !== undefined && opts.cwd === undefined) {
    opts.signal?.throwIfAborted();
    try {
      sys.mount(call.source, call.target, call.fstype, call.flags, call.data);
    } catch (err) {
      throw new SandboxError(`${what}: ${(err as Error).message}`, { cause: err, hint: 'overlayfs must be available (modprobe overlay) and tsbuild must run as root' });
    }
    return;
  }
  await checkTool(await requireTool('mount', 'util-linux (mount)'), args, what, opts);
}

async function mountAt(sys: SysCalls | undefined, target: string, upperdir: string, opts: MountRootfsOptions): Promise<void> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  if (opts.lowerdirs.length === 0) {
    await mountCall(sys, `bind-mounting ${upperdir}`, { source: upperdir, target, fstype: null, flags: MS_BIND, data: null }, ['--bind', upperdir, target], signal);
  } else {
    const workdir = path.resolve(opts.workdir);
    await mkdir(workdir, { recursive: true });
    const lowers = opts.lowerdirs.map((d) => path.resolve(d));
    for (const p of [...lowers, upperdir, workdir]) {
      if (/[,:]/.test(p)) throw new SandboxError(`overlay path ${p} contains ',' or ':'`, { hint: 'use a store path without commas or colons' });
    }
    // overlay's lowerdir lists the top-most layer first.
    const topFirst = [...lowers].reverse();
    const features = featuresOff();
    let data = `lowerdir=${topFirst.join(':')},upperdir=${upperdir},workdir=${workdir}${features}`;
    const what = `mounting the rootfs at ${target}`;
    if (data.length <= MAX_MOUNT_DATA) {
      await overlayMount(data, (d) => mountCall(sys, what, { source: 'overlay', target, fstype: 'overlay', flags: 0, data: d }, ['-t', 'overlay', 'overlay', '-o', d, target], signal), opts.signal);
      return;
    }
    // Too long for one page (about 50 snapshot paths): as Docker's overlay2 does with its `l/`
    // links, name each lower dir by a short symlink (`<work>.l/<n>`, relative to the work dir's
    // parent). The kernel resolves them when it mounts; they go when the mount is made.
    // (mount(8) with that working directory: the relative paths are the mounting process's.)
    if (lowers.length > MAX_LOWER_DIRS) {
      throw new SandboxError(`too many layers to mount: ${lowers.length} (overlayfs stacks at most ${MAX_LOWER_DIRS})`, { hint: 'squash the base image, or merge RUN steps' });
    }
    const cwd = path.dirname(workdir);
    const links = `${workdir}.l`;
    await mkdir(links, { recursive: true });
    try {
      await Promise.all(topFirst.map((d, i) => symlink(d, path.join(links, String(i)))));
      const rel = (p: string) => path.relative(cwd, p) || '.';
      data = `lowerdir=${topFirst.map((_d, i) => rel(path.join(links, String(i)))).join(':')},upperdir=${rel(upperdir)},workdir=${rel(workdir)}${features}`;
      await overlayMount(data, (d) => mountCall(undefined, what, { source: 'overlay', target, fstype: 'overlay', flags: 0, data: d }, ['-t', 'overlay', 'overlay', '-o', d, target], { ...signal, cwd }), opts.signal);
    } finally {
      await rm(links, { recursive: true, force: true });
    }
  }
}

/**
 * Mounts with `volatile` (Linux ≥ 5.10), and without it where the kernel refuses it. Without
 * `volatile`, unmounting an overlay syncs its whole upper filesystem (ovl_sync_fs): the store's
 * disk, with everything else dirty on it. A step's mount needs no such flush: its upper dir becomes a
 * layer blob (written and fsynced by the store) and a snapshot, and snapshots are not flushed
 * either (see layer-store's snapshots.ts: a power loss right after a build may leave one whose data
 * had not reached the disk). Measured here: unmounting an overlay after 20,000 file writes took
 * 118-546 ms, 57-74 ms with `volatile`. Each mount has a fresh work dir, so the `incompat/volatile`
 * mark a volatile mount leaves there never blocks a later one.
 */
async function overlayMount(data: string, mount: (data: string) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  try {
    await mount(`${data},volatile`);
  } catch (err) {
    if (signal?.aborted === true) throw err;
    await mount(data);
  }
}

/**
 * Mount options that turn off the overlay features a host may enable by default and that would
 * make the upper dir no longer a plain diff: `metacopy` (a chmod copies up metadata only, the data
 * stays in the lower file, so the layer would hold an empty file), `redirect_dir` (a renamed lower
 * directory becomes an xattr pointing at its old path, not a copy) and `index`. Only those the
 * kernel knows (its module parameter exists), as Docker's overlay2 does: older kernels refuse
 * unknown options.
 */
function featuresOff(): string {
  let out = '';
  for (const f of ['index', 'redirect_dir', 'metacopy']) {
    if (existsSync(`/sys/module/overlay/parameters/${f}`)) out += `,${f}=off`;
  }
  return out;
}
