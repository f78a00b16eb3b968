/**
 * Steps that change the filesystem. RUN: overlay of the parent's snapshots + a fresh upper dir,
 * the sandbox, artifact cleanup, then the upper dir becomes the layer (none when it is empty:
 * Docker 20.10 records `empty_layer` for a RUN that changed nothing). COPY/ADD: see copy.ts.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lchown, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { copyStep, mountState } from './copy.js';
import type { CacheRecord } from '../cache.js';
import { resolveInRoot } from '../../context/index.js';
import { writeLayer } from '@tsbuild/layer-store';
import type { DiffID } from '@tsbuild/layer-store';
import { mountRootfs, runInSandbox, detectIsolation, resolveUser, removeSandboxArtifacts } from '../../sandbox/index.js';
import { addHistory, addLayer, runCreatedBy, runEnv, type BuildContext, type ImageState } from '../build.js';
import type { PlannedStage } from '../plan.js';
import type { FsStep } from '../expand.js';
import { argvOf, cleanPath, shellOf } from '../config.js';
import { BuildError } from '../errors.js';
import type { RunMount } from '@tsbuild/parser';
import { prepareRunMounts, removeMountPoints, type PreparedMounts } from '../mounts.js';
import { discardVolumeWrites, makeVolumeDirs, prepareVolumes, volumePaths, type PreparedVolumes } from '../volumes.js';

/** Keeps the last `max` lines of a step's output for the error message. */
function tailKeeper(max: number): { push(b: Buffer): void; text(): string } {
  let buf = '';
  return {
    push(b) {
      buf = (buf + b.toString('utf8')).split('\n').slice(-(max + 1)).join('\n');
    },
    text: () => buf.trimEnd(),
  };
}

async function isEmptyDir(dir: string): Promise<boolean> {
  return (await readdir(dir)).length === 0;
}

