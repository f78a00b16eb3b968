/**
 * `build()`: a Dockerfile and a context in, an image in the store out, with Docker 20.10's
 * classic-builder semantics for every instruction. Progress goes to `onEvent`; nothing is printed.
 */
import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import { availableParallelism } from 'node:os';
import type { Dockerfile, Instruction, LabelInstruction, Lookup, Stage } from '@tsbuild/parser';
import { parseDockerfile } from '@tsbuild/parser';
import { canonicalJSON, compareUtf8, EncodedJSON, sha256Of, Store, ImageNotFoundError } from '@tsbuild/layer-store';
import type { Descriptor, DiffID, Digest, ImageConfig, Platform, ResolvedImage } from '@tsbuild/layer-store';
import { applyConfigStep, healthcheckOverrideNote, scratchConfig, DEFAULT_PATH, type ConfigState, type ConfigStep } from './config.js';
import { expandStep, type ExpandedStep, type FsStep } from './expand.js';
import { runFsStep, ensureWorkdir } from './steps/fs.js';
import { planBuild, hostPlatform, platformString, PREDEFINED_ARGS, type PlannedStage, type BuildPlan } from './plan.js';
import { BuildError, invalidImageReference } from './errors.js';
import { BuildCache } from './cache-step.js';
import { runMountsOf } from './mounts.js';
import type { BuildSecret } from './secrets.js';
import type { HostEntry } from '../sandbox/host-files.js';
import { reapStaleWork } from '../sandbox/stale.js';
import type { IgnoreMatcher } from '../context/index.js';
import type { BuildEvent } from './events.js';

/** Options of {@link build}. */
export interface BuildOptions {
  /** the store, or its root directory */
  store: Store | string;
  /** build context directory; null for a `-` build (Dockerfile only, no context) */
  contextDir: string | null;
  /** the Dockerfile's text, or a path to read it from */
  dockerfile: { text: string } | { path: string };
  /** name used in messages (default `Dockerfile`) */
  dockerfileName?: string;
  tags?: readonly string[];
  buildArgs?: Readonly<Record<string, string>>;
  /**
   * Build args named without a value that the environment does not set either (`--build-arg NAME`):
   * they give no value, but Docker 20.10 lists them among the args not consumed when no ARG declares them.
   */
  unsetBuildArgs?: readonly string[];
  target?: string;
  network?: 'host' | 'none';
  /** `--add-host`: extra /etc/hosts entries for RUN steps (after the defaults, as Docker writes them) */
  extraHosts?: readonly HostEntry[];
  isolation?: 'oci' | 'chroot' | 'auto';
  noCache?: boolean;
  /** stages (names or indexes) whose steps skip cache lookups (still recorded) */
  noCacheFilter?: readonly string[];
  /** secrets for `RUN --mount=type=secret` (never in a layer, key or history) */
  secrets?: readonly BuildSecret[];
  /** labels added to the final image, as `--label` does */
  labels?: Readonly<Record<string, string>>;
  memoryBytes?: number;
  cpus?: number;
  /** seconds since the epoch: image and history `created` times, and layer mtimes clamped */
  sourceDateEpoch?: number;
  /** the clock for `created` when no sourceDateEpoch is given (default: the current time) */
  now?: () => Date;
  /** build platform (default: this machine's) */
  platform?: Platform;
  onEvent?: (e: BuildEvent) => void;
  signal?: AbortSignal;
}

/** What one step did. */
export interface StepResult {
  stage: number;
  index: number;
  instruction: string;
  cached: boolean;
  /** digest of the layer the step added, if any */
  layer?: Digest;
}

/** The built image. */
export interface BuildResult {
  /** image ID: the config digest */
  id: Digest;
  manifestDigest: Digest;
  steps: StepResult[];
}

/** A stage's image while it is being built. */
export interface ImageState {
  image: ImageConfig;
  layers: Descriptor[];
  author?: string;
  cmdSet: boolean;
  /** ARGs declared in this stage → value (undefined: declared without one) */
  args: Map<string, string | undefined>;
  /** the base image had a parent (false for FROM scratch) */
  hasBase: boolean;
  /**
   * Set on a stage's result when nothing was dispatched after FROM: the stage is that stored image
   * itself (Docker 20.10 commits nothing, so the built image is the base image, same ID, no default
   * PATH added).
   */
  unchanged?: ResolvedImage;
}

