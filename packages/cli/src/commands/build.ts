/**
 * `tsbuild build`: flags → build() → Docker-classic-style progress. SOURCE_DATE_EPOCH is read here
 * (the library never reads the environment).
 */
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { isIP } from 'node:net';
import { resolve, join, isAbsolute, dirname, relative } from 'node:path';
import type { Command, CliContext } from '../context.js';
import { parseArgs, flagBool, flagList, flagString, UsageError, type FlagSpec } from '../args.js';

const FLAGS: FlagSpec[] = [
  { name: 'tag', short: 't', type: 'string', multiple: true, help: 'Name and optionally a tag in the "name:tag" format' },
  { name: 'file', short: 'f', type: 'string', help: "Name of the Dockerfile (default: 'PATH/Dockerfile'; '-' reads stdin)" },
  { name: 'build-arg', type: 'string', multiple: true, help: 'Set build-time variables (NAME=value, or NAME to take it from the environment)' },
  { name: 'target', type: 'string', help: 'Set the target build stage to build' },
  { name: 'network', type: 'string', help: 'Networking mode for RUN: host (default) or none' },
  { name: 'isolation', type: 'string', help: 'Sandbox for RUN: oci (runc), chroot (unshare + chroot) or auto (default)' },
  { name: 'no-cache', type: 'boolean', help: 'Do not use cache when building the image' },
  { name: 'no-cache-filter', type: 'string', multiple: true, help: 'Do not cache the named stages' },
  { name: 'explain-cache', type: 'boolean', help: 'For each step that was not cached, say which input changed' },
  { name: 'progress', type: 'string', help: 'plain (default: Docker-style steps) or json (one JSON event a line)' },
  { name: 'secret', type: 'string', multiple: true, help: 'Secret for RUN --mount=type=secret: id=x,src=FILE or id=x,env=VAR' },
  { name: 'label', type: 'string', multiple: true, help: 'Set metadata for an image (KEY=value)' },
  { name: 'memory', short: 'm', type: 'string', help: 'Memory limit for RUN (e.g. 512m; needs --isolation oci)' },
  { name: 'cpus', type: 'string', help: 'Number of CPUs for RUN (needs --isolation oci)' },
  { name: 'source-date-epoch', type: 'string', help: 'Timestamp for reproducible images (default: $SOURCE_DATE_EPOCH)' },
  { name: 'quiet', short: 'q', type: 'boolean', help: 'Suppress the build output and print image ID on success' },
  { name: 'iidfile', type: 'string', help: 'Write the image ID to the file' },
  { name: 'add-host', type: 'string', multiple: true, help: 'Add a custom host-to-IP mapping (host:ip) to /etc/hosts of RUN steps' },
  // docker build's other flags, so that scripts written for it run; see COMPAT_FLAGS
  { name: 'rm', type: 'boolean', help: 'Accepted for docker compatibility (there are no intermediate containers)' },
  { name: 'force-rm', type: 'boolean', help: 'Accepted for docker compatibility (there are no intermediate containers)' },
  { name: 'compress', type: 'boolean', help: 'Accepted for docker compatibility (the context is not sent anywhere)' },
  { name: 'disable-content-trust', type: 'boolean', help: 'Accepted for docker compatibility' },
  { name: 'pull', type: 'boolean', help: 'Accepted for docker compatibility: base images come from the store (update one with `tsbuild pull`)' },
  { name: 'platform', type: 'string', help: 'Target platform: only this machine\'s (e.g. linux/amd64)' },
  { name: 'cache-from', type: 'string', multiple: true, help: 'Accepted for docker compatibility (the store is the cache)' },
  { name: 'shm-size', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'memory-swap', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'cpu-shares', short: 'c', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'cpu-period', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'cpu-quota', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'cpuset-cpus', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'cpuset-mems', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'cgroup-parent', type: 'string', help: 'Accepted for docker compatibility (not applied)' },
  { name: 'ulimit', type: 'string', multiple: true, help: 'Accepted for docker compatibility (not applied)' },
  { name: 'security-opt', type: 'string', multiple: true, help: 'Refused as dockerd on Linux refuses it' },
  { name: 'squash', type: 'boolean', help: 'Refused as dockerd without experimental features refuses it' },
];