async function runStep(ctx: BuildContext, state: ImageState, step: Extract<FsStep, { kind: 'RUN' }>, p: PlannedStage, index: number, runMounts: readonly RunMount[]): Promise<ImageState> {
  const { store, options } = ctx;
  const signal = options.signal;
  // a shell-form RUN with no command runs the shell alone, as Docker's (its CmdLine is empty):
  // `/bin/sh -c` fails "-c requires an argument"; an exec form with none cannot start
  const argv = step.cmd.form === 'shell' && step.cmd.command === '' ? [...shellOf(state.image.config)] : argvOf(step.cmd, state.image.config);
  if (argv.length === 0) throw new BuildError('E_STEP', 'No command specified', { hint: 'give RUN a command' });
  const createdBy = runCreatedBy(ctx, state, argv);
  const env = runEnv(ctx, state);
  await ctx.holdContent();
  const lowerdirs = await store.prepareSnapshots(
    state.layers.map((l, i) => ({ digest: l.digest, diffID: state.image.rootfs.diff_ids[i] as DiffID })),
    signal ? { signal } : {},
  );
  const tmp = await store.makeTempDir('run');
  let mounts: PreparedMounts | undefined;
  let volumes: PreparedVolumes | undefined;
  try {
    const upper = join(tmp, 'upper');
    mounts = await prepareRunMounts({ ctx, state, stageIndex: p.stage.index, tmp, privateInUse: ctx.cache.privateInUse }, runMounts);
    const rootfs = await mountRootfs({ lowerdirs, upperdir: upper, workdir: join(tmp, 'work'), target: join(tmp, 'rootfs'), ...(signal ? { signal } : {}) });
    const tail = tailKeeper(10);
    let exitCode: number;
    let oomKilled = false;
    let startFailure: string | undefined;
    const declared = volumePaths(state.image.config.Volumes);
    let volumesMounted = false;
    try {
      const user = await resolveUser(rootfs.path, state.image.config.User ?? '');
      const { isolation, runtime } = await detectIsolation(options.isolation ?? 'auto');
      // declared VOLUMEs: throwaway mounts under OCI isolation; chroot cannot mount, see below
      if (isolation === 'oci') {
        volumes = await prepareVolumes(declared, lowerdirs, tmp, signal);
        volumesMounted = true;
      } else await makeVolumeDirs(rootfs.path, declared);
      const sandboxMounts = [...(volumes?.mounts ?? []), ...mounts.sandbox];
      const network = step.network === 'none' || options.network === 'none' ? 'none' : 'host';
      // Docker names the container's host after its ID and puts it first in the environment
      // (container.CreateDaemonEnvironment); the image's Env may override it
      const hostname = randomBytes(6).toString('hex');
      const hostEnv = env.some((e) => e.startsWith('HOSTNAME=')) ? [] : [`HOSTNAME=${hostname}`];
      const r = await runInSandbox(
        {
          rootfs: rootfs.path,
          args: argv,
          env: [...hostEnv, ...env, ...mounts.env],
          hostname,
          ...(sandboxMounts.length > 0 ? { mounts: sandboxMounts } : {}),
          // the container's working dir is cleaned (Docker's SetupWorkingDirectory), though the
          // image keeps WORKDIR's absolute path as written: runc would make `/a/b` of `/a/b/../c`
          cwd: cleanPath(state.image.config.WorkingDir || '/'),
          user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids ?? [] },
          network,
          ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
          ...(options.memoryBytes !== undefined ? { memoryBytes: options.memoryBytes } : {}),
          ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
          onOutput: (stream, chunk) => {
            tail.push(chunk);
            ctx.emit({ type: 'step-log', stage: p.stage.index, index, stream, bytes: chunk });
          },
          ...(signal ? { signal } : {}),
        },
        { isolation, ...(runtime ? { runtime } : {}), stateDir: join(tmp, 'state') },
      );
      exitCode = r.exitCode;
      oomKilled = r.oomKilled;
      startFailure = r.startFailure;
    } finally {
      await rootfs.unmount();
    }
    if (startFailure !== undefined) {
      // Docker 20.10: the container does not start; the build fails with the runtime's error
      // (exit status 1), not with "returned a non-zero code: 127".
      throw new BuildError('E_STEP_FAILED', `OCI runtime create failed: runc create failed: ${startFailure}: unknown`, {
        hint: 'the command does not exist in the image (check the path, or PATH for a bare name)',
      });
    }
    if (exitCode !== 0) {
      const why = oomKilled
        ? `was killed for using more memory than the --memory limit (${options.memoryBytes ?? 0} bytes = ${((options.memoryBytes ?? 0) / 1024 / 1024).toFixed(0)} MiB); exit code ${exitCode}`
        : `returned a non-zero code: ${exitCode}`;
      throw new BuildError('E_STEP_FAILED', `The command '${argv.join(' ')}' ${why}${tail.text() ? `\n--- last lines of output ---\n${tail.text()}` : ''}`, {
        exitCode,
        ...(oomKilled ? { hint: 'raise the limit with --memory, or make the step use less memory' } : {}),
      });
    }
    await removeSandboxArtifacts(upper, lowerdirs);
    await removeMountPoints(upper, lowerdirs, mounts.targets);
    if (!volumesMounted) await discardVolumeWrites(upper, lowerdirs, declared);
    if (await isEmptyDir(upper)) return addHistory(ctx, state, createdBy, true);
    const layer = await writeLayer(store, upper, { kind: 'upper', ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}), ...(signal ? { signal } : {}) });
    const withLayer = addLayer(state, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, layer.diffID);
    // the upper dir is this layer's snapshot already: keep it instead of unpacking the tar again.
    // Its times in whole seconds, as the tar holds them: Docker 20.10's next step sees the layer
    // unpacked from its tar (checked, hreal/probe2: `RUN touch /e` then `RUN stat /e` shows
    // .000000000)
    await store.adoptSnapshot(withLayer.image.rootfs.diff_ids, upper, { wholeSeconds: 'all', ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}), ...(signal ? { signal } : {}) });
    return addHistory(ctx, withLayer, createdBy, false);
  } finally {
    await volumes?.release();
    await mounts?.release();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Runs a RUN/COPY/ADD step; returns the state with its layer and history entry (`prior`: see copyStep). */
export async function runFsStep(ctx: BuildContext, state: ImageState, step: FsStep, p: PlannedStage, index: number, mounts: readonly RunMount[] = [], prior?: CacheRecord): Promise<ImageState> {
  ctx.options.signal?.throwIfAborted();
  if (step.kind === 'RUN') return runStep(ctx, state, step, p, index, mounts);
  const line = (p.stage.instructions[index - 1] ?? p.stage.from).range.start.line;
  return copyStep(ctx, state, step, p.stage.index, line, prior);
}

/**
 * WORKDIR's directory, committed as Docker 20.10's classic builder does (`ContainerCreateWorkdir`
 * then commit): missing directories are made 0755 root:root, setgid below a setgid directory
 * (symlinks followed inside the rootfs);
 * the upper dir becomes a layer, and the step's history entry (already written as empty) loses
 * `empty_layer` when something was created.
 */
export async function ensureWorkdir(ctx: BuildContext, state: ImageState): Promise<ImageState> {
  const dir = state.image.config.WorkingDir;
  if (!dir) return state;
  const { store, options } = ctx;
  const signal = options.signal;
  await ctx.holdContent();
  const tmp = await store.makeTempDir('workdir');
  try {
    const rootfs = await mountState(ctx, state, tmp, 'rootfs');
    // the directories made (and their parents, whose mtime mkdir sets): whole seconds in the
    // snapshot, as Docker 20.10's next step sees them after its commit
    const made: string[] = [];
    try {
      const host = await resolveInRoot(rootfs.path, dir);
      const rel = relative(rootfs.path, host);
      let cur = rootfs.path;
      for (const seg of rel === '' ? [] : rel.split(sep)) {
        cur = join(cur, seg);
        const st = await lstat(cur).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw err;
        });
        if (st?.isDirectory()) continue;
        if (st !== null) throw new BuildError('E_STEP', `Cannot mkdir: ${dir} is not a directory`);
        await mkdir(cur);
        made.push(relative(rootfs.path, dirname(cur)), relative(rootfs.path, cur));
        // Docker's MkdirAllAndChownNew: root's, and it never chmods, so a new directory keeps
        // the setgid bit (and not the group) mkdir(2) gives it below a setgid directory
        const parentMode = (await lstat(dirname(cur))).mode;
        await lchown(cur, 0, 0);
        await chmod(cur, 0o755 | (parentMode & 0o2000));
      }
    } finally {
      await rootfs.unmount();
    }
    if (await isEmptyDir(rootfs.upperdir)) return state;
    const layer = await writeLayer(store, rootfs.upperdir, { kind: 'upper', ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}), ...(signal ? { signal } : {}) });
    const withLayer = addLayer(state, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, layer.diffID);
    // the upper dir is this layer's snapshot already: keep it instead of unpacking the tar again
    await store.adoptSnapshot(withLayer.image.rootfs.diff_ids, rootfs.upperdir, { wholeSeconds: made.filter(Boolean), ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}), ...(signal ? { signal } : {}) });
    const history = [...(withLayer.image.history ?? [])];
    const last = history.pop();
    if (last) {
      const { empty_layer: _empty, ...rest } = last;
      history.push(rest);
    }
    return { ...withLayer, image: { ...withLayer.image, history } };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
