/**
 * `RUN --mount`: turns the parser's mount specs into sandbox mounts. `cache` (a persistent dir
 * under `<store>/cache/mounts/`, never in the layer), `bind` (from the context, read-only unless
 * `rw`, and then writes go to a throwaway overlay; or `from=` a stage or image rootfs), `tmpfs`,
 * `secret` (a file under the step's temp dir, or an environment variable); `ssh` is refused.
 * After the step, {@link removeMountPoints} deletes the mount points the runtime created in the
 * upper dir, so they never reach the layer.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, lstat, mkdir, readdir, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { Instruction, Lookup, RunMount } from '@tsbuild/parser';
import { expandInstruction } from '@tsbuild/parser';
import { acquireLock, ImageNotFoundError, type DiffID, type HeldLock } from '@tsbuild/layer-store';
import { resolveInRoot } from '../context/index.js';
import { mountRootfs, type Rootfs, type SandboxMount } from '../sandbox/index.js';
import type { BuildContext, ImageState } from './build.js';
import { BuildError } from './errors.js';
import { stageRef } from './plan.js';
import { secretValue } from './secrets.js';

/** The RUN's mounts with variables expanded (buildkit expands mount options with ARGs and ENV). */
export function runMountsOf(instr: Instruction, lookup: Lookup, escape: '\\' | '`'): readonly RunMount[] {
  if (instr.kind !== 'RUN' || instr.mounts.length === 0) return [];
  const ex = expandInstruction(instr, lookup, { escape });
  return ex.kind === 'RUN' ? ex.mounts : instr.mounts;
}

/**
 * The parts of a mount spec that take part in the step's cache key. A secret contributes its id
 * and where it goes, never its value.
 */
export function mountKeyParts(m: RunMount): Array<[string, unknown]> {
  const fields: Array<keyof RunMount> = ['type', 'target', 'source', 'from', 'id', 'sharing', 'readonly', 'uid', 'gid', 'mode', 'required', 'env', 'size'];
  return fields.filter((f) => m[f] !== undefined).map((f) => [f, m[f]]);
}

/** Mounts ready for the sandbox. */
export interface PreparedMounts {
  sandbox: SandboxMount[];
  /** `NAME=value` entries for secrets with `env=` */
  env: string[];
  /** absolute in-container targets (for {@link removeMountPoints}) */
  targets: string[];
  /** Unmounts and unlocks what was prepared. Safe to call twice. */
  release(): Promise<void>;
}

/** What mount preparation needs from the step. */
export interface MountContext {
  ctx: BuildContext;
  state: ImageState;
  stageIndex: number;
  /** the step's temp dir (removed by the caller); secret files and throwaway overlays go here */
  tmp: string;
  /** cache mount dirs in use by this build with sharing=private */
  privateInUse: Set<string>;
}

const safeName = (id: string): string => `${id.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60)}-${createHash('sha256').update(id).digest('hex').slice(0, 12)}`;

async function existsAs(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch {
    return undefined;
  }
}

/**
 * Prepares every mount of a RUN. On error, what was prepared so far is released.
 * @throws BuildError E_UNSUPPORTED (ssh), E_SECRET (a required secret not given), E_STEP (bad spec)
 */