/** Everything a step needs from the build. */
export interface BuildContext {
  store: Store;
  options: BuildOptions;
  df: Dockerfile;
  file: string;
  plan: BuildPlan;
  platform: Platform;
  buildArgs: Readonly<Record<string, string>>;
  created: () => string;
  emit: (e: BuildEvent) => void;
  /** finished stages by index */
  stages: Map<number, Promise<ImageState>>;
  steps: StepResult[];
  usedArgs: Set<string>;
  /** the build cache (keys, records, explanations) */
  cache: BuildCache;
  /** the context's compiled `.dockerignore`, read by the first COPY/ADD that needs it */
  ignore?: Promise<IgnoreMatcher>;
  /** canonical JSON of history entries, for the step IDs (see stateId) */
  readonly encodedHistory: WeakMap<object, string>;
  /**
   * Takes the store's content lease (Store.lease) on first call and keeps it to the build's end:
   * call it before mounting, linking or writing snapshots, so that no garbage collection removes
   * them under the build. A fully cached build never calls it (and takes no lock).
   */
  holdContent: () => Promise<void>;
}

/**
 * Builds an image. Tags it only when every step succeeded.
 * @throws BuildError (E_STEP_FAILED with `exitCode` for a failing RUN; E_BASE_IMAGE, E_PLATFORM…),
 *   the parser's DockerfileParseError/ExpansionError, StoreError.
 */
/** Docker 20.10's parser reads a Dockerfile with a bufio.Scanner whose token limit is 64 KiB - 1. */
const MAX_LINE_BYTES = 65535;

/**
 * Refuses a physical line longer than Docker's parser takes (a 1 MB `RUN` would otherwise reach
 * exec and fail with E2BIG, its whole text repeated in the error).
 * @throws BuildError E_STEP "failed to parse FILE: dockerfile line greater than max allowed size of 65535".
 */
