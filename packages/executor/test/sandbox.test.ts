import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile, lstat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  SandboxError, detectIsolation, mountRootfs, removeSandboxArtifacts, resolveUser, runInSandbox,
  type Isolation, type RunSpec,
} from '../src/sandbox/index.js';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const ROOT_USER = { uid: 0, gid: 0, additionalGids: [0] };

/** One busybox rootfs for the whole file: overlay never writes to a lower dir. */
let lower = '';
test.before(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-lower-'));
  lower = path.join(dir, 'lower');
  await run(path.join(repo, 'scripts/make-busybox-rootfs.sh'), [lower]);
});
test.after.always(async () => {
  if (lower) await rm(path.dirname(lower), { recursive: true, force: true });
});

interface Env { dir: string; rootfs: string; upper: string; stateDir: string }

async function mountsUnder(dir: string): Promise<string[]> {
  return (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir));
}

/** A mounted rootfs over the busybox lower in its own temp dir; teardown checks nothing is left. */
async function setup(t: ExecutionContext, lowerdirs = [lower]): Promise<Env> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-'));
  const upper = path.join(dir, 'upper');
  const stateDir = path.join(dir, 'state');
  const rootfs = await mountRootfs({ lowerdirs, upperdir: upper, workdir: path.join(dir, 'work'), target: path.join(dir, 'merged') });
  // Teardown cannot assert; a leftover fails the test by throwing.
  t.teardown(async () => {
    await rootfs.unmount();
    const left = await mountsUnder(dir);
    const list = await run('runc', ['--root', path.join(stateDir, 'runc'), 'list', '-q']).catch(() => ({ stdout: '' }));
    await rm(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`mounts left under ${dir}: ${left.join('; ')}`);
    if (list.stdout.trim() !== '') throw new Error(`runc containers left: ${list.stdout}`);
  });
  return { dir, rootfs: rootfs.path, upper, stateDir };
}

async function sandboxRun(env: Env, isolation: Isolation, spec: Partial<RunSpec> & { args: string[] }) {
  let stdout = '';
  let stderr = '';
  const result = await runInSandbox(
    {
      rootfs: env.rootfs, env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', user: ROOT_USER, network: 'host',
      onOutput: (stream, chunk) => (stream === 'stdout' ? (stdout += chunk) : (stderr += chunk)),
      ...spec,
    },
    { isolation, stateDir: env.stateDir },
  );
  return { ...result, stdout, stderr };
}

const sh = (script: string) => ['/bin/sh', '-c', script];

