/**
 * Word expansion per instruction (exactly where Docker expands) and the static evaluation
 * of a parsed Dockerfile: ARG/ENV scope per stage, build args, target, and the errors
 * Docker raises while evaluating instructions without running anything.
 */
import { DockerfileError, DockerfileParseError, ExpansionError } from './errors.js';
import { expandWord, expandWords, type ExpandOptions, type Lookup } from './expand.js';
import { parseDockerfile } from './parse.js';
import type { Dockerfile, Heredoc, Instruction, KeyValue, Warning } from './types.js';
import { parseMount, parsePortSpec, parseSignal, ValueError } from './validate.js';

/** Options of {@link expandInstruction}. */
export interface ExpandInstructionOptions {
  readonly escape?: '\\' | '`';
  readonly file?: string;
}

/**
 * Returns `instr` with its words expanded where Docker expands them: FROM (image,
 * --platform), ENV/LABEL keys and values, ARG names and defaults, WORKDIR, USER, VOLUME,
 * STOPSIGNAL, EXPOSE (split into words), COPY/ADD sources, dest, --chown, --chmod, --from
 * and unquoted heredoc bodies, RUN --mount values. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK
 * text, MAINTAINER and ONBUILD are returned unchanged.
 * @throws DockerfileError (E_EXPANSION / E_MOUNT) located at the instruction
 */
export function expandInstruction(instr: Instruction, lookup: Lookup, opts: ExpandInstructionOptions = {}): Instruction {
  const escape = opts.escape ?? '\\';
  const wordOpts: ExpandOptions = { escape };
  const w = (s: string): string => expandWord(s, lookup, wordOpts);
  try {
    switch (instr.kind) {
      case 'FROM':
        return { ...instr, image: w(instr.image), platform: instr.platform !== undefined ? w(instr.platform) : undefined };
      case 'ENV':
      case 'LABEL':
        return { ...instr, pairs: instr.pairs.map(([k, v]): KeyValue => [w(k), w(v)]) };
      case 'ARG':
        return {
          ...instr,
          args: instr.args.map((a) => ({ name: w(a.name), defaultValue: a.defaultValue !== undefined ? w(a.defaultValue) : undefined })),
        };
      case 'WORKDIR':
        return { ...instr, path: w(instr.path) };
      case 'USER':
        return { ...instr, user: w(instr.user) };
      case 'VOLUME':
        return { ...instr, paths: instr.paths.map(w) };
      case 'STOPSIGNAL':
        return { ...instr, signal: w(instr.signal) };
      case 'EXPOSE':
        return { ...instr, ports: instr.ports.flatMap((p) => expandWords(p, lookup, wordOpts)) };
      case 'COPY':
      case 'ADD': {
        const heredocs = instr.heredocs.map(
          (h): Heredoc => (h.expand ? { ...h, content: expandWord(h.content, lookup, { escape: '\\', skipQuotes: true }) } : h),
        );
        const common = {
          sources: instr.sources.map(w),
          dest: w(instr.dest),
          heredocs,
          chown: instr.chown !== undefined ? w(instr.chown) : undefined,
          chmod: instr.chmod !== undefined ? w(instr.chmod) : undefined,
        };
        if (instr.kind === 'COPY') return { ...instr, ...common, from: instr.from !== undefined ? w(instr.from) : undefined };
        return { ...instr, ...common };
      }
      case 'RUN': {
        const mounts = instr.mounts.map((m) => {
          try {
            return parseMount(m.raw, w);
          } catch (err) {
            if (err instanceof ValueError) throw errorAt(instr, opts.file, 'E_MOUNT', err.message);
            throw err;
          }
        });
        return { ...instr, mounts };
      }
      default:
        return instr;
    }
  } catch (err) {
    if (err instanceof ExpansionError) throw errorAt(instr, opts.file, 'E_EXPANSION', err.message);
    throw err;
  }
}

/** An error located at `instr`, quoting its text. */
function errorAt(instr: Instruction, file: string | undefined, code: 'E_EXPANSION' | 'E_MOUNT' | 'E_SIGNAL' | 'E_PORT', message: string): DockerfileError {
  return new DockerfileError(code, { file, line: instr.range.start.line, column: instr.range.start.column }, message, { text: instr.raw });
}

/** Options of {@link checkDockerfile}. */
export interface CheckOptions {
  /** `--build-arg` values. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** `--target` stage name; default: the last stage. */
  readonly target?: string;
  readonly file?: string;
}

