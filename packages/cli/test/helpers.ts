/** Helpers of the CLI tests: main() driven with in-memory streams, temp dirs, a local registry. */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { main } from '../src/main.js';

/** The repository's root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** What one run of main() gave. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A writable that keeps what it is given (a copy of each chunk); `tty` makes it claim a terminal. */
export function sink(tty = false): Writable & { text(): string; isTTY?: boolean } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  }) as Writable & { text(): string; isTTY?: boolean };
  w.text = () => Buffer.concat(chunks).toString('utf8');
  if (tty) w.isTTY = true;
  return w;
}

/** Runs main() with `--root root` and `argv`, stdin from `opts.stdin`, the environment `opts.env` (default empty). */
export async function runMain(root: string, argv: string[], opts: { stdin?: Buffer | string; env?: Record<string, string>; tty?: boolean } = {}): Promise<Run> {
  const stdout = sink(opts.tty);
  const stderr = sink();
  const stdin = Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]);
  const code = await main(['--root', root, ...argv], { stdin, stdout, stderr, env: opts.env ?? {}, signal: new AbortController().signal });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** A temp dir removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'cli-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** docker-registry with htpasswd auth on a free 127.0.0.1 port; stopped at teardown. */
export async function startRegistry(t: ExecutionContext, user: string, password: string): Promise<string> {
  const dir = await tempDir(t, 'cli-reg-');
  const file = join(dir, 'htpasswd');
  await writeFile(file, execFileSync('htpasswd', ['-Bbn', user, password]));
  const child = spawn('bash', [join(REPO, 'scripts/start-registry.sh'), join(dir, 'registry'), file], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  return new Promise((res, rej) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      log += s;
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(log);
      if (m) res(m[1]!);
    });
    child.on('exit', (code) => rej(new Error(`docker-registry exited (${code}): ${log}`)));
  });
}