for (const isolation of ['oci', 'chroot'] as const) {
  test(`${isolation}: output is streamed and the exit code returned`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, { args: sh('echo hi; echo err >&2; exit 3') });
    t.is(r.stdout, 'hi\n');
    t.is(r.stderr, 'err\n');
    t.is(r.exitCode, 3);
    t.false(r.oomKilled);
  });

  test(`${isolation}: env is exactly the spec's and a missing cwd is created`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, { args: sh('pwd; env | sort'), env: ['PATH=/bin', 'FOO=bar baz', 'HOME=/h'], cwd: '/work/dir' });
    t.is(r.exitCode, 0);
    const lines = r.stdout.trim().split('\n');
    t.is(lines[0], '/work/dir');
    // sh adds PWD and SHLVL itself
    t.deepEqual(lines.slice(1).filter((l) => !/^(PWD|SHLVL)=/.test(l)), ['FOO=bar baz', 'HOME=/h', 'PATH=/bin']);
  });

  test(`${isolation}: a user resolved by name gets its uid, gid and supplementary groups`, async (t) => {
    const env = await setup(t);
    const user = await resolveUser(env.rootfs, 'app');
    const r = await sandboxRun(env, isolation, { args: sh('id -u; id -g; id -G; echo $HOME; grep CapEff /proc/self/status'), user });
    t.is(r.exitCode, 0, r.stderr);
    const [uid, gid, groups, home, capEff] = r.stdout.trim().split('\n');
    t.is(uid, '1000');
    t.is(gid, '1000');
    t.deepEqual(groups!.split(' ').sort(), ['1000', '50']);
    t.is(home, '/home/app');
    t.regex(capEff!, /CapEff:\s+0+$/, 'a non-root user has no effective capabilities');
  });

  test(`${isolation}: no_new_privs is off for root and other users, as in Docker (setuid binaries such as sudo work)`, async (t) => {
    const env = await setup(t);
    for (const user of [ROOT_USER, await resolveUser(env.rootfs, 'app')]) {
      const r = await sandboxRun(env, isolation, { args: ['grep', '^NoNewPrivs:', '/proc/self/status'], user });
      t.is(r.exitCode, 0, r.stderr);
      t.regex(r.stdout, /^NoNewPrivs:\s+0$/m, `uid ${user.uid}`);
    }
  });

  test(`${isolation}: a numeric user without a passwd entry works`, async (t) => {
    const env = await setup(t);
    const user = await resolveUser(env.rootfs, '1234:50');
    const r = await sandboxRun(env, isolation, { args: sh('id -u; id -g; touch /tmp/mine'), user });
    t.is(r.stdout, '1234\n50\n');
    const st = await lstat(path.join(env.upper, 'tmp/mine'));
    t.deepEqual([st.uid, st.gid], [1234, 50]);
  });

  test(`${isolation}: network none has only lo, and it is up`, async (t) => {
    const env = await setup(t);
    const ifaces = (text: string) => text.split('\n').slice(2).filter((l) => l.includes(':')).map((l) => l.split(':')[0]!.trim());
    const hostIfaces = ifaces(await readFile('/proc/net/dev', 'utf8'));
    t.true(hostIfaces.length > 1, 'the host has more than lo (else this test proves nothing)');
    const none = await sandboxRun(env, isolation, { args: sh('cat /proc/net/dev; cat /sys/class/net/lo/operstate'), network: 'none' });
    const lines = none.stdout.trim().split('\n');
    t.deepEqual(ifaces(lines.slice(0, -1).join('\n')), ['lo']);
    t.not(lines.at(-1), 'down');
    const host = await sandboxRun(env, isolation, { args: sh('cat /proc/net/dev') });
    t.deepEqual(ifaces(host.stdout).sort(), [...hostIfaces].sort());
  });

  test(`${isolation}: the step runs as pid 1 of its own pid namespace`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, { args: sh('echo $$; tr "\\0" " " < /proc/1/cmdline; echo; ls /proc | grep -c "^[0-9]"'), hostname: 'buildhost' });
    const [pid, cmdline, count] = r.stdout.split('\n');
    t.is(pid, '1');
    t.true(cmdline!.startsWith('/bin/sh -c echo $$'));
    t.true(Number(count) <= 4, `only the step's processes are visible (${count})`);
  });

  test(`${isolation}: hostname, /etc/hosts and /etc/resolv.conf are provided writable, and writes to them stay out of the upper dir (as Docker's bind mounts)`, async (t) => {
    const env = await setup(t);
    const hostHosts = await readFile('/etc/hosts', 'utf8');
    const r = await sandboxRun(env, isolation, {
      args: sh('hostname; grep -c buildhost /etc/hosts; cat /etc/resolv.conf; echo "1.2.3.4 extra" >> /etc/hosts && echo ns > /etc/resolv.conf && echo other > /etc/hostname && echo rw; grep -c extra /etc/hosts'),
      hostname: 'buildhost',
    });
    const lines = r.stdout.split('\n');
    t.is(lines[0], 'buildhost');
    t.is(lines[1], '1');
    t.true(r.stdout.includes(await readFile('/etc/resolv.conf', 'utf8')));
    t.deepEqual(lines.slice(-3), ['rw', '1', '']);
    for (const f of ['hosts', 'resolv.conf', 'hostname']) {
      const inUpper = await readFile(path.join(env.upper, 'etc', f), 'utf8').catch(() => '');
      t.is(inUpper, '', `the upper dir's /etc/${f} (a mount point at most) holds nothing the step wrote`);
    }
    await removeSandboxArtifacts(env.upper, [lower]);
    t.deepEqual(await readdir(env.upper), [], 'nothing written to the bind-mounted files reaches the diff');
    t.is(await readFile('/etc/hosts', 'utf8'), hostHosts, "the host's /etc/hosts is untouched");
  });

  test(`${isolation}: extraHosts (--add-host) follow Docker's default /etc/hosts entries in order, before the host name`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, {
      args: sh('cat /etc/hosts'),
      hostname: 'buildhost',
      extraHosts: [{ host: 'foo', ip: '1.2.3.4' }, { host: 'bar.example', ip: '::1' }, { host: 'foo', ip: '5.6.7.8' }],
    });
    t.deepEqual(r.stdout.split('\n').slice(6), ['1.2.3.4\tfoo', '::1\tbar.example', '5.6.7.8\tfoo', '127.0.0.1\tbuildhost', '']);
  });

  test(`${isolation}: writes land in the upper dir; sandbox mount points are removed, the step's /etc writes stay`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, { args: sh('echo data > /tmp/file; echo foo > /etc/foo') });
    t.is(r.exitCode, 0);
    t.is(await readFile(path.join(env.upper, 'tmp/file'), 'utf8'), 'data\n');
    await removeSandboxArtifacts(env.upper, [lower]);
    t.deepEqual((await readdir(env.upper)).sort(), ['etc', 'tmp'], 'busybox lower has no /proc, /dev, /sys: their mount points go');
    t.deepEqual(await readdir(path.join(env.upper, 'etc')), ['foo']);
  });

  test(`${isolation}: a step that writes nothing leaves an empty diff after removeSandboxArtifacts`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, { args: ['true'] });
    t.is(r.exitCode, 0);
    t.true((await readdir(env.upper)).length > 0, 'the sandbox created mount points');
    await removeSandboxArtifacts(env.upper, [lower]);
    t.deepEqual(await readdir(env.upper), []);
  });

  test(`${isolation}: aborting a running step kills it and leaves nothing behind`, async (t) => {
    const env = await setup(t);
    const ac = new AbortController();
    const marker = String(100000 + Math.floor(Math.random() * 100000));
    const err = await t.throwsAsync(
      sandboxRun(env, isolation, {
        args: sh(`echo started; sleep ${marker}`),
        signal: ac.signal,
        onOutput: (_s, chunk) => chunk.toString().includes('started') && ac.abort(new Error('user interrupt')),
      }),
      { instanceOf: SandboxError },
    );
    t.is((err?.cause as Error).message, 'user interrupt');
    const procs = await readdir('/proc');
    for (const p of procs.filter((x) => /^\d+$/.test(x))) {
      const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
      t.false(cmd.includes(`sleep\0${marker}`), `sleep ${marker} is still running as pid ${p}`);
    }
  });

  test(`${isolation}: an exec-form command that does not exist exits 127`, async (t) => {
    const env = await setup(t);
    const r = await sandboxRun(env, isolation, { args: ['no-such-command'] });
    t.is(r.exitCode, 127);
  });
}

