/** login / logout / push / pull through main() against docker-registry (htpasswd auth) on 127.0.0.1. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePlatform } from '../src/commands/pull.js';
import { REPO, runMain, startRegistry, tempDir, type Run } from './helpers.js';



/** A CLI runner whose HOME (and so credentials) lives in `home`. */
function runner(home: string) {
  return (root: string, argv: string[], stdin?: Buffer | string): Promise<Run> =>
    runMain(root, argv, { ...(stdin === undefined ? {} : { stdin }), env: { HOME: home, SOURCE_DATE_EPOCH: '0' } });
}


test('push needs login; login stores 0600 credentials; push and pull print what Docker prints; logout forgets', async (t) => {
  const host = await startRegistry(t, 'alice', 's3cret');
  const dir = await tempDir(t);
  const run = runner(join(dir, 'home'));
  const src = join(dir, 'src');
  const dst = join(dir, 'dst');
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  const rootfs = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 1 << 28 });
  const ref = `${host}/cli/bb:1`;
  const imported = await run(src, ['import', '-', ref], rootfs);
  t.is(imported.code, 0, imported.stderr);

  const anon = await run(src, ['push', ref]);
  t.is(anon.code, 1);
  // dockerd (checked): the layers' 'Preparing', then a bare 'no basic auth credentials'
  t.regex(anon.stdout, new RegExp(`^The push refers to repository \\[${host}/cli/bb\\]\n[0-9a-f]{12}: Preparing\n$`));
  t.is(anon.stderr, `error: no basic auth credentials\nhint: log in first: 'tsbuild login ${host}'\n`);

  const bad = await run(src, ['login', '-u', 'alice', '--password-stdin', host], 'wrong\n');
  t.is(bad.code, 1);
  t.regex(bad.stderr, new RegExp(`^error: login attempt to http://${host.replace(/\./g, '\\.')}/v2/ failed with status: 401 Unauthorized\n`));
  await t.throwsAsync(stat(join(dir, 'home', '.config', 'tsbuild', 'auth.json')));

  const login = await run(src, ['login', '-u', 'alice', '--password-stdin', `http://${host}/`], 's3cret\n');
  t.is(login.code, 0, login.stderr);
  t.is(login.stdout, 'Login Succeeded\n');
  const authPath = join(dir, 'home', '.config', 'tsbuild', 'auth.json');
  t.is((await stat(authPath)).mode & 0o777, 0o600);
  t.deepEqual(JSON.parse(await readFile(authPath, 'utf8')), { auths: { [host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } });

  const pushed = await run(src, ['push', ref]);
  t.is(pushed.code, 0, pushed.stderr);
  const lines = pushed.stdout.split('\n');
  t.is(lines[0], `The push refers to repository [${host}/cli/bb]`);
  // as dockerd without a terminal (checked): the layer's 'Preparing' line, then its result
  const layer = lines[1]!.slice(0, 12);
  t.is(lines[1], `${layer}: Preparing`);
  t.is(lines[2], `${layer}: Pushed`);
  const m = /^1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/.exec(lines[3]!);
  t.truthy(m, pushed.stdout);
  const again = await run(src, ['push', ref]);
  t.deepEqual(again.stdout.split('\n').slice(1, 3), [`${layer}: Preparing`, `${layer}: Layer already exists`]);
  // RepoDigests after a push, as dockerd records them
  const canonical = `${host}/cli/bb@${m![1]}`;
  t.deepEqual(JSON.parse((await run(src, ['inspect', ref])).stdout)[0].RepoDigests, [canonical]);
  t.regex((await run(src, ['images', '--digests'])).stdout, new RegExp(`^${host}/cli/bb +1 +${m![1]} `, 'm'));
  // a second repository of the same registry: the layer is mounted, not sent again
  const other = `${host}/cli/other:2`;
  t.is((await run(src, ['tag', ref, other])).code, 0);
  const mounted = await run(src, ['push', other]);
  t.is(mounted.code, 0, mounted.stderr);
  t.regex(mounted.stdout, /\n[0-9a-f]{12}: Mounted from cli\/bb\n2: digest: /);
  t.deepEqual(JSON.parse((await run(src, ['inspect', ref])).stdout)[0].RepoDigests, [canonical, `${host}/cli/other@${m![1]}`]);
  // the last tag of a repository takes its digest with it (dockerd's Untagged lines)
  t.is((await run(src, ['rmi', other])).stdout, `Untagged: ${other}\nUntagged: ${host}/cli/other@${m![1]}\n`);
  t.deepEqual(JSON.parse((await run(src, ['inspect', ref])).stdout)[0].RepoDigests, [canonical]);

  const pulled = await run(dst, ['pull', ref]);
  t.is(pulled.code, 0, pulled.stderr);
  t.regex(pulled.stdout, new RegExp(`^1: Pulling from cli/bb\\n[0-9a-f]{12}: Pull complete\\nDigest: ${m![1]}\\nStatus: Downloaded newer image for ${host}/cli/bb:1\\n${host}/cli/bb:1\\n$`));
  t.deepEqual(JSON.parse((await run(dst, ['inspect', ref])).stdout)[0].RepoDigests, [canonical]);
  // dockerd lists no layers for an image it already has
  const same = await run(dst, ['pull', ref]);
  t.is(same.stdout, `1: Pulling from cli/bb\nDigest: ${m![1]}\nStatus: Image is up to date for ${ref}\n${ref}\n`);
  // by digest: a digest reference, no tag
  const byDigest = await run(dst, ['pull', canonical]);
  t.is(byDigest.code, 0, byDigest.stderr);
  t.regex(byDigest.stdout, new RegExp(`^${canonical}: Pulling from cli/bb\n`));
  // the repository's last tag takes the digest reference with it, and the image goes (as dockerd)
  t.regex((await run(dst, ['rmi', ref])).stdout, new RegExp(`^Untagged: ${ref}\nUntagged: ${canonical}\nDeleted: sha256:`));
  t.is((await run(dst, ['pull', '-q', canonical])).code, 0);
  const digestOnly = JSON.parse((await run(dst, ['inspect', canonical])).stdout)[0];
  t.deepEqual([digestOnly.RepoTags, digestOnly.RepoDigests], [[], [canonical]]);
  t.regex((await run(dst, ['images'])).stdout, new RegExp(`\n${host}/cli/bb +<none> +[0-9a-f]{12} `));
  t.is((await run(dst, ['pull', '-q', ref])).code, 0);
  t.is((await run(dst, ['pull', '-q', ref])).stdout, `${ref}\n`);
  const ids = await Promise.all([src, dst].map((r) => run(r, ['images', '-q', '--no-trunc'])));
  t.regex(ids[0]!.stdout, /^sha256:[0-9a-f]{64}\n$/);
  t.is(ids[0]!.stdout, ids[1]!.stdout);

  const missing = await run(dst, ['pull', `${host}/cli/bb`]);
  t.is(missing.code, 1);
  t.is(missing.stdout, 'Using default tag: latest\n');
  t.regex(missing.stderr, new RegExp(`^error: manifest for ${host}/cli/bb:latest not found: manifest unknown`));

  t.is((await run(src, ['logout', host])).stdout, `Removing login credentials for ${host}\n`);
  // docker 20.10.24 says it also when there was nothing to remove (checked against its CLI)
  t.is((await run(src, ['logout', host])).stdout, `Removing login credentials for ${host}\n`);
  t.is((await run(src, ['logout'])).stdout, 'Removing login credentials for https://index.docker.io/v1/\n');
  t.is((await run(dst, ['pull', ref])).code, 1);
});

