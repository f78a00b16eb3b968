#!/usr/bin/env node
/**
 * tsbuild's entry point. Keeps start-up lean: only the chosen command's module is loaded.
 * `tsbuild -t name .` (first argument a flag or a directory) means `tsbuild build -t name .`.
 */
import { realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command, CliContext } from './context.js';
import { defaultRoot } from './context.js';
import { renderError } from './errors.js';
import { deferExtraCaCerts } from './extra-ca.js';
import { HelpRequested, helpText } from './args.js';
import { VERSION } from './version.js';

/** Each command's module, loaded on demand. Add a line per command. */
const commands: Record<string, () => Promise<Command>> = {
  build: () => import('./commands/build.js'),
  save: () => import('./commands/save.js'),
  load: () => import('./commands/load.js'),
  export: () => import('./commands/export.js'),
  import: () => import('./commands/import.js'),
  images: () => import('./commands/images.js'),
  inspect: () => import('./commands/inspect.js'),
  history: () => import('./commands/history.js'),
  tag: () => import('./commands/tag.js'),
  rmi: () => import('./commands/rmi.js'),
  prune: () => import('./commands/prune.js'),
  system: () => import('./commands/system.js'),
  push: () => import('./commands/push.js'),
  pull: () => import('./commands/pull.js'),
  login: () => import('./commands/login.js'),
  logout: () => import('./commands/logout.js'),
};

const USAGE = `Usage: tsbuild [--root DIR] COMMAND [OPTIONS]
       tsbuild [OPTIONS] CONTEXT        (same as: tsbuild build [OPTIONS] CONTEXT)

A daemonless Dockerfile to OCI image builder.

Commands:
  build     Build an image from a Dockerfile
  images    List images
  inspect   Show an image's details as JSON
  history   Show the history of an image
  tag       Create a tag TARGET that refers to SOURCE
  rmi       Remove images
  save      Save images to a tar archive
  load      Load images from a tar archive
  export    Export an image's root filesystem as a tar archive
  import    Import a root filesystem tarball as an image
  prune     Remove unused data
  system    system df: show store disk usage
  pull      Download an image from a registry
  push      Upload an image to a registry
  login     Log in to a registry
  logout    Log out from a registry

  version   Show the tsbuild version (also --version, -v)

Global options:
  --root DIR   store directory (default: $TSBUILD_ROOT, /var/lib/tsbuild for root)
`;

function looksLikeBuild(arg: string): boolean {
  if (arg.startsWith('-') && arg !== '-') return true;
  if (arg === '-' || arg === '.') return true;
  try {
    return statSync(arg).isDirectory();
  } catch {
    return false;
  }
}

/** Runs tsbuild with argv (without node and script); returns the exit code. */
export async function main(argv: string[], base: Omit<CliContext, 'root'>): Promise<number> {
  let args = [...argv];
  let root: string | undefined;
  while (args[0] === '--root' || args[0]?.startsWith('--root=')) {
    const a = args.shift() as string;
    root = a === '--root' ? args.shift() : a.slice('--root='.length);
  }
  // base's properties as they are (a spread would call a getter: runCli's stdin is made lazily)
  const ctx = Object.defineProperties({}, Object.getOwnPropertyDescriptors(base)) as CliContext;
  ctx.root = root ?? defaultRoot(base.env, process.getuid?.() ?? 0);
  const first = args[0];
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    ctx.stdout.write(USAGE);
    return first === undefined ? 1 : 0;
  }
  // as `docker --version` / `docker version` (the client part)
  if (first === '--version' || first === '-v' || first === 'version') {
    ctx.stdout.write(`tsbuild version ${VERSION}\n`);
    return 0;
  }
  let name = first;
  if (commands[first] === undefined && looksLikeBuild(first)) name = 'build';
  else args = args.slice(1);
  const load = commands[name];
  if (!load) {
    ctx.stderr.write(`tsbuild: '${name}' is not a tsbuild command.\nSee 'tsbuild --help'.\n`);
    return 125;
  }
  try {
    const command = await load();
    return await command.run(args, ctx);
  } catch (err) {
    if (err instanceof HelpRequested) {
      ctx.stdout.write(helpText(name, err.specs));
      return 0;
    }
    return renderError(err, ctx.stderr);
  }
}

function isEntry(): boolean {
  // in the bundle (dist/tsbuild.cjs) import.meta has no url: bin.js is the entry there
  const url: unknown = import.meta.url;
  if (typeof url !== 'string') return false;
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(url);
  } catch {
    return false;
  }
}

/**
 * Runs tsbuild as a process: `process.argv`, the standard streams, SIGINT/SIGTERM abort the
 * command (a second signal exits at once); sets `process.exitCode`. The entry of `bin/tsbuild.cjs`
 * (bundled) and of `node dist/src/main.js`.
 */
export function runCli(): void {
  const controller = new AbortController();
  const stop = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // as docker (a Go program dies of SIGPIPE): a reader that went away (`tsbuild save | head -c1`)
  // ends the process quietly with status 141 (128 + SIGPIPE), not a crash or an internal error
  const brokenPipe = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  };
  // Node makes process.stdout and process.stderr on first use: a pipe's is a net.Socket, which
  // loads `net` (~5 ms at start-up). A command that prints nothing (`save -o FILE`) makes neither.
  let stdout: NodeJS.WriteStream | undefined;
  let stderr: NodeJS.WriteStream | undefined;
  const out = (): NodeJS.WriteStream => (stdout ??= process.stdout.on('error', brokenPipe));
  const errOut = (): NodeJS.WriteStream => (stderr ??= process.stderr.on('error', brokenPipe));
  const made = (): NodeJS.WriteStream[] => [stdout, stderr].filter((s): s is NodeJS.WriteStream => s !== undefined);
  deferExtraCaCerts(process.env, (message) => errOut().write(message));
  main(process.argv.slice(2), {
    // only the commands that read stdin make its stream (opening it costs ~10 ms at start-up)
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      return out();
    },
    get stderr() {
      return errOut();
    },
    env: process.env,
    signal: controller.signal,
  }).then(
    (code) => exit(code, made()),
    (err: unknown) => exit(renderError(err, errOut()), made()),
  );
}

/**
 * Ends the process once the command is done and the standard streams it made (`streams`) have handed everything to the
 * kernel (a write to a pipe is asynchronous: exiting before would cut the output): everything the
 * command started has been awaited, so exiting now only skips tearing the heap down piece by
 * piece (about 10 ms of a 0.2 s command).
 */
function exit(code: number, streams: readonly NodeJS.WriteStream[]): void {
  // nothing queued: all is with the kernel already (an empty write would fail with EPIPE when the
  // reader has read everything and gone, as tar does at the end of an archive)
  const flushed = (s: NodeJS.WriteStream): Promise<void> => (s.writableLength === 0 ? Promise.resolve() : new Promise((resolve) => s.write('', () => resolve())));
  void Promise.all(streams.map(flushed)).then(() => process.exit(code));
}
if (isEntry()) runCli();
