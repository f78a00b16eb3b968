/**
 * Build planning: which stages the target needs, in which order, and the build-argument scopes
 * (meta ARGs before FROM, `--build-arg`, predefined proxy args, BuildKit's platform args).
 * Pure: the Dockerfile model and options in, a plan out.
 */
import type { Dockerfile, Stage, Lookup } from '@tsbuild/parser';
import { expandWord } from '@tsbuild/parser';
import type { Platform } from '@tsbuild/layer-store';
import { BuildError } from './errors.js';

/** Args Docker lets `--build-arg` set without an ARG instruction; never committed or in history. */
export const PREDEFINED_ARGS: ReadonlySet<string> = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((n) => [n, n.toLowerCase()]),
);

/** `linux/amd64`-style platform string. */
export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The platform of this machine, named as OCI does (`amd64`, `arm64`…). */
export function hostPlatform(nodeArch: string = process.arch): Platform {
  const map: Record<string, Platform> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return map[nodeArch] ?? { os: 'linux', architecture: nodeArch };
}

/** TARGETPLATFORM, TARGETOS… as BuildKit defines them (target = build platform here). */
export function platformArgs(p: Platform): Map<string, string> {
  const s = platformString(p);
  const out = new Map<string, string>();
  for (const prefix of ['TARGET', 'BUILD']) {
    out.set(`${prefix}PLATFORM`, s);
    out.set(`${prefix}OS`, p.os);
    out.set(`${prefix}ARCH`, p.architecture);
    out.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return out;
}

/** One stage of the plan with the stages it needs. */
export interface PlannedStage {
  stage: Stage;
  /** FROM after meta-arg expansion (lower-cased when it names a stage). */
  base: { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };
  /** indices of stages this one reads (FROM, COPY --from, RUN --mount from=) */
  deps: number[];
}

/** What the executor runs. */
export interface BuildPlan {
  /** needed stages, each after the stages it depends on */
  stages: PlannedStage[];
  target: Stage;
  /** meta ARG values (after `--build-arg`), visible to FROM lines and to stage ARGs redeclaring them */
  metaArgs: Map<string, string | undefined>;
}

/** Options of {@link planBuild}. */
export interface PlanOptions {
  buildArgs: Readonly<Record<string, string>>;
  target?: string | undefined;
  platform: Platform;
  file: string;
}

/** Resolves `ref` (a stage name or index) against the stages before `before`. */
export function stageRef(df: Dockerfile, ref: string, before: number): number | undefined {
  const lower = ref.toLowerCase();
  const byName = df.stages.find((s) => s.index < before && s.name === lower);
  if (byName) return byName.index;
  if (/^\d+$/.test(ref)) {
    const i = Number(ref);
    if (i < before) return i;
  }
  return undefined;
}

/** Expands the meta args (ARGs before the first FROM) in order, with build args overriding defaults. */
export function resolveMetaArgs(df: Dockerfile, opts: PlanOptions): Map<string, string | undefined> {
  const meta = new Map<string, string | undefined>();
  for (const [k, v] of platformArgs(opts.platform)) meta.set(k, v);
  const lookup: Lookup = (n) => meta.get(n);
  for (const instr of df.metaArgs) {
    for (const a of instr.args) {
      const fromCli = opts.buildArgs[a.name];
      const value =
        fromCli !== undefined ? fromCli : a.defaultValue !== undefined ? expandWord(a.defaultValue, lookup, { escape: df.directives.escape }) : meta.get(a.name);
      meta.set(a.name, value);
    }
  }
  return meta;
}

/**
 * Plans a build: the target stage (`--target`, else the last), every stage it reaches through
 * FROM, COPY --from and RUN --mount from=, in dependency order.
 * @throws BuildError E_UNKNOWN_TARGET when `--target` names no stage; E_STEP "a stage name already
 * used" when a stage up to the target reuses an earlier stage's name (Docker 20.10).
 */
export function planBuild(df: Dockerfile, opts: PlanOptions): BuildPlan {
  const metaArgs = resolveMetaArgs(df, opts);
  const lookup: Lookup = (n) => metaArgs.get(n);
  let target = df.stages[df.stages.length - 1] as Stage;
  if (opts.target !== undefined) {
    const t = df.stages.find((s) => s.name === opts.target?.toLowerCase());
    if (!t) {
      throw new BuildError('E_UNKNOWN_TARGET', `failed to reach build target ${opts.target} in Dockerfile`, {
        hint: `stages: ${df.stages.map((s) => s.name ?? String(s.index)).join(', ')}`,
      });
    }
    target = t;
  }
  // Docker 20.10's checkStageNameAvailable, for each stage up to the target, as it reaches it
  const names = new Map<string, Stage>();
  for (const stage of df.stages.slice(0, target.index + 1)) {
    if (stage.name === undefined) continue;
    const first = names.get(stage.name);
    if (first) {
      throw new BuildError('E_STEP', `${opts.file}:${stage.from.range.start.line}: ${stage.name} stage name already used`, {
        file: opts.file,
        line: stage.from.range.start.line,
        hint: `the first stage named ${stage.name} is on line ${first.from.range.start.line}; stage names are case-insensitive`,
      });
    }
    names.set(stage.name, stage);
  }
  const planned = df.stages.map((stage): PlannedStage => {
    const image = expandWord(stage.from.image, lookup, { escape: df.directives.escape });
    const deps = new Set<number>();
    let base: PlannedStage['base'];
    const fromStage = stageRef(df, image, stage.index);
    if (image.toLowerCase() === 'scratch') base = { kind: 'scratch' };
    else if (fromStage !== undefined && !/^\d+$/.test(image)) {
      base = { kind: 'stage', index: fromStage };
      deps.add(fromStage);
    } else base = { kind: 'image', ref: image };
    const addRef = (ref: string): void => {
      // a reference holding a variable (`--from=${SRC}`) is expanded at the step, with the
      // stage's ARGs and ENV: it may name any earlier stage, so all of them are built first
      // (Docker's classic builder builds every stage before the target anyway)
      if (ref.includes('$')) {
        for (let i = 0; i < stage.index; i++) deps.add(i);
        return;
      }
      const i = stageRef(df, ref, stage.index);
      if (i !== undefined) deps.add(i);
    };
    for (const instr of stage.instructions) {
      if (instr.kind === 'COPY' && instr.from !== undefined) addRef(instr.from);
      if (instr.kind === 'RUN') {
        for (const m of instr.mounts) if (m.from !== undefined) addRef(m.from);
      }
    }
    return { stage, base, deps: [...deps].sort((a, b) => a - b) };
  });
  // Docker 20.10's classic builder builds every stage up to the target, in order, whether the
  // target reads it or not (dispatchDockerfileWithCancellation truncates the stages at the target
  // only): an unused stage that fails fails the build (checked against dockerd). Dependencies
  // always point to earlier stages, so index order is a topological order; `deps` lets independent
  // stages run side by side.
  const stages = planned.slice(0, target.index + 1);
  return { stages, target, metaArgs };
}