function checkLineLengths(text: string, file: string): void {
  let line = 1;
  for (let start = 0; start <= text.length; line++) {
    const end = text.indexOf('\n', start);
    const stop = end < 0 ? text.length : end;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: shorter lines need no byte count
    if (stop - start > MAX_LINE_BYTES / 3 && Buffer.byteLength(text.slice(start, stop)) > MAX_LINE_BYTES) {
      throw new BuildError('E_STEP', `${file}:${line}: failed to parse ${file}: dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, {
        hint: 'split the line with "\\" continuations (each physical line counts), or move the script into a file in the context and COPY it',
        file,
        line,
      });
    }
    if (end < 0) break;
    start = end + 1;
  }
}

export async function build(options: BuildOptions): Promise<BuildResult> {
  const store = typeof options.store === 'string' ? await Store.open(options.store) : options.store;
  // what a build killed outright left (work dirs, mounts, a running sandbox) goes first
  await reapStaleWork(store);
  const file = options.dockerfileName ?? 'Dockerfile';
  const text = 'text' in options.dockerfile ? options.dockerfile.text : await readFile(options.dockerfile.path, 'utf8');
  checkLineLengths(text, file);
  const df = parseDockerfile(text, { file });
  const emit = (e: BuildEvent): void => options.onEvent?.(e);
  for (const w of df.warnings) emit({ type: 'warning', message: w.message, line: w.line, code: w.code });
  const platform = options.platform ?? hostPlatform();
  const buildArgs = options.buildArgs ?? {};
  const plan = planBuild(df, { buildArgs, target: options.target, platform, file });
  const now = options.now ?? (() => new Date());
  const created = (): string =>
    options.sourceDateEpoch !== undefined ? new Date(options.sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z') : now().toISOString();
  let lease: ReturnType<Store['lease']> | undefined;
  const ctx: BuildContext = { store, options, df, file, plan, platform, buildArgs, created, emit, stages: new Map(), steps: [], usedArgs: new Set(), encodedHistory: new WeakMap(),
    holdContent: async () => void (await (lease ??= store.lease(options.signal ? { signal: options.signal } : {}))),
    cache: new BuildCache(store, { project: JSON.stringify([options.contextDir, 'path' in options.dockerfile ? options.dockerfile.path : file]), noCache: options.noCache === true, noCacheFilter: options.noCacheFilter ?? [], now: options.now ?? (() => new Date()), contextDir: options.contextDir }),
  };
  // Docker prints a step for each meta ARG before the first FROM
  for (const [k, a] of df.metaArgs.entries()) {
    emit({ type: 'step-start', stage: -1, index: k, total: df.metaArgs.length, instruction: instructionText(a), line: a.range.start.line, step: k + 1, steps: dockerStepCount(ctx) });
  }
  try {
    const limit = pLimit(Math.max(1, availableParallelism()));
    for (const p of plan.stages) {
      ctx.stages.set(
        p.stage.index,
        (async () => {
          await Promise.all(p.deps.map((d) => ctx.stages.get(d)));
          const state = await limit(() => buildStage(ctx, p));
          emit({ type: 'stage-done', stage: p.stage.index });
          return state;
        })(),
      );
    }
    // wait for all, so no stage is still running when we report a failure
    const settled = await Promise.allSettled([...ctx.stages.values()]);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    // the digests and tarsums this build computed, kept for the next one (a failed build's too)
    const saving = ctx.cache.saveStatIndex();
    if (failed) {
      await saving.catch(() => undefined);
      throw failed.reason;
    }
    await saving;
    const final = await (ctx.stages.get(plan.target.index) as Promise<ImageState>);
    const given = [...Object.keys(buildArgs), ...(options.unsetBuildArgs ?? []).filter((k) => !Object.hasOwn(buildArgs, k))];
    const unused = given.filter((k) => !ctx.usedArgs.has(k) && !PREDEFINED_ARGS.has(k) && !plan.metaArgs.has(k));
    if (unused.length > 0) emit({ type: 'warning', code: 'W_UNUSED_BUILD_ARG', message: `One or more build-args [${unused.join(' ')}] were not consumed` });
    // dockerd 20.10's builder.build: a target stage that committed no image (FROM scratch alone)
    if (final.unchanged === undefined && !final.hasBase && final.layers.length === 0 && (final.image.history ?? []).length === 0) {
      throw new BuildError('E_STEP', 'No image was generated. Is your Dockerfile empty?', {
        hint: `the target stage (${ctx.file}:${plan.target.from.range.start.line}) is FROM scratch with no instruction after it: add one, or build another stage with --target`,
        file,
        line: plan.target.from.range.start.line,
      });
    }
    if (final.unchanged !== undefined) {
      // nothing to commit: the tags name the base image itself, as dockerd tags it
      for (const t of new Set(options.tags ?? [])) await store.tag(t, final.unchanged.manifestDescriptor);
      return { id: final.unchanged.id, manifestDigest: final.unchanged.manifestDescriptor.digest, steps: ctx.steps };
    }
    const { id, manifest } = await store.commitImage({ config: committedConfig(final, created), layers: final.layers, tags: options.tags ?? [] });
    return { id, manifestDigest: manifest.digest, steps: ctx.steps };
  } finally {
    // a lease that failed to come is no lease to release
    await lease?.then((l) => l.release(), () => undefined);
  }
}

function envLookup(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

/**
 * Build args visible to a step (Docker's `BuildArgs.FilterAllowed`): declared ARGs with a value and
 * predefined args given with --build-arg, minus names the config's Env sets.
 */
export function allowedArgs(ctx: BuildContext, state: ImageState): Map<string, string> {
  const env = envLookup(state.image.config.Env ?? []);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(ctx.buildArgs)) if (PREDEFINED_ARGS.has(k) && !state.args.has(k) && !env.has(k)) out.set(k, v);
  for (const [k, v] of state.args) if (v !== undefined && !env.has(k)) out.set(k, v);
  return out;
}

function stepLookup(ctx: BuildContext, state: ImageState): Lookup {
  const env = envLookup(state.image.config.Env ?? []);
  const args = allowedArgs(ctx, state);
  return (name) => env.get(name) ?? args.get(name);
}

function applyConfig(ctx: BuildContext, state: ImageState, step: ConfigStep): ImageState {
  const cs: ConfigState = { config: state.image.config, cmdSet: state.cmdSet, ...(state.author !== undefined ? { author: state.author } : {}) };
  const r = applyConfigStep(cs, step);
  const next: ImageState = { ...state, image: { ...state.image, config: r.state.config }, cmdSet: r.state.cmdSet, args: new Map(state.args) };
  if (r.state.author !== undefined) next.author = r.state.author;
  if (step.kind === 'ARG') {
    for (const a of step.args) {
      ctx.usedArgs.add(a.name);
      const cli = ctx.buildArgs[a.name];
      next.args.set(a.name, cli !== undefined ? cli : a.value !== undefined ? a.value : ctx.plan.metaArgs.get(a.name));
    }
  }
  return addHistory(ctx, next, r.createdBy, true);
}

/** Appends a history entry (and the author Docker copies into each entry after MAINTAINER). */
export function addHistory(ctx: BuildContext, state: ImageState, createdBy: string, empty: boolean): ImageState {
  const h: NonNullable<ImageConfig['history']>[number] = { created: ctx.created() };
  if (state.author !== undefined) h.author = state.author;
  h.created_by = createdBy;
  if (empty) h.empty_layer = true;
  return { ...state, image: { ...state.image, history: [...(state.image.history ?? []), h] } };
}

/** Adds a layer (bottom-up) and its diffID to the state. */
export function addLayer(state: ImageState, layer: Descriptor, diffID: DiffID): ImageState {
  return {
    ...state,
    layers: [...state.layers, layer],
    image: { ...state.image, rootfs: { type: 'layers', diff_ids: [...state.image.rootfs.diff_ids, diffID] } },
  };
}

async function baseState(ctx: BuildContext, p: PlannedStage): Promise<ImageState> {
  const from = p.stage.from;
  if (from.platform !== undefined) {
    const want = from.platform.replace(/\$\{?BUILDPLATFORM\}?|\$\{?TARGETPLATFORM\}?/g, platformString(ctx.platform));
    if (want !== platformString(ctx.platform) && want !== `${ctx.platform.os}/${ctx.platform.architecture}`) {
      throw new BuildError('E_PLATFORM', `${ctx.file}:${from.range.start.line}: FROM --platform=${want}: only the build platform ${platformString(ctx.platform)} is supported`, {
        hint: 'remove --platform or build on a machine of that platform',
      });
    }
  }
  const fresh = (image: ImageConfig, layers: Descriptor[], hasBase: boolean): ImageState => ({ image, layers, cmdSet: false, args: new Map(), hasBase });
  if (p.base.kind === 'scratch') {
    const image: ImageConfig = { architecture: ctx.platform.architecture, os: ctx.platform.os, config: scratchConfig(), rootfs: { type: 'layers', diff_ids: [] }, history: [] };
    if (ctx.platform.variant) image.variant = ctx.platform.variant;
    return fresh(image, [], false);
  }
  if (p.base.kind === 'stage') {
    const parent = await (ctx.stages.get(p.base.index) as Promise<ImageState>);
    // an unchanged stage is its base image as stored, which may lack PATH
    const s = fresh(withDefaultPath(structuredClone(parent.image)), [...parent.layers], parent.hasBase || parent.layers.length > 0);
    if (parent.author !== undefined) s.author = parent.author;
    return s;
  }
  let resolved;
  try {
    resolved = await ctx.cache.resolveImage(p.base.ref);
  } catch (err) {
    if (err instanceof ImageNotFoundError) {
      // dockerd pulls an image it does not have, and a reference it cannot parse fails there
      const invalid = invalidImageReference(p.base.ref, err.cause);
      if (invalid !== undefined) {
        throw new BuildError('E_BASE_IMAGE', `${ctx.file}:${from.range.start.line}: ${from.raw}: ${invalid}`, { ...(err.hint !== undefined ? { hint: err.hint } : {}), cause: err, file: ctx.file, line: from.range.start.line });
      }
      throw new BuildError('E_BASE_IMAGE', `${ctx.file}:${from.range.start.line}: base image "${p.base.ref}" is not in the store`, {
        hint: 'add it with `tsbuild load` (docker save archive), `tsbuild import` (rootfs tarball) or `tsbuild pull`',
        cause: err,
      });
    }
    throw err;
  }
  return withDefaultPath(storedState(resolved));
}

/** The state of a stored image as it is (FROM's starting point before the default PATH). */
function storedState(resolved: ResolvedImage): ImageState {
  const cfg = resolved.config;
  const image: ImageConfig = {
    architecture: cfg.architecture,
    os: cfg.os,
    config: structuredClone(cfg.config ?? {}),
    rootfs: { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids] },
    history: [...(cfg.history ?? [])],
  };
  if (cfg.variant) image.variant = cfg.variant;
  const s: ImageState = { image, layers: resolved.manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })), cmdSet: false, args: new Map(), hasBase: true };
  if (cfg.author !== undefined) s.author = cfg.author;
  return s;
}

/** Docker's dispatchState.setDefaultPath (every FROM): a config without PATH gets the default one. */
function withDefaultPath<T extends ImageState | ImageConfig>(x: T): T {
  const image: ImageConfig = 'layers' in x ? x.image : x;
  if (!(image.config.Env ?? []).some((e) => e.startsWith('PATH='))) image.config.Env = [...(image.config.Env ?? []), `PATH=${DEFAULT_PATH}`];
  return x;
}

/**
 * The stored image a stage with nothing after FROM is (Docker 20.10 commits no image for it: the
 * result is the base image, or what an unchanged parent stage is); undefined for FROM scratch.
 */
async function unchangedBase(ctx: BuildContext, p: PlannedStage): Promise<ResolvedImage | undefined> {
  if (p.base.kind === 'image') return ctx.cache.resolveImage(p.base.ref);
  if (p.base.kind === 'stage') return (await (ctx.stages.get(p.base.index) as Promise<ImageState>)).unchanged;
  return undefined;
}

/** Docker 20.10's step count before stage `index`: the meta ARGs and each earlier stage's FROM and instructions. */
function dockerStepOffset(ctx: BuildContext, index: number): number {
  let n = ctx.df.metaArgs.length;
  for (const s of ctx.df.stages) if (s.index < index) n += 1 + s.instructions.length;
  return n;
}

/** Docker 20.10's total: everything up to the target stage (it builds them all) and the --label steps. */
function dockerStepCount(ctx: BuildContext): number {
  return dockerStepOffset(ctx, ctx.plan.target.index + 1) + Object.keys(ctx.options.labels ?? {}).length;
}

function instructionText(instr: Instruction): string {
  return instr.raw;
}

/**
 * The ID the CLI shows after a step (` ---> <12 hex>`): the digest of the image config as it
 * stands, like the intermediate image ID Docker's classic builder prints (ours is not committed).
 */
/**
 * The config a state is committed as: Docker dates an image by its last step (so a rebuild whose
 * steps all hit the cache gives the same image ID again), and keeps MAINTAINER's author.
 */
function committedConfig(state: ImageState, created: () => string): ImageConfig {
  const image: ImageConfig = { ...state.image, created: state.image.history?.at(-1)?.created ?? created() };
  if (state.author !== undefined) image.author = state.author;
  return image;
}

/**
 * The ID a step prints (` ---> <id>`): the image ID the state would have if committed, as Docker
 * prints each intermediate image's ID; the last step's is the built image's, FROM's the base's.
 */
function stateId(state: ImageState, encoded: WeakMap<object, string>): string {
  const config = committedConfig(state, () => state.image.created ?? '');
  // History entries are never modified once made (steps replace them), and every step's config
  // repeats all earlier ones: each is encoded once per build, not once per later step.
  const entry = (h: object): string => {
    let json = encoded.get(h);
    if (json === undefined) encoded.set(h, (json = canonicalJSON(h, 'history')));
    return json;
  };
  const history = config.history === undefined ? undefined : new EncodedJSON(`[${config.history.map(entry).join(',')}]`);
  return sha256Of(Buffer.from(canonicalJSON({ ...config, history }, 'config')));
}

async function buildStage(ctx: BuildContext, p: PlannedStage): Promise<ImageState> {
  const fromStarted = performance.now();
  let state = await baseState(ctx, p);
  const fromMs = performance.now() - fromStarted;
  const cursor = await ctx.cache.startStage(ctx, p);
  const stage: Stage = p.stage;
  const triggers = state.image.config.OnBuild ?? [];
  let instructions: Instruction[] = [...stage.instructions];
  if (triggers.length > 0) {
    // the base image's ONBUILD triggers run right after FROM, and are not inherited
    const parsed = parseDockerfile(`FROM scratch\n${triggers.join('\n')}\n`, { file: `${ctx.file} (ONBUILD of ${stage.from.image})` });
    instructions = [...(parsed.stages[0]?.instructions ?? []), ...instructions];
    delete state.image.config.OnBuild;
  }
  // `--label k=v` options: one unexpanded LABEL step each, sorted by key, after the target
  // stage's last instruction (Docker 20.10's buildLabelOptions after the --target cut)
  const labelSteps = p.stage.index === ctx.plan.target.index ? labelOptionSteps(ctx.options.labels ?? {}, instructions.at(-1) ?? stage.from) : [];
  const fixedSteps = new Map<Instruction, ExpandedStep>(labelSteps);
  instructions = [...instructions, ...labelSteps.map(([instr]) => instr)];
  const total = instructions.length + 1;
  // Docker's numbering: meta ARGs, then every stage before this one (FROM + its instructions)
  const first = dockerStepOffset(ctx, stage.index) + 1;
  const steps = dockerStepCount(ctx);
  const triggerCount = instructions.length - stage.instructions.length - labelSteps.length;
  ctx.emit({ type: 'step-start', stage: stage.index, index: 0, total, instruction: stage.from.raw, line: stage.from.range.start.line, step: first, steps, ...(triggerCount > 0 ? { triggers: triggerCount } : {}) });
  // Docker prints the base image's own ID after FROM; FROM scratch has none (' ---> ' alone)
  const fromId = p.base.kind === 'image' ? (await ctx.cache.resolveImage(p.base.ref)).id : p.base.kind === 'scratch' ? '' : stateId(state, ctx.encodedHistory);
  ctx.emit({ type: 'step-done', stage: stage.index, index: 0, durationMs: fromMs, cached: false, id: fromId });
  for (const [i, instr] of instructions.entries()) {
    ctx.options.signal?.throwIfAborted();
    const index = i + 1;
    const line = instr.range.start.line;
    const trigger = i < triggerCount;
    ctx.emit({ type: 'step-start', stage: stage.index, index, total, instruction: instructionText(instr), line, ...(trigger ? { trigger } : { step: first + index - triggerCount, steps }) });
    const started = performance.now();
    const layersBefore = state.layers.length;
    let cached = false;
    try {
      const step = fixedSteps.get(instr) ?? expandStep(instr, stepLookup(ctx, state), ctx.df.directives.escape);
      // printed at dispatch, before the cache is asked (a cached step prints it too)
      const note = step.kind === 'HEALTHCHECK' ? healthcheckOverrideNote(state.image.config) : undefined;
      if (note !== undefined) ctx.emit({ type: 'step-log', stage: stage.index, index, stream: 'stdout', bytes: Buffer.from(note) });
      const mounts = runMountsOf(instr, stepLookup(ctx, state), ctx.df.directives.escape);
      const outcome = await ctx.cache.step(ctx, cursor, { state, step, instr, mounts, index }, async (state, prior) => {
        if (isFsStep(step)) state = await runFsStep(ctx, state, step, p, index, mounts, prior);
        else state = applyConfig(ctx, state, step);
        // Docker 20.10 commits WORKDIR's mkdir as a layer (FROM scratch too); empty_layer when it existed
        if (step.kind === 'WORKDIR') state = await ensureWorkdir(ctx, state);
        return state;
      });
      state = outcome.state;
      cached = outcome.cached;
    } catch (err) {
      ctx.emit({ type: 'step-error', stage: stage.index, index, message: err instanceof Error ? err.message : String(err) });
      if (err instanceof BuildError && err.line !== undefined) throw err;
      throw new BuildError(err instanceof BuildError ? err.code : 'E_STEP', `${ctx.file}:${line}: ${instr.raw}: ${err instanceof Error ? err.message : String(err)}`, {
        // every package's errors carry their hint (ContextError: "write the destination as …")
        ...(typeof (err as { hint?: unknown }).hint === 'string' ? { hint: (err as { hint: string }).hint } : {}),
        cause: err,
        file: ctx.file,
        line,
        ...(err instanceof BuildError && err.exitCode !== undefined ? { exitCode: err.exitCode } : {}),
      });
    }
    const layer = state.layers.length > layersBefore ? state.layers[state.layers.length - 1]?.digest : undefined;
    ctx.steps.push({ stage: stage.index, index, instruction: instr.raw, cached, ...(layer ? { layer } : {}) });
    ctx.emit({ type: 'step-done', stage: stage.index, index, durationMs: performance.now() - started, cached, ...(layer ? { layer } : {}), id: stateId(state, ctx.encodedHistory) });
  }
  ctx.cache.endStage(cursor);
  if (instructions.length === 0) {
    const unchanged = await unchangedBase(ctx, p);
    if (unchanged !== undefined) return { ...storedState(unchanged), unchanged };
  }
  return state;
}

/**
 * The steps `--label` adds: for each key in Go's sort order, a LABEL instruction (raw `LABEL k=v`,
 * placed at `after`'s source range) and its config step, never variable-expanded (Docker's
 * NewLabelCommand(k, v, true)).
 */
export function labelOptionSteps(labels: Readonly<Record<string, string>>, after: Instruction): Array<[LabelInstruction, ExpandedStep]> {
  const keys = Object.keys(labels).sort(compareUtf8);
  return keys.map((k) => {
    const v = labels[k] as string;
    const instr: LabelInstruction = { kind: 'LABEL', keyword: 'LABEL', range: after.range, raw: `LABEL ${k}=${v}`, flags: [], pairs: [[k, v]] };
    return [instr, { kind: 'LABEL', pairs: [[k, v]] }];
  });
}

/** The environment a RUN sees: Env, then the allowed build args, and PATH when unset. */
export function runEnv(ctx: BuildContext, state: ImageState): string[] {
  const env = [...(state.image.config.Env ?? [])];
  for (const [k, v] of allowedArgs(ctx, state)) env.push(`${k}=${v}`);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(`PATH=${DEFAULT_PATH}`);
  return env;
}

/**
 * The build args Docker 20.10 lists in a RUN's command (prependEnvOnCmd), which is both its history
 * and its cache key: the allowed args (sorted by name) except predefined args (HTTP_PROXY…) given with
 * --build-arg and not declared in the stage (IsReferencedOrNotBuiltin); `prefixed` when any arg is
 * allowed at all (the `|N` prefix appears, so `|0 <argv>` is possible). A change of an unlisted
 * proxy arg is no cache miss; adding or dropping the only one is (the prefix comes or goes).
 */
export function listedRunArgs(ctx: BuildContext, state: ImageState): { listed: Array<[string, string]>; prefixed: boolean } {
  const allowed = [...allowedArgs(ctx, state)];
  const listed = allowed.filter(([k]) => !PREDEFINED_ARGS.has(k) || state.args.has(k));
  listed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { listed, prefixed: allowed.length > 0 };
}

/** History of a RUN: `|N a=1 b=2 <argv>` when build args are in scope, as Docker writes it (see {@link listedRunArgs}). */
export function runCreatedBy(ctx: BuildContext, state: ImageState, argv: readonly string[]): string {
  const { listed, prefixed } = listedRunArgs(ctx, state);
  const shown = listed.map(([k, v]) => `${k}=${v}`).sort(); // Docker sorts the `k=v` strings
  for (const k of state.args.keys()) ctx.usedArgs.add(k);
  return (prefixed ? [`|${shown.length}`, ...shown, ...argv] : [...argv]).join(' ');
}

function isFsStep(s: ExpandedStep): s is FsStep {
  return s.kind === 'RUN' || s.kind === 'COPY' || s.kind === 'ADD';
}
