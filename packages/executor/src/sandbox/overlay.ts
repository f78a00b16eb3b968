import { access, mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
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
}

/** The kernel takes mount options in one page. */
const MAX_MOUNT_DATA = 4000;
/** overlayfs's stacking limit (OVL_MAX_STACK); Docker 20.10 refuses images of more than 125 layers. */
const MAX_LOWER_DIRS = 500;

/**
 * Mounts an overlay of `lowerdirs` + `upperdir` at `target`. With no lower dir, `upperdir` is
 * bind-mounted instead (overlay needs a lower), so the step's writes land in it all the same.
 * Long lower lists are passed as short symlinks to fit the kernel's one-page limit.
 * The caller must call `unmount()` (try/finally).
 * @throws SandboxError when a path holds `,` or `:` (overlay cannot escape them reliably) or mount fails.
 */
export async function mountRootfs(opts: MountRootfsOptions): Promise<Rootfs> {
  const mountBin = await requireTool('mount', 'util-linux (mount)');
  const umountBin = await requireTool('umount', 'util-linux (mount)');
  const target = path.resolve(opts.target);
  const upperdir = path.resolve(opts.upperdir);
  await mkdir(target, { recursive: true });
  await mkdir(upperdir, { recursive: true });
  try {
    await mountAt(mountBin, target, upperdir, opts);
  } catch (err) {
    // An abort may land after the kernel mounted but before mount(8) returned.
    if (opts.signal?.aborted) await runTool(umountBin, [target]);
    throw err;
  }
  let mounted = true;
  return {
    path: target,
    upperdir,
    async unmount() {
      if (!mounted) return;
      const r = await runTool(umountBin, [target]);
      if (r.code !== 0) await checkTool(umountBin, ['--lazy', target], `unmounting ${target} (${r.stderr.trim()})`);
      mounted = false;
    },
  };
}

async function mountAt(mountBin: string, target: string, upperdir: string, opts: MountRootfsOptions): Promise<void> {
  if (opts.lowerdirs.length === 0) {
    await checkTool(mountBin, ['--bind', upperdir, target], `bind-mounting ${upperdir}`, { signal: opts.signal });
  } else {
    const workdir = path.resolve(opts.workdir);
    await mkdir(workdir, { recursive: true });
    const lowers = opts.lowerdirs.map((d) => path.resolve(d));
    for (const p of [...lowers, upperdir, workdir]) {
      if (/[,:]/.test(p)) throw new SandboxError(`overlay path ${p} contains ',' or ':'`, { hint: 'use a store path without commas or colons' });
    }
    // overlay's lowerdir lists the top-most layer first.
    const topFirst = [...lowers].reverse();
    const features = await featuresOff();
    let data = `lowerdir=${topFirst.join(':')},upperdir=${upperdir},workdir=${workdir}${features}`;
    if (data.length <= MAX_MOUNT_DATA) {
      await checkTool(mountBin, ['-t', 'overlay', 'overlay', '-o', data, target], `mounting the rootfs at ${target}`, { signal: opts.signal });
      return;
    }
    // Too long for one page (about 50 snapshot paths): as Docker's overlay2 does with its `l/`
    // links, name each lower dir by a short symlink (`<work>.l/<n>`, relative to the work dir's
    // parent). The kernel resolves them when it mounts; they go when the mount is made.
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
      await checkTool(mountBin, ['-t', 'overlay', 'overlay', '-o', data, target], `mounting the rootfs at ${target}`, { signal: opts.signal, cwd });
    } finally {
      await rm(links, { recursive: true, force: true });
    }
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
async function featuresOff(): Promise<string> {
  let out = '';
  for (const f of ['index', 'redirect_dir', 'metacopy']) {
    const known = await access(`/sys/module/overlay/parameters/${f}`).then(
      () => true,
      () => false,
    );
    if (known) out += `,${f}=off`;
  }
  return out;
}
