/**
 * Steps that change the filesystem (RUN, COPY, ADD, and WORKDIR's directory).
 *
 * They need the sandbox's `runInSandbox`/`removeSandboxArtifacts` and the context's
 * `copyInto`/`addInto`, which are not in the tree yet: until then these steps fail with a
 * clear E_UNSUPPORTED error, and WORKDIR stays config-only (RUN creates the directory).
 */
import type { BuildContext, ImageState, } from '../build.js';
import type { PlannedStage } from '../plan.js';
import type { FsStep } from '../expand.js';
import { BuildError } from '../errors.js';

/** Runs a RUN/COPY/ADD step; returns the state with its layer and history entry. */
export async function runFsStep(ctx: BuildContext, _state: ImageState, step: FsStep, _p: PlannedStage): Promise<ImageState> {
  ctx.options.signal?.throwIfAborted();
  throw new BuildError('E_UNSUPPORTED', `${step.kind} is not supported by this build of tsbuild yet`, {
    hint: 'only config-only Dockerfiles build for now',
  });
}

/** Makes WORKDIR's directory as a layer, as Docker 20.10 does; config-only for now. */
export async function ensureWorkdir(_ctx: BuildContext, state: ImageState): Promise<ImageState> {
  return state;
}