export async function prepareRunMounts(mc: MountContext, mounts: readonly RunMount[]): Promise<PreparedMounts> {
  const sandbox: SandboxMount[] = [];
  const env: string[] = [];
  const targets: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    for (const c of cleanups.reverse()) await c();
  };
  const workdir = mc.state.image.config.WorkingDir || '/';
  const targetOf = (m: RunMount, fallback?: string): string => {
    const t = m.target ?? fallback;
    if (t === undefined || t === '') throw new BuildError('E_STEP', `RUN --mount=${m.raw}: no target`, { hint: 'add target=/path' });
    return posix.resolve(workdir, t);
  };
  try {
    for (const [n, m] of mounts.entries()) {
      switch (m.type) {
        case 'ssh':
          throw new BuildError('E_UNSUPPORTED', `RUN --mount=type=ssh is not supported`, { hint: 'use a secret mount (--secret) for credentials instead' });
        case 'tmpfs': {
          const target = targetOf(m);
          sandbox.push({ type: 'tmpfs', destination: target, options: m.size !== undefined ? [`size=${m.size}`] : [] });
          targets.push(target);
          break;
        }
        case 'cache': {
          const target = targetOf(m);
          const dir = await cacheMountDir(mc, m, target, cleanups);
          sandbox.push({ type: 'bind', source: dir, destination: target, readonly: m.readonly === true });
          targets.push(target);
          break;
        }
        case 'bind': {
          const target = targetOf(m);
          const source = await bindSource(mc, m, n, cleanups);
          sandbox.push({ type: 'bind', source, destination: target, readonly: m.readonly !== false });
          targets.push(target);
          break;
        }
        case 'secret': {
          const id = m.id ?? (m.target !== undefined ? posix.basename(m.target) : '');
          const value = await secretValue(mc.ctx.options.secrets ?? [], id);
          if (value === undefined) {
            if (m.required === true) throw new BuildError('E_SECRET', `secret ${id} is required but was not given`, { hint: `pass --secret id=${id},src=FILE` });
            break;
          }
          if (m.env !== undefined && m.env !== '') env.push(`${m.env}=${value.toString('utf8')}`);
          if (m.env !== undefined && m.env !== '' && m.target === undefined) break;
          const target = targetOf(m, `/run/secrets/${id}`);
          const dir = join(mc.tmp, 'secrets');
          await mkdir(dir, { recursive: true, mode: 0o700 });
          const file = join(dir, String(n));
          await writeFile(file, value, { mode: 0o600 });
          await chown(file, m.uid ?? 0, m.gid ?? 0);
          await chmod(file, m.mode ?? 0o400);
          cleanups.push(() => rm(file, { force: true }));
          sandbox.push({ type: 'bind', source: file, destination: target, readonly: true });
          targets.push(target);
          break;
        }
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { sandbox, env, targets, release };
}

async function cacheMountDir(mc: MountContext, m: RunMount, target: string, cleanups: Array<() => Promise<void>>): Promise<string> {
  const base = join(mc.ctx.store.cacheDir, 'mounts');
  await mkdir(base, { recursive: true, mode: 0o700 });
  let dir = join(base, safeName(m.id ?? target));
  if (m.sharing === 'private') {
    if (mc.privateInUse.has(dir)) {
      // another step of this build holds it: buildkit gives the second writer a fresh dir
      dir = join(mc.tmp, `cache-private-${mc.privateInUse.size}`);
    } else {
      mc.privateInUse.add(dir);
      const held = dir;
      cleanups.push(async () => void mc.privateInUse.delete(held));
    }
  }
  if ((await existsAs(dir)) === undefined) {
    await mkdir(dir, { recursive: true });
    await chown(dir, m.uid ?? 0, m.gid ?? 0);
    await chmod(dir, m.mode ?? 0o755);
  }
  if (m.sharing === 'locked') {
    const signal = mc.ctx.options.signal;
    const lock: HeldLock = await acquireLock(`${dir}.lock`, signal ? { signal } : {});
    cleanups.push(() => lock.release());
  }
  return dir;
}

async function bindSource(mc: MountContext, m: RunMount, n: number, cleanups: Array<() => Promise<void>>): Promise<string> {
  const { ctx } = mc;
  const signal = ctx.options.signal;
  let root: string;
  if (m.from !== undefined && m.from !== '') {
    const layers = await fromLayers(mc, m.from);
    await ctx.holdContent();
    const lowerdirs = await ctx.store.prepareSnapshots(layers, signal ? { signal } : {});
    const rootfs: Rootfs = await mountRootfs({
      lowerdirs,
      upperdir: join(mc.tmp, `bind${n}-upper`),
      workdir: join(mc.tmp, `bind${n}-work`),
      target: join(mc.tmp, `bind${n}`),
      ...(signal ? { signal } : {}),
    });
    cleanups.push(() => rootfs.unmount());
    root = rootfs.path;
  } else {
    if (ctx.options.contextDir === null) {
      throw new BuildError('E_CONTEXT', 'RUN --mount=type=bind: there is no build context', { hint: 'pass a context directory, or use from=' });
    }
    root = ctx.options.contextDir;
  }
  const source = await resolveInRoot(root, m.source ?? '.');
  if (m.readonly !== false || (m.from !== undefined && m.from !== '')) return source;
  // rw from the context: writes must never reach the user's files; buildkit discards them
  const st = await stat(source);
  if (!st.isDirectory()) {
    const copy = join(mc.tmp, `bind${n}-file`);
    await copyFile(source, copy);
    return copy;
  }
  const over = await mountRootfs({
    lowerdirs: [source],
    upperdir: join(mc.tmp, `bind${n}-upper`),
    workdir: join(mc.tmp, `bind${n}-work`),
    target: join(mc.tmp, `bind${n}`),
    ...(signal ? { signal } : {}),
  });
  cleanups.push(() => over.unmount());
  return over.path;
}

async function fromLayers(mc: MountContext, from: string): Promise<Array<{ digest: ImageState['layers'][number]['digest']; diffID: DiffID }>> {
  const { ctx } = mc;
  const i = stageRef(ctx.df, from, mc.stageIndex);
  if (i !== undefined) {
    const s = (await ctx.stages.get(i)) as ImageState;
    return s.layers.map((l, k) => ({ digest: l.digest, diffID: s.image.rootfs.diff_ids[k] as DiffID }));
  }
  try {
    const img = await ctx.store.resolveImage(from);
    return img.manifest.layers.map((l, k) => ({ digest: l.digest, diffID: img.config.rootfs.diff_ids[k] as DiffID }));
  } catch (err) {
    if (err instanceof ImageNotFoundError) {
      throw new BuildError('E_STEP', `RUN --mount from=${from}: no stage or image named "${from}"`, { cause: err, hint: 'name an earlier stage or an image in the store' });
    }
    throw err;
  }
}

/** What the lower layers show at `rel` (top-most first; a 0/0 char device is a whiteout). */
async function lowerEntry(lowerdirs: readonly string[], rel: string): Promise<Stats | undefined> {
  for (let i = lowerdirs.length - 1; i >= 0; i--) {
    const st = await existsAs(join(lowerdirs[i] as string, rel));
    if (st === undefined) continue;
    return st.isCharacterDevice() && st.rdev === 0 ? undefined : st;
  }
  return undefined;
}

/**
 * Removes from `upperdir` the mount points the runtime created for RUN mounts (and the parent
 * directories it made for them): an empty directory or empty file at a target or its ancestors
 * that the lower layers lack, or that is only an unchanged copy-up of a lower directory. What the
 * step wrote stays. Call after the rootfs is unmounted. `lowerdirs` bottom-most first.
 */
export async function removeMountPoints(upperdir: string, lowerdirs: readonly string[], targets: readonly string[]): Promise<void> {
  // deepest first, so a parent is emptied before it is looked at
  const rels = new Set<string>();
  for (const t of targets) {
    for (let rel = posix.normalize(t).replace(/^\/+/, ''); rel !== '' && rel !== '.'; rel = posix.dirname(rel)) rels.add(rel);
  }
  const ordered = [...rels].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const rel of ordered) {
    const p = join(upperdir, rel);
    const st = await existsAs(p);
    if (st === undefined) continue;
    const below = await lowerEntry(lowerdirs, rel);
    if (st.isFile() && st.size === 0 && below === undefined) await unlink(p);
    else if (st.isDirectory() && (await readdir(p)).length === 0) {
      const copyUpOnly = below !== undefined && below.isDirectory() && below.mode === st.mode && below.uid === st.uid && below.gid === st.gid;
      if (below === undefined || copyUpOnly) await rmdir(p);
    }
  }
}
