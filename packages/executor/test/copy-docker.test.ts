import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, link, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { compileIgnore, copyInto, parseDockerignore, selectSources } from '../src/context/index.js';
import { DOCKER, dockerAvailable, dockerSkipped, DOCKER_MISSING } from './helpers/docker.js';
import { repoRoot } from './helpers/images.js';

/** `type mode uid:gid size [-> target]` for every entry under `prefixes` in a tar listing. */
function listing(tarFile: string, prefixes: string[]): string[] {
  const out = execFileSync('tar', ['--numeric-owner', '-tvf', tarFile], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const rows: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S)(\S{9}) (\d+)\/(\d+)\s+(\d+) \S+ \S+ (.*)$/.exec(line);
    if (!m) continue;
    let [, type, perms, uid, gid, size, name] = m as unknown as string[];
    name = name!.replace(/^\.\//, '').replace(/\/$/, '');
    if (type === 'h') {
      type = '-';
      name = name.replace(/ link to .*$/, '');
    }
    const [n, target] = name.split(' -> ');
    if (!prefixes.some((p) => n === p || n!.startsWith(`${p}/`))) continue;
    rows.push(`${n} ${type}${perms} ${uid}:${gid} ${type === '-' ? size : ''}${target ? ` -> ${target}` : ''}`);
  }
  return rows.sort();
}

(dockerSkipped ? test.skip : test)('differential: COPY into a busybox image matches Docker 20.10 classic builder (modes, owners, sizes, links)', async (t) => {
  if (!dockerAvailable()) {
    t.fail(DOCKER_MISSING);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'ctx-docker-'));
  const tag = `tsbuild-ctx-test-${path.basename(dir).toLowerCase()}`;
  const env = { ...process.env, DOCKER_BUILDKIT: '0' };
  t.teardown(async () => {
    spawnSync(DOCKER, ['rmi', '-f', `${tag}:base`, `${tag}:out`], { stdio: 'ignore', env });
    await rm(dir, { recursive: true, force: true });
  });
  const base = path.join(dir, 'base');
  execFileSync('bash', [path.join(repoRoot, 'scripts/make-busybox-rootfs.sh'), base]);
  await mkdir(path.join(base, 'existdir'), { recursive: true });
  await symlink('/', path.join(base, 'evil'));
  execFileSync('sh', ['-c', `tar -C '${base}' -c . | ${DOCKER} import - ${tag}:base`], { env, stdio: 'ignore' });

  const ctx = path.join(dir, 'ctx');
  await mkdir(path.join(ctx, 'dir/sub'), { recursive: true });
  await writeFile(path.join(ctx, 'a.txt'), 'hello\n');
  await chmod(path.join(ctx, 'a.txt'), 0o751);
  await writeFile(path.join(ctx, 'b.txt'), 'bb\n');
  await writeFile(path.join(ctx, 'ignored.txt'), 'no\n');
  await writeFile(path.join(ctx, 'dir/f1'), '1\n');
  await chown(path.join(ctx, 'dir/f1'), 1234, 5678);
  await writeFile(path.join(ctx, 'dir/sub/f2'), '22\n');
  await chmod(path.join(ctx, 'dir/sub'), 0o700);
  await symlink('../f1', path.join(ctx, 'dir/sub/rel'));
  await symlink('/etc/passwd', path.join(ctx, 'dir/abs'));
  await link(path.join(ctx, 'dir/f1'), path.join(ctx, 'dir/hard'));
  await writeFile(path.join(ctx, '.dockerignore'), 'ignored.txt\nDockerfile\n.dockerignore\n');
  const steps: Array<{ src: string[]; dest: string; chown?: { uid: number; gid: number } }> = [
    { src: ['.'], dest: '/ctx/' },
    { src: ['a.txt'], dest: '/existdir' },
    { src: ['a.txt'], dest: '/newdir/x/', chown: { uid: 1000, gid: 50 } },
    { src: ['dir'], dest: '/chowned/deep/', chown: { uid: 1000, gid: 50 } },
    { src: ['*.txt'], dest: '/multi/' },
    { src: ['a.txt'], dest: '/evil/escaped' },
  ];
  const dockerfile = [`FROM ${tag}:base`, ...steps.map((s) => `COPY ${s.chown ? `--chown=${s.chown.uid}:${s.chown.gid} ` : ''}${s.src.join(' ')} ${s.dest}`)].join('\n');
  await writeFile(path.join(ctx, 'Dockerfile'), `${dockerfile}\n`);
  execFileSync(DOCKER, ['build', '-q', '-t', `${tag}:out`, ctx], { env, stdio: 'ignore' });
  const id = execFileSync(DOCKER, ['create', `${tag}:out`, 'true'], { env, encoding: 'utf8' }).trim();
  const dockerTar = path.join(dir, 'docker.tar');
  try {
    execFileSync(DOCKER, ['export', '-o', dockerTar, id], { env });
  } finally {
    spawnSync(DOCKER, ['rm', id], { stdio: 'ignore', env });
  }

  const rootfs = path.join(dir, 'rootfs');
  await mkdir(path.join(rootfs, 'existdir'), { recursive: true });
  await symlink('/', path.join(rootfs, 'evil'));
  const ignore = compileIgnore(parseDockerignore(await readFile(path.join(ctx, '.dockerignore'), 'utf8')));
  for (const s of steps) {
    const sources = await selectSources(ctx, s.src, { ignore });
    await copyInto({ rootfs, sources, dest: s.dest, ...(s.chown ? { chown: s.chown } : {}) });
  }
  const oursTar = path.join(dir, 'ours.tar');
  execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', oursTar, '.']);
  const prefixes = ['ctx', 'existdir', 'newdir', 'chowned', 'multi', 'escaped'];
  const theirs = listing(dockerTar, prefixes);
  t.true(theirs.length >= 15, `Docker's listing has the copied paths: ${theirs.join('\n')}`);
  t.deepEqual(listing(oursTar, prefixes), theirs);
});