/** One evaluated stage: its instructions after expansion, and the environment it ends with. */
export interface CheckedStage {
  readonly index: number;
  readonly instructions: readonly Instruction[];
  readonly env: readonly KeyValue[];
}

export interface CheckResult {
  /** Empty when Docker would accept the file; otherwise Docker's error first. */
  readonly errors: readonly DockerfileError[];
  readonly warnings: readonly Warning[];
  /** Index of the target stage (-1 when the target is unknown). */
  readonly targetIndex: number;
  readonly stages: readonly CheckedStage[];
}

/** Build args Docker lets through without an ARG declaration. */
const BUILTIN_ARGS = new Set([
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
]);

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Evaluates a parsed Dockerfile the way Docker 20.10's classic builder does before running
 * anything: duplicate stage names, the target, then every stage from the first up to the
 * target (the classic builder builds them all, in order) with ARG/ENV scope (meta ARGs
 * visible to FROM; inside a stage only after re-declaration; build args override defaults;
 * ENV wins over ARG; ONBUILD triggers of an earlier stage run in stages built FROM it),
 * expanding every instruction and validating STOPSIGNAL, EXPOSE and RUN --mount.
 * Stops at the first error, as Docker does. Env of non-stage base images is unknown (empty).
 */
export function checkDockerfile(df: Dockerfile, opts: CheckOptions = {}): CheckResult {
  const buildArgs = opts.buildArgs ?? {};
  const escape = df.directives.escape;
  const expandOpts: ExpandInstructionOptions = { escape, file: opts.file };
  const errors: DockerfileError[] = [];
  const warnings: Warning[] = [...df.warnings];
  const done = (targetIndex: number, stages: CheckedStage[]): CheckResult => ({ errors, warnings, targetIndex, stages });
  const has = (o: Readonly<Record<string, string>>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

  const seen = new Map<string, number>();
  for (const st of df.stages) {
    if (st.name === undefined) continue;
    if (seen.has(st.name)) {
      errors.push(
        new DockerfileError('E_DUPLICATE_STAGE', { file: opts.file, line: st.from.range.start.line, column: st.from.range.start.column }, `duplicate stage name ${JSON.stringify(st.name)}`, {
          hint: `stage names are case-insensitive; the first one is on line ${df.stages[seen.get(st.name)!]!.from.range.start.line}`,
        }),
      );
      return done(-1, []);
    }
    seen.set(st.name, st.index);
  }
  let targetIndex = df.stages.length - 1;
  if (opts.target !== undefined) {
    const t = seen.get(opts.target.toLowerCase());
    if (t === undefined) {
      errors.push(
        new DockerfileError('E_UNKNOWN_TARGET', { file: opts.file, line: 1, column: 1 }, `failed to reach build target ${opts.target} in Dockerfile`, {
          hint: seen.size ? `stages: ${[...seen.keys()].join(', ')}` : 'name a stage with FROM image AS name',
        }),
      );
      return done(-1, []);
    }
    targetIndex = t;
  }
  const consumed = new Set<string>();
  const fail = (err: unknown): boolean => {
    if (err instanceof DockerfileError) {
      errors.push(err);
      return true;
    }
    throw err;
  };

  // Meta ARGs (before the first FROM).
  const meta = new Map<string, string | undefined>();
  const metaLookup: Lookup = (n) => meta.get(n);
  for (const a of df.metaArgs) {
    let ex: Instruction;
    try {
      ex = expandInstruction(a, metaLookup, expandOpts);
    } catch (err) {
      fail(err);
      return done(targetIndex, []);
    }
    if (ex.kind !== 'ARG') continue;
    for (const d of ex.args) {
      consumed.add(d.name);
      meta.set(d.name, has(buildArgs, d.name) ? buildArgs[d.name] : d.defaultValue);
    }
  }

  const checked: CheckedStage[] = [];
  const stageTriggers: string[][] = [];
  for (const st of df.stages.slice(0, targetIndex + 1)) {
    let from: Instruction;
    try {
      from = expandInstruction(st.from, metaLookup, expandOpts);
    } catch (err) {
      fail(err);
      return done(targetIndex, checked);
    }
    const image = from.kind === 'FROM' ? from.image.toLowerCase() : '';
    const parent = seen.get(image);
    const env = new Map<string, string>();
    let inherited: string[] = [];
    if (parent !== undefined && parent < st.index) {
      for (const [k, v] of checked[parent]!.env) env.set(k, v);
      inherited = stageTriggers[parent] ?? [];
    } else if (image === 'scratch') {
      env.set('PATH', DEFAULT_PATH);
    }
    const args = new Map<string, string | undefined>();
    for (const k of Object.keys(buildArgs)) if (BUILTIN_ARGS.has(k)) args.set(k, buildArgs[k]);
    const lookup: Lookup = (n) => (env.has(n) ? env.get(n) : args.get(n));
    const out: Instruction[] = [from];
    const triggers: string[] = [];
    const line = st.from.range.start.line;

    let list: readonly Instruction[] = st.instructions;
    if (inherited.length > 0) {
      try {
        list = [...triggerInstructions(inherited, escape, opts.file, line), ...st.instructions];
      } catch (err) {
        fail(err);
        return done(targetIndex, checked);
      }
    }
    for (const ins of list) {
      let ex: Instruction;
      try {
        ex = expandInstruction(ins, lookup, expandOpts);
        validate(ex, opts.file);
      } catch (err) {
        fail(err);
        return done(targetIndex, checked);
      }
      out.push(ex);
      switch (ex.kind) {
        case 'ENV':
          for (const [k, v] of ex.pairs) env.set(k, v);
          break;
        case 'ARG':
          for (const d of ex.args) {
            consumed.add(d.name);
            const v = has(buildArgs, d.name) ? buildArgs[d.name] : d.defaultValue !== undefined ? d.defaultValue : meta.get(d.name);
            args.set(d.name, v);
          }
          break;
        case 'ONBUILD':
          triggers.push(ex.triggerText);
          break;
        default:
          break;
      }
    }
    stageTriggers[st.index] = triggers;
    checked.push({ index: st.index, instructions: out, env: [...env] });
  }
  const unused = Object.keys(buildArgs).filter((k) => !consumed.has(k) && !BUILTIN_ARGS.has(k));
  if (unused.length > 0) {
    warnings.push({ code: 'W_UNUSED_BUILD_ARG', line: 1, message: `one or more build-args [${unused.join(' ')}] were not consumed` });
  }
  return done(targetIndex, checked);
}

/** Parses inherited ONBUILD triggers; errors are reported at the child's FROM line. */
function triggerInstructions(texts: readonly string[], escape: '\\' | '`', file: string | undefined, line: number): Instruction[] {
  const out: Instruction[] = [];
  for (const text of texts) {
    const upper = text.trim().split(/\s+/)[0]?.toUpperCase();
    const relocate = (detail: string, code: DockerfileError['code']): DockerfileError =>
      new DockerfileError(code, { file, line, column: 1 }, `ONBUILD trigger ${JSON.stringify(text)}: ${detail}`);
    if (upper === 'ONBUILD' || upper === 'FROM' || upper === 'MAINTAINER') throw relocate(`${upper} isn't allowed as an ONBUILD trigger`, 'E_ONBUILD');
    try {
      const df = parseDockerfile(`# escape=${escape}\nFROM scratch\n${text}\n`, file !== undefined ? { file } : {});
      out.push(...df.stages[0]!.instructions.map((i) => relocateInstruction(i, line)));
    } catch (err) {
      if (err instanceof DockerfileParseError) throw relocate(err.errors[0]?.detail ?? err.message, err.errors[0]?.code ?? 'E_ONBUILD');
      throw err;
    }
  }
  return out;
}

function relocateInstruction(i: Instruction, line: number): Instruction {
  const pos = { line, column: 1 };
  return { ...i, range: { start: pos, end: pos } };
}

/** The checks Docker makes on expanded values while dispatching. */
function validate(ins: Instruction, file: string | undefined): void {
  try {
    if (ins.kind === 'STOPSIGNAL') parseSignal(ins.signal);
  } catch (err) {
    if (err instanceof ValueError) throw errorAt(ins, file, 'E_SIGNAL', err.message);
    throw err;
  }
  if (ins.kind === 'EXPOSE') {
    for (const p of ins.ports) {
      try {
        parsePortSpec(p);
      } catch (err) {
        if (err instanceof ValueError) throw errorAt(ins, file, 'E_PORT', err.message);
        throw err;
      }
    }
  }
}