test('oci: exceeding the memory limit is reported as an OOM kill', async (t) => {
  const env = await setup(t);
  const r = await sandboxRun(env, 'oci', { args: sh('head -c 200m /dev/zero | tail'), memoryBytes: 32 * 1024 * 1024 });
  t.is(r.exitCode, 137);
  t.true(r.oomKilled);
});

test('oci: a step within its memory limit is not reported as OOM', async (t) => {
  const env = await setup(t);
  const r = await sandboxRun(env, 'oci', { args: sh('head -c 8m /dev/zero | tail | wc -c'), memoryBytes: 64 * 1024 * 1024, cpus: 0.5 });
  t.is(r.exitCode, 0);
  t.is(r.stdout.trim(), String(8 * 1024 * 1024));
  t.false(r.oomKilled);
});

test('oci: the cgroup fs is mounted at /sys/fs/cgroup, its hierarchies read-only, as in Docker', async (t) => {
  const env = await setup(t);
  const r = await sandboxRun(env, 'oci', { args: ['grep', ' /sys/fs/cgroup', '/proc/self/mounts'] });
  t.is(r.exitCode, 0, r.stderr);
  const mounts = r.stdout.trim().split('\n').map((l) => l.split(' '));
  // cgroup v1: a tmpfs with one cgroup mount per hierarchy; v2: one cgroup2 mount
  t.true(mounts.some(([, dest]) => dest === '/sys/fs/cgroup'), r.stdout);
  const hierarchies = mounts.filter(([, , type]) => type === 'cgroup' || type === 'cgroup2');
  t.true(hierarchies.length > 0, r.stdout);
  for (const [, dest, , opts] of hierarchies) t.true(opts!.split(',').includes('ro'), `${dest} is read-only`);
});

