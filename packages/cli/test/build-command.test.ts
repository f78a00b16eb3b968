/**
 * `tsbuild build` end to end through the real CLI process: the short form people type, a
 * Dockerfile on stdin, exit codes, and cleanup when the user presses Ctrl-C mid-RUN.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const cli = path.join(repoRoot, 'packages/cli/dist/src/main.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onStdout` may act (e.g. send a signal) when output arrives. */
function tsbuild(root: string, args: string[], opts: { input?: string | Buffer; onStdout?: (all: string, kill: (s: NodeJS.Signals) => void) => void } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, '--root', root, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      opts.onStdout?.(stdout, (s) => child.kill(s));
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ dir: string; root: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-cli-build-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rootfs = path.join(dir, 'rootfs');
  execFileSync('bash', [path.join(repoRoot, 'scripts/make-busybox-rootfs.sh'), rootfs], { stdio: 'ignore' });
  const root = path.join(dir, 'store');
  execFileSync('sh', ['-c', `tar -C "$1" --numeric-owner -c . | "$2" "$3" --root "$4" import - busybox:latest`, 'sh', rootfs, process.execPath, cli, root], {
    stdio: 'ignore',
  });
  return { dir, root };
}

function mountsUnder(dir: string): string[] {
  return execFileSync('cat', ['/proc/mounts'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.split(' ')[1]?.startsWith(dir));
}

test('short form `tsbuild -t name DIR` builds, tags and prints Docker-style steps', async (t) => {
  const { dir, root } = await setup(t);
  const ctx = path.join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY msg.txt /msg.txt\nRUN echo from-run && cat /msg.txt\nCMD ["cat", "/msg.txt"]\n');
  await writeFile(path.join(ctx, 'msg.txt'), 'hello\n');
  const r = await tsbuild(root, ['-t', 'shortform:1', ctx]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^Step 1\/4 : FROM busybox$/m);
  t.regex(r.stdout, /^Step 3\/4 : RUN echo from-run && cat \/msg.txt$/m);
  t.regex(r.stdout, /^from-run$/m, 'the RUN output is streamed');
  t.regex(r.stdout, /^hello$/m);
  t.regex(r.stdout, /^Successfully built [0-9a-f]{12}$/m);
  t.regex(r.stdout, /^Successfully tagged shortform:1$/m);
  const images = await tsbuild(root, ['images']);
  t.regex(images.stdout, /^shortform\s+1\s+[0-9a-f]{12}/m);
  // the same build again: every step from the cache, the same image ID
  const again = await tsbuild(root, ['build', '-q', '-t', 'shortform:1', ctx]);
  const first = /Successfully built ([0-9a-f]{12})/.exec(r.stdout)?.[1] as string;
  t.true(again.stdout.trim().replace('sha256:', '').startsWith(first), `${again.stdout} vs ${first}`);
});

test('a Dockerfile on stdin (`-` context) builds; COPY from the missing context is a clear error', async (t) => {
  const { root } = await setup(t);
  const ok = await tsbuild(root, ['build', '-t', 'stdin:1', '-'], { input: 'FROM busybox\nENV A=b\nRUN test "$A" = b\n' });
  t.is(ok.code, 0, ok.stderr);
  const bad = await tsbuild(root, ['build', '-'], { input: 'FROM busybox\nCOPY x /x\n' });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /Dockerfile:2/);
  t.regex(bad.stderr, /context/i);
});