/**
 * docker build's flags that change nothing here, checked as the docker CLI parses them (exit 125
 * with its message for a bad value); the two dockerd refuses on Linux fail as it does (exit 1).
 */
function checkCompatFlags(args: ReturnType<typeof parseArgs>): void {
  const bad = (flag: string, v: string, why: string): UsageError => new UsageError(`invalid argument "${v}" for "${flag}" flag: ${why}`);
  for (const name of ['rm', 'force-rm', 'compress', 'disable-content-trust', 'pull', 'squash']) {
    const v = flagString(args, name);
    if (v !== undefined && !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(v)) throw bad(`--${name}`, v, `strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`);
  }
  for (const [name, flag] of [['shm-size', '--shm-size'], ['memory-swap', '--memory-swap']] as const) {
    const v = flagString(args, name);
    if (v !== undefined && !(name === 'memory-swap' && v === '-1') && !/^\d+(\.\d+)?\s*([kmgtp]i?)?b?$/i.test(v)) throw bad(flag, v, `invalid size: '${v}'`);
  }
  for (const [name, flag] of [['cpu-shares', '-c, --cpu-shares'], ['cpu-period', '--cpu-period'], ['cpu-quota', '--cpu-quota']] as const) {
    const v = flagString(args, name);
    if (v !== undefined && !/^[+-]?\d+$/.test(v)) throw bad(flag, v, `strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
  }
  for (const v of flagList(args, 'ulimit')) {
    if (!/^[a-z]+=-?\d+(:-?\d+)?$/.test(v)) throw bad('--ulimit', v, `invalid ulimit argument: ${v}`);
  }
  if (flagList(args, 'security-opt').length > 0) throw new BuildInputError('The daemon on this platform does not support setting security options on build');
  if (flagBool(args, 'squash')) throw new BuildInputError('"--squash" is only supported on a Docker daemon with experimental features enabled');
}

/**
 * A context or Dockerfile that cannot be used (missing, not found in the archive, stdin asked for
 * twice): exit status 1 as `docker build` gives (only flag errors are usage errors, 125).
 */
class BuildInputError extends Error {
  readonly code = 'E_BUILD_INPUT';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'BuildInputError';
  }
}

/**
 * A build stopped by SIGINT/SIGTERM: whatever error the abort surfaced as (a step's "reading
 * FILE", "RUN step aborted", the raw reason outside any step) becomes one message saying so, with
 * the step it stopped in, and the shell's status for a death by that signal (130, 143), as
 * `docker build` killed by it gives.
 */
class InterruptedError extends Error {
  readonly code = 'E_INTERRUPTED';
  readonly hint = 'nothing was tagged; temporary files and mounts were removed — run the build again';
  readonly exitCode: number;
  constructor(reason: unknown, during: unknown) {
    const what = reason instanceof Error ? reason.message : 'interrupted';
    const file = (during as { file?: unknown }).file;
    const line = (during as { line?: unknown }).line;
    super(typeof file === 'string' && typeof line === 'number' ? `${what} (during ${file}:${line})` : what);
    this.name = 'InterruptedError';
    this.exitCode = /SIGTERM/.test(what) ? 143 : 130;
  }
}

function keyValues(list: string[], env: CliContext['env'], fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i >= 0) out[kv.slice(0, i)] = kv.slice(i + 1);
    else if (fromEnv) {
      // `--build-arg NAME` takes the value from the environment, and is skipped when unset (as Docker does)
      const v = env[kv];
      if (v !== undefined) out[kv] = v;
    } else out[kv] = '';
  }
  return out;
}

/** `--add-host host:ip` as Docker's ValidateExtraHost: split at the first ':', the IP must parse (IPv6 may keep its colons). */
function parseExtraHost(value: string): { host: string; ip: string } {
  const i = value.indexOf(':');
  const host = i < 0 ? '' : value.slice(0, i);
  const ip = i < 0 ? '' : value.slice(i + 1);
  if (i < 0 || host === '' || ip === '') throw new UsageError(`invalid argument "${value}" for "--add-host" flag: bad format for add-host: "${value}"`, 'use --add-host host:ip');
  if (isIP(ip) === 0) throw new UsageError(`invalid argument "${value}" for "--add-host" flag: invalid IP address in add-host: "${ip}"`, 'use --add-host host:ip');
  return { host, ip };
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid argument "${s}" for "-m, --memory" flag: invalid size: '${s}'`, 'use e.g. 512m or 2g');
  const mult: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Math.floor(Number(m[1]) * (mult[(m[2] ?? '').toLowerCase()] as number));
}

async function readStream(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Go's filepath.EvalSymlinks error for `p` (absolute) as the docker CLI prints it: `lstat` of the
 * first component that is missing (symlinks before it followed), e.g. `lstat /ctx/nothere: no such
 * file or directory`; undefined when the path resolves.
 */
async function evalSymlinksProblem(p: string): Promise<string | undefined> {
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  let done = '';
  for (let links = 0; pending.length > 0; ) {
    const c = pending.shift() as string;
    if (c === '..') {
      done = dirname(done === '' ? '/' : done) === '/' ? '' : dirname(done);
      continue;
    }
    const next = `${done}/${c}`;
    const st = await lstat(next).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      if (st.code === 'ENOENT') return `lstat ${next}: no such file or directory`;
      if (st.code === 'ENOTDIR') return `lstat ${next}: not a directory`;
      return `lstat ${next}: ${st.message}`;
    }
    if (!st.isSymbolicLink()) {
      done = next;
      continue;
    }
    if (++links > 255) return `EvalSymlinks: too many links in ${p}`;
    const target = await readlink(next);
    if (target.startsWith('/')) done = '';
    pending.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return undefined;
}

/**
 * Finds the Dockerfile as the docker CLI does (GetContextFromLocalDir, getDockerfileRelPath): the
 * context must exist and be a directory; `-f` is relative to the working directory; without it,
 * `Dockerfile` in the context, else `dockerfile` when only that exists. Errors in Docker's words.
 * @returns the path to read, the name messages use (relative to the context when inside it), and whether it is inside.
 */
async function locateDockerfile(contextArg: string, contextDir: string, fileFlag: string | undefined): Promise<{ path: string; name: string; inside: boolean }> {
  const context = await stat(contextDir).catch(() => undefined);
  if (context === undefined) {
    throw new BuildInputError(`unable to prepare context: path ${JSON.stringify(contextArg)} not found`, 'give the build context directory (often ".") or "-" for a Dockerfile on stdin');
  }
  if (!context.isDirectory()) {
    throw new BuildInputError(`unable to prepare context: context must be a directory: ${await realpath(contextDir)}`, 'give the build context directory (often ".") or "-" for a Dockerfile on stdin');
  }
  let path = fileFlag === undefined ? join(contextDir, 'Dockerfile') : resolve(fileFlag);
  if (fileFlag === undefined && (await lstat(path).catch(() => undefined)) === undefined) {
    const lower = join(contextDir, 'dockerfile');
    if ((await lstat(lower).catch(() => undefined)) !== undefined) path = lower;
  }
  const problem = await evalSymlinksProblem(path);
  if (problem !== undefined) {
    throw new BuildInputError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: ${problem}`, 'name another file with -f (relative to the working directory), or add a Dockerfile to the context');
  }
  const rel = relative(await realpath(contextDir), await realpath(path));
  const inside = rel !== '' && !rel.startsWith('../') && rel !== '..' && !isAbsolute(rel);
  return { path, name: inside ? rel : (fileFlag ?? 'Dockerfile'), inside };
}

/** Reads the located Dockerfile; a directory fails as in Docker (the daemon reads one inside the context, the CLI one outside). */
async function readDockerfile(path: string, name: string, fileFlag: string | undefined, inside: boolean): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'EISDIR' ? 'is a directory' : (cause as Error).message;
    throw new BuildInputError(
      inside ? `unexpected error reading Dockerfile: read ${path}: ${why}` : `read ${fileFlag ?? name}: ${why}`,
      'name another file with -f, or add a Dockerfile to the context',
    );
  }
}

/** Refuses a bad -t before any work is done, as Docker does ("invalid reference format"). */
async function checkTags(tags: string[]): Promise<void> {
  if (tags.length === 0) return;
  const { parseReference, ReferenceError } = await import('@tsbuild/layer-store');
  for (const tag of tags) {
    try {
      parseReference(tag);
    } catch (cause) {
      if (!(cause instanceof ReferenceError)) throw cause;
      const { dockerReferenceReason } = await import('./tag.js');
      throw new UsageError(`invalid argument "${tag}" for "-t, --tag" flag: ${dockerReferenceReason(cause)}`, 'a tag is name[:tag], lower-case, e.g. app:1 or registry.example:5000/team/app:1');
    }
  }
}

const command: Command = {
  async run(argv, ctx) {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length !== 1) throw new BuildInputError('"tsbuild build" requires exactly 1 argument', 'usage: tsbuild build [OPTIONS] PATH | -');
    const contextArg = args.positionals[0] as string;
    const fileFlag = flagString(args, 'file');
    const quiet = flagBool(args, 'quiet');
    if (contextArg === '-' && fileFlag === '-') throw new BuildInputError("invalid argument: can't use stdin for both build context and dockerfile");
    const iidfile = flagString(args, 'iidfile');
    // Docker removes a stale file first, so a failed build leaves none
    if (iidfile !== undefined) await rm(iidfile, { force: true });
    // the docker CLI validates flag values as it parses them: before the context or the Dockerfile
    await checkTags(flagList(args, 'tag'));
    checkCompatFlags(args);
    const platformFlag = flagString(args, 'platform');
    if (platformFlag !== undefined && platformFlag !== '') {
      const { hostPlatform, platformString } = await import('@tsbuild/executor');
      const host = hostPlatform();
      const want = platformFlag.toLowerCase().replace(/\/+$/, '');
      const [os] = want.split('/');
      if (!['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'android', 'dragonfly', 'plan9'].includes(os ?? '')) {
        throw new BuildInputError(`${JSON.stringify(platformFlag)}: unknown operating system or architecture: invalid argument`);
      }
      if (![host.os, `${host.os}/${host.architecture}`, platformString(host)].includes(want)) {
        throw new BuildInputError(`--platform=${platformFlag}: only the build platform ${platformString(host)} is supported`, 'remove --platform or build on a machine of that platform');
      }
    }
    // docker's build network modes: its default is bridge; RUN here has the host's network unless none
    const network = flagString(args, 'network') ?? 'default';
    if (!['host', 'none', 'default', 'bridge'].includes(network)) throw new UsageError(`invalid --network ${network}`, 'use host, none or default');
    const extraHosts = flagList(args, 'add-host').map(parseExtraHost);
    let contextDir = contextArg === '-' ? null : resolve(contextArg);
    let dockerfile: { text: string } | { path: string };
    let dockerfileName = 'Dockerfile';
    let stdinDir: string | undefined;
    try {
      if (contextArg === '-') {
        // a tar (optionally compressed) is the context; anything else is the Dockerfile (Docker's DetectArchiveReader)
        const tmp = join(ctx.root, 'tmp');
        await mkdir(tmp, { recursive: true });
        stdinDir = await mkdtemp(join(tmp, 'stdin-context-'));
        const file = join(stdinDir, 'stdin');
        const tree = join(stdinDir, 'context');
        await mkdir(tree);
        await pipeline(ctx.stdin, createWriteStream(file), { signal: ctx.signal });
        const { extractContextArchive } = await import('@tsbuild/executor');
        if (await extractContextArchive(file, tree, ctx.signal)) {
          contextDir = tree;
          dockerfileName = fileFlag ?? 'Dockerfile';
          const inside = resolve(tree, dockerfileName.replace(/^\/+/, ''));
          if (inside !== tree && !inside.startsWith(`${tree}/`)) throw new BuildInputError(`Cannot locate specified Dockerfile: ${dockerfileName}`);
          const text = await readFile(inside, 'utf8').catch(() => undefined);
          if (text === undefined) throw new BuildInputError(`Cannot locate specified Dockerfile: ${dockerfileName}`, 'the Dockerfile must be in the context archive (-f names it inside the archive)');
          dockerfile = { text };
        } else dockerfile = { text: await readFile(file, 'utf8') };
      } else if (fileFlag === '-') dockerfile = { text: await readStream(ctx.stdin) };
      else {
        const found = await locateDockerfile(contextArg, contextDir as string, fileFlag);
        // the docker CLI sends the directory the context path leads to (EvalSymlinks): a context
        // given as a symlink is that directory, not the link
        contextDir = await realpath(contextDir as string);
        dockerfileName = found.name;
        dockerfile = { text: await readDockerfile(found.path, found.name, fileFlag, found.inside) };
      }
      // docker's --isolation default is our auto
      const isolationFlag = flagString(args, 'isolation') ?? 'auto';
      const isolation = isolationFlag === 'default' ? 'auto' : isolationFlag;
      if (!['oci', 'chroot', 'auto'].includes(isolation)) throw new UsageError(`invalid --isolation ${isolation}`, 'use oci or chroot');
      const epochText = flagString(args, 'source-date-epoch') ?? ctx.env.SOURCE_DATE_EPOCH;
      const sourceDateEpoch = epochText === undefined || epochText === '' ? undefined : Number(epochText);
      if (sourceDateEpoch !== undefined && !Number.isInteger(sourceDateEpoch)) throw new UsageError(`invalid source date epoch: ${epochText}`);
      const memory = flagString(args, 'memory');
      const cpus = flagString(args, 'cpus');
      const { build, parseSecretFlag } = await import('@tsbuild/executor');
      const explain = flagBool(args, 'explain-cache');
      const progress = flagString(args, 'progress') ?? 'plain';
      if (!['plain', 'auto', 'json'].includes(progress)) throw new UsageError(`invalid --progress ${progress}`, 'use plain or json');
      const json = progress === 'json';
      // with -q, dockerd keeps the build output and sends it only when the build fails (the
      // docker CLI then prints it to stderr before the error): `out` is that buffer
      const quietLog: Buffer[] = [];
      const pendingTriggers = new Map<number, number>();
      const sink = quiet ? { write: (b: string | Uint8Array): boolean => quietLog.push(Buffer.from(b)) > 0 } : ctx.stdout;
      // Docker's classic builder runs stages one after the other; we run independent ones side by
      // side, and print each stage's output once the stages before it are done, in Docker's order
      const ordered = new StageOrderedOutput(sink);
      let stage = -1;
      const out = { write: (b: string | Uint8Array): boolean => ordered.write(stage, b) };
      const result = await build({
        store: ctx.root,
        contextDir,
        dockerfile,
        dockerfileName,
        tags: flagList(args, 'tag'),
        buildArgs: keyValues(flagList(args, 'build-arg'), ctx.env, true),
        unsetBuildArgs: flagList(args, 'build-arg').filter((kv) => !kv.includes('=') && ctx.env[kv] === undefined),
        ...(flagString(args, 'target') !== undefined ? { target: flagString(args, 'target') as string } : {}),
        network: network === 'none' ? 'none' : 'host',
        ...(extraHosts.length > 0 ? { extraHosts } : {}),
        isolation: isolation as 'oci' | 'chroot' | 'auto',
        noCache: flagBool(args, 'no-cache'),
        noCacheFilter: flagList(args, 'no-cache-filter').flatMap((s) => s.split(',')).filter((s) => s !== ''),
        secrets: flagList(args, 'secret').map((s) => parseSecretFlag(s, (name) => ctx.env[name])),
        labels: keyValues(flagList(args, 'label'), ctx.env, false),
        ...(memory !== undefined ? { memoryBytes: parseSize(memory) } : {}),
        ...(cpus !== undefined ? { cpus: Number(cpus) } : {}),
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        signal: ctx.signal,
        onEvent: (e) => {
          // dockerd writes these warnings into the build output, which -q drops
          const dockerWarning = e.type === 'warning' && (e.code === 'W_UNUSED_BUILD_ARG' || e.code === 'W_EMPTY_CONTINUATION');
          if (e.type === 'warning' && dockerWarning && !json) {
            out.write(e.code === 'W_UNUSED_BUILD_ARG' ? `[Warning] ${e.message}\n` : `[WARNING]: ${e.message}\n`);
            return;
          }
          if (e.type === 'warning' && !dockerWarning) {
            ctx.stderr.write(`[WARNING]: ${e.line !== undefined ? `line ${e.line}: ` : ''}${e.message}\n`);
            return;
          }
          if ('stage' in e) stage = e.stage;
          if (e.type === 'stage-done' && !json) {
            ordered.done(e.stage);
            return;
          }
          if (json) {
            // one event a line; a log chunk's bytes as text (invalid UTF-8 replaced)
            out.write(`${JSON.stringify(e.type === 'step-log' ? { ...e, bytes: undefined, text: Buffer.from(e.bytes).toString('utf8') } : e)}\n`);
            return;
          }
          if (e.type === 'step-start') {
            // Docker's numbering across the Dockerfile; a base image's ONBUILD triggers run
            // unnumbered inside FROM, whose ID line comes after them
            if (e.triggers !== undefined) pendingTriggers.set(e.stage, e.triggers);
            if (e.trigger === true) {
              if (e.index === 1) out.write(`# Executing ${pendingTriggers.get(e.stage) ?? 0} build trigger${pendingTriggers.get(e.stage) === 1 ? '' : 's'}\n`);
            } else out.write(`Step ${e.step ?? e.index + 1}/${e.steps ?? e.total} : ${e.instruction}\n`);
          } else if (e.type === 'step-done' && (pendingTriggers.get(e.stage) ?? 0) > 0 && e.index < (pendingTriggers.get(e.stage) ?? 0)) {
            // FROM and every trigger but the last: no ID line yet
          } else if (e.type === 'step-cached') out.write(' ---> Using cache\n');
          else if (e.type === 'step-cache-miss' && explain) out.write(` ---> Cache miss: ${e.reason}\n`);
          else if (e.type === 'step-log') out.write(e.bytes);
          // FROM scratch: dockerd prints ' ---> ' and no ID (its state has no image yet)
          else if (e.type === 'step-done') out.write(` ---> ${e.id.replace(/^sha256:/, '').slice(0, 12)}${e.cached || e.index === 0 ? '' : ` in ${(e.durationMs / 1000).toFixed(2)}s`}\n`);
        },
      }).catch((err: unknown) => {
        if (quiet && !json) ctx.stderr.write(Buffer.concat(quietLog));
        if (ctx.signal.aborted) throw new InterruptedError(ctx.signal.reason, err);
        throw err;
      });
      if (iidfile !== undefined) await writeFile(iidfile, result.id);
      if (quiet) ctx.stdout.write(`${result.id}\n`);
      else if (json) out.write(`${JSON.stringify({ type: 'build-done', id: result.id, tags: flagList(args, 'tag') })}\n`);
      else {
        out.write(`Successfully built ${result.id.replace(/^sha256:/, '').slice(0, 12)}\n`);
        // dockerd's Tagger: each tag once (sanitizeRepoAndTags), in its familiar form with the tag
        const { parseReference } = await import('@tsbuild/layer-store');
        const seen = new Set<string>();
        for (const t of flagList(args, 'tag')) {
          const ref = parseReference(t);
          if (seen.has(ref.full())) continue;
          seen.add(ref.full());
          out.write(`Successfully tagged ${ref.familiar()}\n`);
        }
      }
      return 0;
    } finally {
      if (stdinDir !== undefined) await rm(stdinDir, { recursive: true, force: true });
    }
  },
};
export default command;
export const run = command.run;

/**
 * Writes each stage's output in stage order: a stage's chunks go out at once while every stage
 * before it is done (meta ARGs, stage -1, always), else they wait until those are.
 */
class StageOrderedOutput {
  #next = 0;
  readonly #done = new Set<number>();
  readonly #waiting = new Map<number, Array<string | Uint8Array>>();
  constructor(private readonly sink: { write(b: string | Uint8Array): boolean }) {}

  write(stage: number, chunk: string | Uint8Array): boolean {
    if (stage <= this.#next) return this.sink.write(chunk);
    let list = this.#waiting.get(stage);
    if (list === undefined) this.#waiting.set(stage, (list = []));
    list.push(chunk);
    return true;
  }

  /** `stage` finished: the stages after it that waited for it write what they have. */
  done(stage: number): void {
    this.#done.add(stage);
    while (this.#done.has(this.#next)) {
      this.#next++;
      for (const chunk of this.#waiting.get(this.#next) ?? []) this.sink.write(chunk);
      this.#waiting.delete(this.#next);
    }
  }
}