test('mountRootfs: lower dirs are bottom-most first and whiteouts hide lower files', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
  await mkdir(a); await mkdir(b);
  await writeFile(path.join(a, 'f'), 'bottom');
  await writeFile(path.join(b, 'f'), 'top');
  await writeFile(path.join(a, 'gone'), 'x');
  await run('mknod', [path.join(b, 'gone'), 'c', '0', '0']);
  const rootfs = await mountRootfs({ lowerdirs: [a, b], upperdir: path.join(dir, 'u'), workdir: path.join(dir, 'w'), target: path.join(dir, 'm') });
  try {
    t.is(await readFile(path.join(rootfs.path, 'f'), 'utf8'), 'top');
    t.deepEqual(await readdir(rootfs.path), ['f']);
  } finally {
    await rootfs.unmount();
  }
  t.deepEqual(await mountsUnder(dir), []);
});

test('mountRootfs: with no lower dir (FROM scratch) writes land in the upper dir', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rootfs = await mountRootfs({ lowerdirs: [], upperdir: path.join(dir, 'u'), workdir: path.join(dir, 'w'), target: path.join(dir, 'm') });
  try {
    await writeFile(path.join(rootfs.path, 'x'), '1');
  } finally {
    await rootfs.unmount();
  }
  t.is(await readFile(path.join(dir, 'u', 'x'), 'utf8'), '1');
  t.deepEqual(await mountsUnder(dir), []);
});

test('removeSandboxArtifacts: keeps mount points that exist in a lower layer and honours whiteouts', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [base, top, upper] = ['base', 'top', 'upper'].map((n) => path.join(dir, n)) as [string, string, string];
  await mkdir(path.join(base, 'etc'), { recursive: true });
  await mkdir(path.join(base, 'proc'));
  await writeFile(path.join(base, 'etc/hostname'), '');
  await mkdir(top);
  await run('mknod', [path.join(top, 'proc'), 'c', '0', '0']); // /proc deleted in the top layer
  for (const d of ['proc', 'dev', 'etc']) await mkdir(path.join(upper, d), { recursive: true });
  for (const f of ['hosts', 'hostname']) await writeFile(path.join(upper, 'etc', f), '');
  await removeSandboxArtifacts(upper, [base, top]);
  t.deepEqual((await readdir(upper)).sort(), ['etc'], '/proc and /dev absent below (whiteout counts as absent)');
  t.deepEqual(await readdir(path.join(upper, 'etc')), ['hostname'], 'an /etc/hostname that exists below is not ours to remove');
});

test('detectIsolation: auto prefers runc, and each choice is honoured', async (t) => {
  t.deepEqual(await detectIsolation('auto'), { isolation: 'oci', runtime: '/usr/sbin/runc' });
  t.is((await detectIsolation('oci')).isolation, 'oci');
  t.deepEqual(await detectIsolation('chroot'), { isolation: 'chroot' });
});

test('oci: a runtime that cannot start fails the step with a SandboxError naming it, and leaves nothing', async (t) => {
  const env = await setup(t);
  // gone since detectIsolation found it (which no longer runs it to check it)
  const broken = path.join(env.dir, 'removed-runc');
  const err = await t.throwsAsync(
    runInSandbox({ rootfs: env.rootfs, args: ['/bin/true'], env: [], cwd: '/', user: ROOT_USER, network: 'host' }, { isolation: 'oci', runtime: broken, stateDir: env.stateDir }),
    { instanceOf: SandboxError },
  );
  t.regex(err?.message ?? '', new RegExp(`^cannot start the OCI runtime ${broken}: spawn ${broken} ENOENT`));
  t.regex(err?.hint ?? '', /--isolation chroot/);
});

test('mountRootfs: a lower list longer than the kernel takes in one page still mounts (relative paths)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lowers: string[] = [];
  for (let i = 0; i < 30; i++) {
    const l = path.join(dir, `layer-${'x'.repeat(120)}-${i}`);
    await mkdir(l);
    await writeFile(path.join(l, 'f'), String(i));
    lowers.push(l);
  }
  t.true(lowers.join(':').length > 4096, 'the absolute list alone exceeds a page');
  const rootfs = await mountRootfs({ lowerdirs: lowers, upperdir: path.join(dir, 'u'), workdir: path.join(dir, 'w'), target: path.join(dir, 'm') });
  try {
    t.is(await readFile(path.join(rootfs.path, 'f'), 'utf8'), '29');
  } finally {
    await rootfs.unmount();
  }
  t.deepEqual(await mountsUnder(dir), []);
});
