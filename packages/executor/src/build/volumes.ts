/**
 * Declared VOLUMEs during RUN. Docker's classic builder runs each RUN in a container, and a
 * container gets an anonymous volume at every path in the image's `Volumes`, filled with what the
 * image holds there; the volume is not part of the committed diff. So what a RUN writes below a
 * declared volume is discarded ("If any build steps change the data within the volume after it has
 * been declared, those changes will be discarded", Dockerfile reference, VOLUME), while the mount
 * point itself, when the path did not exist, is created in the container's layer and committed
 * (0755 root:root, as the runtime makes it). A volume declared below another one gets its mount
 * point inside the outer volume, so nothing of it is committed. COPY/ADD are not affected.
 */
import { chmod, chown, lstat, mkdir, rm } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { resolveInRoot } from '../context/index.js';
import { mountRootfs, type Rootfs, type SandboxMount } from '../sandbox/index.js';

/** The image's declared volume paths, outermost first (Docker mounts parents before children). */
export function volumePaths(volumes: Readonly<Record<string, unknown>> | undefined): string[] {
  const paths = [...new Set(Object.keys(volumes ?? {}).map((v) => posix.resolve('/', v)))].filter((v) => v !== '/');
  return paths.sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : a > b ? 1 : 0));
}

/** Volume mounts ready for the sandbox; `release()` unmounts the throwaway view (call twice: fine). */
export interface PreparedVolumes {
  mounts: SandboxMount[];
  release(): Promise<void>;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch {
    return undefined;
  }
}

/**
 * Makes one throwaway overlay of the step's lower layers (writes go to `<tmp>/volumes-upper`, never
 * to the layer) and bind-mounts each volume path of it onto the same path in the container: the
 * step sees the image's content there, and whatever it writes is dropped with the temp dir.
 * A missing volume path gets an empty 0755 root:root directory, like a fresh Docker volume.
 */
export async function prepareVolumes(paths: readonly string[], lowerdirs: string[], tmp: string, signal?: AbortSignal): Promise<PreparedVolumes> {
  if (paths.length === 0) return { mounts: [], release: async () => {} };
  const view: Rootfs = await mountRootfs({
    lowerdirs,
    upperdir: join(tmp, 'volumes-upper'),
    workdir: join(tmp, 'volumes-work'),
    target: join(tmp, 'volumes'),
    ...(signal ? { signal } : {}),
  });
  try {
    const mounts: SandboxMount[] = [];
    for (const dest of paths) {
      const source = await resolveInRoot(view.path, dest);
      const st = await lstatOrUndefined(source);
      if (st === undefined) {
        await mkdir(source, { recursive: true });
        await chown(source, 0, 0);
        await chmod(source, 0o755);
      }
      // the in-container path with symlinks resolved, as Docker's FollowSymlinkInScope gives it
      mounts.push({ type: 'bind', source, destination: `/${relative(view.path, source)}` });
    }
    return { mounts, release: () => view.unmount() };
  } catch (err) {
    await view.unmount();
    throw err;
  }
}

/**
 * Without mounts (chroot isolation): makes the missing volume paths in the merged `rootfs` before
 * the step runs (0755 root:root, with their missing parents, as the runtime would), so the step
 * finds its volume directories. Symlinks are followed inside the rootfs.
 */
export async function makeVolumeDirs(rootfs: string, paths: readonly string[]): Promise<void> {
  for (const dest of paths) {
    const host = await resolveInRoot(rootfs, dest);
    let cur = rootfs;
    for (const seg of relative(rootfs, host).split('/').filter((s) => s !== '')) {
      cur = join(cur, seg);
      if ((await lstatOrUndefined(cur)) !== undefined) continue;
      await mkdir(cur);
      await chown(cur, 0, 0);
      await chmod(cur, 0o755);
    }
  }
}

/**
 * Without mounts (chroot isolation), the same result after the fact: everything the step left in
 * `upperdir` at or below a volume path is removed, so the lower layers show through again; a
 * volume path that the lower layers lack keeps an empty 0755 root:root mount-point directory.
 * `lowerdirs` bottom-most first. Call after the rootfs is unmounted.
 */
export async function discardVolumeWrites(upperdir: string, lowerdirs: readonly string[], paths: readonly string[]): Promise<void> {
  for (const dest of paths) {
    const rel = dest.replace(/^\/+/, '');
    const p = join(upperdir, rel);
    if ((await lstatOrUndefined(p)) === undefined) continue;
    let inLower = false;
    for (let i = lowerdirs.length - 1; i >= 0; i--) {
      const st = await lstatOrUndefined(join(lowerdirs[i] as string, rel));
      if (st === undefined) continue;
      inLower = !(st.isCharacterDevice() && st.rdev === 0);
      break;
    }
    await rm(p, { recursive: true, force: true });
    if (!inLower) {
      await mkdir(p, { recursive: true });
      await chown(p, 0, 0);
      await chmod(p, 0o755);
    }
  }
}