test('pull reads Docker config.json credentials', async (t) => {
  const host = await startRegistry(t, 'bob', 'pw');
  const dir = await tempDir(t);
  const home = join(dir, 'home');
  const run = runner(home);
  const empty = await run(join(dir, 'store'), ['pull', `${host}/cli/none:1`]);
  t.regex(empty.stderr, /no basic auth credentials/);
  execFileSync('mkdir', ['-p', join(home, '.docker')]);
  await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${host}`]: { auth: Buffer.from('bob:pw').toString('base64') } } }));
  const withDocker = await run(join(dir, 'store'), ['pull', `${host}/cli/none:1`]);
  // authenticated now: the registry answers that the image does not exist
  t.regex(withDocker.stderr, /manifest for .* not found/);
});

test('login usage errors', async (t) => {
  const dir = await tempDir(t);
  const run = runner(join(dir, 'home'));
  const rows: Array<[string[], RegExp]> = [
    [['login', '--password-stdin', 'localhost:1'], /must provide --username with --password-stdin/],
    [['login', '-u', 'a', '-p', 'b', '--password-stdin', 'localhost:1'], /mutually exclusive/],
    [['login', '-p', 'b', 'localhost:1'], /username is required/],
    [['login', 'a', 'b'], /at most 1 argument/],
    [['push'], /requires exactly 1 argument/],
    [['pull', '--platform', 'linux', 'x'], /invalid platform/],
  ];
  for (const [argv, re] of rows) {
    const r = await run(join(dir, 'store'), argv);
    t.is(r.code, 125, argv.join(' '));
    t.regex(r.stderr, re, argv.join(' '));
  }
});

test('parsePlatform', (t) => {
  t.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.throws(() => parsePlatform('linux/'), { message: /invalid platform/ });
});