test('exit codes: failing RUN gives its status and line; flag errors 125, a missing context 1; nothing tagged', async (t) => {
  const { dir, root } = await setup(t);
  const failing = await tsbuild(root, ['build', '-t', 'failing:1', '-'], { input: 'FROM busybox\nRUN echo about-to-fail; exit 7\n' });
  t.is(failing.code, 7);
  t.regex(failing.stderr, /Dockerfile:2/);
  t.regex(failing.stderr, /about-to-fail/);
  t.notRegex((await tsbuild(root, ['images'])).stdout, /failing/);
  t.is((await tsbuild(root, ['build', '--no-such-flag', '.'])).code, 125);
  // a missing context or Dockerfile is not a usage error: docker build exits 1
  t.is((await tsbuild(root, ['build', path.join(dir, 'missing')])).code, 1);
  t.is((await tsbuild(root, ['build', '-t', 'Bad:Tag', '-'], { input: 'FROM busybox\n' })).code, 125);
  t.deepEqual(mountsUnder(dir), []);
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig} during a RUN stops the build, tags nothing and leaves no mount or process behind`, async (t) => {
    const { dir, root } = await setup(t);
    const marker = `tsbuild-sleep-${process.pid}-${sig}`;
    // a duration of its own: the SIGINT and SIGTERM tests run at the same time
    const seconds = sig === 'SIGINT' ? 301 : 302;
    let sent = false;
    const r = await tsbuild(root, ['build', '-t', 'interrupted:1', '-'], {
      input: `FROM busybox\nRUN echo ${marker} && exec sleep ${seconds}\n`,
      onStdout: (all, kill) => {
        if (!sent && new RegExp(`^${marker}$`, 'm').test(all)) {
          sent = true;
          kill(sig);
        }
      },
    });
    t.true(sent, 'the RUN started');
    // the status of a death by that signal, as docker build gives; one message naming the step
    t.is(r.code, sig === 'SIGINT' ? 130 : 143);
    t.regex(r.stderr, new RegExp(`^error: interrupted by ${sig} \\(during Dockerfile:2\\)$`, 'm'));
    t.notRegex((await tsbuild(root, ['images'])).stdout, /interrupted/);
    t.deepEqual(await readdir(path.join(root, 'tmp')), [], 'no temp dir left in the store');
    t.deepEqual(mountsUnder(dir), []);
    const sleepers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`sleep ${seconds}`));
    t.deepEqual(sleepers, [], 'the step process is gone');
    const tmp = await readFile(path.join(root, 'index.json'), 'utf8');
    t.notRegex(tmp, /interrupted/);
  });
}

test('--progress json prints one event a line: starts, cache decisions with reasons, times, the result', async (t) => {
  const { dir, root } = await setup(t);
  const ctx = path.join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt\n');
  await writeFile(path.join(ctx, 'a.txt'), 'one\n');
  const first = await tsbuild(root, ['build', '--progress', 'json', '-t', 'j', ctx]);
  t.is(first.code, 0, first.stderr);
  const events = first.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; index?: number; cached?: boolean; durationMs?: number; text?: string; reason?: string; id?: string });
  t.deepEqual(
    events.filter((e) => e.type === 'step-start').map((e) => e.index),
    [0, 1, 2],
  );
  t.true(events.some((e) => e.type === 'step-log' && e.text === 'one\n'), 'RUN output as text');
  const done = events.filter((e) => e.type === 'step-done' && e.index !== 0);
  t.true(done.every((e) => e.cached === false && typeof e.durationMs === 'number'));
  const last = events[events.length - 1];
  t.is(last?.type, 'build-done');
  t.regex(last?.id ?? '', /^sha256:[0-9a-f]{64}$/);
  await writeFile(path.join(ctx, 'a.txt'), 'two\n');
  const second = await tsbuild(root, ['build', '--progress=json', '-t', 'j', ctx]);
  const ev2 = second.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; index?: number; reason?: string; cached?: boolean });
  const miss = ev2.find((e) => e.type === 'step-cache-miss' && e.index === 1);
  t.truthy(miss, second.stdout);
  t.regex(miss?.reason ?? '', /a\.txt/);
  t.true(ev2.filter((e) => e.type === 'step-done' && e.index === 1).every((e) => e.cached === false));
});

test('`build --help` and `save -h` print the flags to stdout and exit 0; an unknown flag is a usage error', async (t) => {
  const { root } = await setup(t);
  const h = await tsbuild(root, ['build', '--help']);
  t.is(h.code, 0);
  t.regex(h.stdout, /^Usage: tsbuild build \[OPTIONS\] PATH \| -$/m);
  t.regex(h.stdout, /^ {2}-t, --tag list +Name and optionally a tag/m);
  t.regex(h.stdout, /--explain-cache/);
  const s = await tsbuild(root, ['save', '-h']);
  t.is(s.code, 0);
  t.regex(s.stdout, /-o, --output string/);
  const bad = await tsbuild(root, ['build', '--nope', '.']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /unknown flag: --nope/);
});

test('--add-host host:ip reaches /etc/hosts of RUN steps; a bad value is a flag error (125) with Docker\'s message', async (t) => {
  const { dir, root } = await setup(t);
  const r = await tsbuild(root, ['build', '--add-host', 'foo:1.2.3.4', '--add-host', 'v6:::1', '-t', 'addhost:1', '-'], { input: 'FROM busybox\nRUN grep -E "foo|v6" /etc/hosts > /hosts.txt\n' });
  t.is(r.code, 0, r.stderr);
  const out = path.join(dir, 'out.tar');
  t.is((await tsbuild(root, ['export', '-o', out, 'addhost:1'])).code, 0);
  t.is(execFileSync('tar', ['-xOf', out, 'hosts.txt'], { encoding: 'utf8' }), '1.2.3.4\tfoo\n::1\tv6\n');
  for (const [value, message] of [
    ['foo', 'invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"'],
    ['bad:1.2.3', 'invalid argument "bad:1.2.3" for "--add-host" flag: invalid IP address in add-host: "1.2.3"'],
  ]) {
    const bad = await tsbuild(root, ['build', '--add-host', value!, '-'], { input: 'FROM busybox\n' });
    t.is(bad.code, 125);
    t.true(bad.stderr.includes(message!), bad.stderr);
  }
});

test('a tar context on stdin (plain or gzip; `docker build - < ctx.tar`) is the context, -f names the Dockerfile inside it; --iidfile gets the ID; stdin twice is refused with status 1', async (t) => {
  const { dir, root } = await setup(t);
  const ctx = path.join(dir, 'ctx');
  await mkdir(path.join(ctx, 'sub'), { recursive: true });
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY . /ctx/\n');
  await writeFile(path.join(ctx, 'sub/Alt'), 'FROM busybox\nCOPY sub/data /alt\n');
  await writeFile(path.join(ctx, 'sub/data'), 'data\n');
  for (const [name, flags] of [['plain', '-cf'], ['gzip', '-czf']] as const) {
    const archive = path.join(dir, `ctx-${name}.tar`);
    execFileSync('tar', ['-C', ctx, flags, archive, '.']);
    const iid = path.join(dir, `iid-${name}`);
    await writeFile(iid, 'stale');
    const r = await tsbuild(root, ['build', '-q', '--iidfile', iid, '-t', `tarctx:${name}`, '-'], { input: await readFile(archive) });
    t.is(r.code, 0, r.stderr);
    t.is(await readFile(iid, 'utf8'), r.stdout.trim(), 'the ID, no newline');
    const listed = execFileSync('sh', ['-c', `"$1" "$2" --root "$3" export tarctx:${name} | tar -t | sort`, 'sh', process.execPath, cli, root], { encoding: 'utf8' });
    t.true(listed.includes('ctx/sub/data'), listed);
    const alt = await tsbuild(root, ['build', '-f', 'sub/Alt', '-t', `tarctx-alt:${name}`, '-'], { input: await readFile(archive) });
    t.is(alt.code, 0, alt.stderr);
    const missing = await tsbuild(root, ['build', '-f', 'nope', '--iidfile', iid, '-'], { input: await readFile(archive) });
    t.is(missing.code, 1);
    t.regex(missing.stderr, /Cannot locate specified Dockerfile: nope/);
    t.false(await readFile(iid).then(() => true, () => false), 'a failed build leaves no iidfile');
  }
  const twice = await tsbuild(root, ['build', '-f', '-', '-'], { input: 'FROM busybox\n' });
  t.is(twice.code, 1);
  t.regex(twice.stderr, /can't use stdin for both build context and dockerfile/);
  t.deepEqual(await readdir(path.join(root, 'tmp')).then((l) => l.filter((n) => n.startsWith('stdin-context-'))), [], 'the unpacked context is removed');
});

test('independent stages run side by side, but their output comes in stage order, as Docker prints it', async (t) => {
  const { dir, root } = await setup(t);
  const ctx = path.join(dir, 'ctx');
  await mkdir(ctx);
  // the first stage ends last: its output must still come first
  await writeFile(
    path.join(ctx, 'Dockerfile'),
    'FROM busybox AS slow\nRUN sleep 2 && echo slow-done\nFROM busybox AS fast\nRUN echo fast-done\nFROM busybox\nCOPY --from=slow /etc/passwd /s\nCOPY --from=fast /etc/passwd /f\n',
  );
  const r = await tsbuild(root, ['build', ctx]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Step ') || l.endsWith('-done'));
  t.deepEqual(lines, [
    'Step 1/7 : FROM busybox AS slow',
    'Step 2/7 : RUN sleep 2 && echo slow-done',
    'slow-done',
    'Step 3/7 : FROM busybox AS fast',
    'Step 4/7 : RUN echo fast-done',
    'fast-done',
    'Step 5/7 : FROM busybox',
    'Step 6/7 : COPY --from=slow /etc/passwd /s',
    'Step 7/7 : COPY --from=fast /etc/passwd /f',
  ]);
});
