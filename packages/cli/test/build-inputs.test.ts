/**
 * How `build` finds the context and the Dockerfile, and its errors, as the docker 20.10 CLI
 * (GetContextFromLocalDir, getDockerfileRelPath, flag validation): messages checked against
 * `DOCKER_BUILDKIT=0 docker build` (oracle5/cwdt).
 */
import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { runMain, tempDir } from './helpers.js';

type Case = [name: string, setup: (dir: string) => Promise<string[]>, code: number, stderr: (dir: string) => string];

const cases: Case[] = [
  ['no Dockerfile in the context', async (d) => [d], 1, (d) => `error: unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${d}/Dockerfile: no such file or directory\n`],
  ['a -f whose directory is missing', async (d) => ['-f', `${d}/nope/Dockerfile`, d], 1, (d) => `error: unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${d}/nope: no such file or directory\n`],
  [
    'a dangling Dockerfile symlink',
    async (d) => (await symlink('nothere', `${d}/Dockerfile`), [d]),
    1,
    (d) => `error: unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${d}/nothere: no such file or directory\n`,
  ],
  ['a missing context', async (d) => [`${d}/missing`], 1, (d) => `error: unable to prepare context: path "${d}/missing" not found\n`],
  ['a file as context', async (d) => (await writeFile(`${d}/f`, 'x'), [`${d}/f`]), 1, (d) => `error: unable to prepare context: context must be a directory: ${d}/f\n`],
  ['-f a directory outside the context', async (d) => (await mkdir(`${d}/ctx`), ['-f', `${d}/sub`, `${d}/ctx`]), 1, (d) => `error: read ${d}/sub: is a directory\n`],
  // flags are checked before the context is looked at
  ['an uppercase tag', async (d) => ['-t', 'ok', '-t', 'Upper', `${d}/missing`], 125, () => 'error: invalid argument "Upper" for "-t, --tag" flag: invalid reference format: repository name must be lowercase\n'],
  ['a tag with two colons', async (d) => ['-t', 'a:b:c', d], 125, () => 'error: invalid argument "a:b:c" for "-t, --tag" flag: invalid reference format\n'],
];

for (const [name, setup, code, stderr] of cases) {
  test(`build input errors as docker's: ${name}`, async (t) => {
    const dir = await tempDir(t);
    await mkdir(path.join(dir, 'sub'));
    const r = await runMain(path.join(dir, 'store'), ['build', ...(await setup(dir))]);
    t.is(r.code, code, r.stderr);
    t.is(r.stderr.split('\nhint:')[0] + '\n', stderr(dir));
  });
}

test('a context with only a lower-case "dockerfile" builds it (the docker CLI falls back to it)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'dockerfile'), 'FROM scratch\nLABEL lower=1\n');
  const root = path.join(dir, 'store');
  const r = await runMain(root, ['build', '-t', 'lower', dir]);
  t.is(r.code, 0, r.stderr);
  const inspect = await runMain(root, ['inspect', '--format', '{{json .Config.Labels}}', 'lower']);
  t.is(inspect.stdout, '{"lower":"1"}\n');
});

test('"Successfully tagged" once per distinct tag, in its familiar form with the tag (dockerd\'s Tagger)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nLABEL a=1\n');
  const tags = ['o5x', 'o5y:2', 'docker.io/library/o5x:latest', 'localhost:5000/a'].flatMap((x) => ['-t', x]);
  const r = await runMain(path.join(dir, 'store'), ['build', ...tags, dir]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('Successfully tagged')), [
    'Successfully tagged o5x:latest',
    'Successfully tagged o5y:2',
    'Successfully tagged localhost:5000/a:latest',
  ]);
});

// docker build's flags that scripts pass (checked against `DOCKER_BUILDKIT=0 docker build`, oracle5/cli1)
const compatRows: Array<[string[], number, string]> = [
  [['--rm', '--rm=true', '--force-rm', '--compress', '--pull=false', '--disable-content-trust', '--cache-from', 'busybox'], 0, ''],
  [['--shm-size', '64m', '--ulimit', 'nofile=1024:1024', '-c', '512', '--memory-swap', '-1', '--cgroup-parent', 'x'], 0, ''],
  [['--cpuset-cpus', '0', '--cpu-period', '100000', '--cpu-quota', '50000', '--isolation', 'default', '--network=bridge'], 0, ''],
  [['--rm=maybe'], 125, 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax'],
  [['--shm-size', 'abc'], 125, 'invalid argument "abc" for "--shm-size" flag: invalid size: \'abc\''],
  [['--ulimit', 'abc'], 125, 'invalid argument "abc" for "--ulimit" flag: invalid ulimit argument: abc'],
  [['-m', 'abc'], 125, 'invalid argument "abc" for "-m, --memory" flag: invalid size: \'abc\''],
  [['--cpu-shares', 'abc'], 125, 'invalid argument "abc" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "abc": invalid syntax'],
  [['--security-opt', 'seccomp=unconfined'], 1, 'The daemon on this platform does not support setting security options on build'],
  [['--squash'], 1, '"--squash" is only supported on a Docker daemon with experimental features enabled'],
  [['--platform', 'bogus'], 1, '"bogus": unknown operating system or architecture: invalid argument'],
];
for (const [flags, code, message] of compatRows) {
  test(`docker build flags: ${flags.join(' ')} → ${code}`, async (t) => {
    const dir = await tempDir(t);
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nLABEL a=1\n');
    const r = await runMain(path.join(dir, 'store'), ['build', ...flags, dir]);
    t.is(r.code, code, r.stderr);
    if (message !== '') t.is(r.stderr.split('\n')[0], `error: ${message}`);
  });
}

test('docker build --platform: this machine\'s is accepted, another refused', async (t) => {
  const { hostPlatform, platformString } = await import('@tsbuild/executor');
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nLABEL a=1\n');
  const root = path.join(dir, 'store');
  t.is((await runMain(root, ['build', '--platform', platformString(hostPlatform()), dir])).code, 0);
  const other = hostPlatform().architecture === 'amd64' ? 'linux/arm64' : 'linux/amd64';
  const r = await runMain(root, ['build', '--platform', other, dir]);
  t.is(r.code, 1);
  t.regex(r.stderr, /only the build platform/);
});

test('a context given as a symlink is the directory it leads to (the docker CLI evaluates it): COPY . copies that directory\'s files', async (t) => {
  const { mkdir: mk, symlink: ln } = await import('node:fs/promises');
  const dir = await tempDir(t);
  await mk(path.join(dir, 'real'));
  await writeFile(path.join(dir, 'real', 'Dockerfile'), 'FROM scratch\nCOPY . /c/\n');
  await writeFile(path.join(dir, 'real', 'f'), 'x');
  await ln('real', path.join(dir, 'link'));
  const root = path.join(dir, 'store');
  const r = await runMain(root, ['build', '-t', 'viasymlink', path.join(dir, 'link')]);
  t.is(r.code, 0, r.stderr);
  const out = path.join(dir, 'out.tar');
  t.is((await runMain(root, ['export', '-o', out, 'viasymlink'])).code, 0);
  const { execFileSync } = await import('node:child_process');
  const names = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n').filter((n) => n !== '').sort();
  t.deepEqual(names.filter((n) => n.replace(/^\.?\//, '').startsWith('c')).map((n) => n.replace(/^\.?\//, '').replace(/\/$/, '')), ['c', 'c/Dockerfile', 'c/f']);
});
