/**
 * build() behaviour beyond the golden images: failing RUN (error, no tag, nothing left mounted or
 * running), `--network none`, both isolations, COPY/ADD errors, WORKDIR layers.
 */
import test from 'ava';
import { chmod, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ImageNotFoundError } from '@tsbuild/layer-store';
import { build, BuildError, type BuildOptions } from '../src/index.js';
import { fileLines, flattenImage, sharedBusyboxStore, tempDir } from './helpers/images.js';

const shared = sharedBusyboxStore();
test.after.always(() => shared.remove());

const isolations = ['oci', 'chroot'] as const;

async function setup(t: import('ava').ExecutionContext, name: string): Promise<{ tmp: string; opts: (df: string, extra?: Partial<BuildOptions>) => BuildOptions }> {
  const { store } = await shared.get();
  const tmp = await tempDir(name);
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  return { tmp, opts: (df, extra = {}) => ({ store, contextDir: tmp, dockerfile: { text: df }, sourceDateEpoch: 0, ...extra }) };
}

/** Mount points (from /proc/mounts) below `dir`. */
async function mountsUnder(dir: string): Promise<string[]> {
  const lines = (await readFile('/proc/mounts', 'utf8')).split('\n');
  return lines.map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Processes whose root directory is below `dir` (a container left running would have one). */
async function processesRootedUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const root = await readlink(`/proc/${pid}/root`).catch(() => '');
    if (root.startsWith(`${dir}/`)) out.push(pid);
  }
  return out;
}

test('RUN (oci): a command that cannot be started fails with the runtime\'s message and no exit code, as Docker 20.10', async (t) => {
  const { opts } = await setup(t, 'nostart');
  for (const [cmd, text] of [
    ['["nosuchcmd", "a"]', 'exec: "nosuchcmd": executable file not found in $PATH'],
    ['["/nonexistent"]', 'exec: "/nonexistent": stat /nonexistent: no such file or directory'],
  ] as const) {
    const err = await t.throwsAsync(build(opts(`FROM busybox\nRUN ${cmd}\n`, { isolation: 'oci' })), { instanceOf: BuildError });
    t.is(err?.code, 'E_STEP_FAILED');
    t.is(err?.exitCode, undefined, 'the CLI exits 1, as docker build');
    t.is(err?.line, 2);
    t.true(err?.message.includes(`OCI runtime create failed: runc create failed: unable to start container process: ${text}: unknown`), err?.message);
  }
  // a command that runs and exits 127 is still a step failure with its code
  const err = await t.throwsAsync(build(opts('FROM busybox\nRUN exit 127\n', { isolation: 'oci' })), { instanceOf: BuildError });
  t.is(err?.exitCode, 127);
});

for (const isolation of isolations) {
  // serial (ava runs these before the concurrent tests), so no other build's mounts or temp dirs are around
  test.serial(`RUN (${isolation}): a failing command gives E_STEP_FAILED with its exit code and line, no tag, no mount or process left`, async (t) => {
    const { root } = await shared.get();
    const { opts } = await setup(t, `fail-${isolation}`);
    const err = await t.throwsAsync(
      build(opts('FROM busybox\nRUN echo before\nRUN echo some output; echo to stderr >&2; exit 3\nRUN echo never\n', { tags: [`failed-${isolation}:1`], isolation })),
      { instanceOf: BuildError },
    );
    t.is(err?.code, 'E_STEP_FAILED');
    t.is(err?.exitCode, 3);
    t.is(err?.line, 3);
    t.regex(err?.message ?? '', /returned a non-zero code: 3/);
    t.regex(err?.message ?? '', /to stderr/);
    const { store } = await shared.get();
    await t.throwsAsync(store.resolveImage(`failed-${isolation}:1`), { instanceOf: ImageNotFoundError });
    t.deepEqual(await mountsUnder(root), []);
    t.deepEqual(await processesRootedUnder(root), []);
    t.deepEqual(await readdir(path.join(root, 'tmp')).then((e) => e.filter((n) => /^(run|copy|workdir)-/.test(n))), [], 'step temp dirs removed');
  });

  test(`RUN (${isolation}): writes, Env, build args, user and workdir reach the command`, async (t) => {
    const { store } = await shared.get();
    const { tmp, opts } = await setup(t, `run-${isolation}`);
    const df = 'FROM busybox\nARG GREETING=hi\nENV WHO=world\nWORKDIR /w\nUSER app\nRUN echo "$GREETING $WHO $(id -u):$(id -g) $(pwd)" > /tmp/out\n';
    await build(opts(df, { tags: [`run-${isolation}:1`], isolation, buildArgs: { GREETING: 'hello' } }));
    const lines = await fileLines(await flattenImage(store, `run-${isolation}:1`, tmp));
    const dir = path.join(tmp, `unpacked-${(await readdir(tmp)).find((n) => n.startsWith('export-'))}`);
    t.is(await readFile(path.join(dir, 'tmp/out'), 'utf8'), 'hello world 1000:1000 /w\n');
    t.true(lines.includes('w dir 0755 0:0'));
  });

  test(`RUN --network none (${isolation}): only the loopback interface`, async (t) => {
    const { store } = await shared.get();
    const { tmp, opts } = await setup(t, `net-${isolation}`);
    await build(opts('FROM busybox\nRUN cat /proc/net/dev > /netdev\n', { tags: [`net-${isolation}:1`], isolation, network: 'none' }));
    await flattenImage(store, `net-${isolation}:1`, tmp);
    const dir = path.join(tmp, (await readdir(tmp)).find((n) => n.startsWith('unpacked-')) as string);
    const ifaces = (await readFile(path.join(dir, 'netdev'), 'utf8'))
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]?.trim())
      .filter((n) => n);
    t.deepEqual(ifaces, ['lo']);
  });

  test(`RUN (${isolation}): HOSTNAME is the sandbox's host name and comes first in the environment, unless ENV sets it (Docker)`, async (t) => {
    const { store } = await shared.get();
    const { tmp, opts } = await setup(t, `hostname-${isolation}`);
    const df = 'FROM busybox\nENV Z=1\nRUN tr "\\0" "\\n" < /proc/self/environ > /environ && hostname > /hn\nENV HOSTNAME=mine\nRUN echo "$HOSTNAME" > /hn2\n';
    await build(opts(df, { tags: [`hostname-${isolation}:1`], isolation }));
    await flattenImage(store, `hostname-${isolation}:1`, tmp);
    const dir = path.join(tmp, (await readdir(tmp)).find((n) => n.startsWith('unpacked-')) as string);
    const environ = (await readFile(path.join(dir, 'environ'), 'utf8')).split('\n');
    const hostname = (await readFile(path.join(dir, 'hn'), 'utf8')).trim();
    t.regex(hostname, /^[0-9a-f]{12}$/);
    t.is(environ[0], `HOSTNAME=${hostname}`);
    t.is(await readFile(path.join(dir, 'hn2'), 'utf8'), 'mine\n');
  });
}

test('RUN that changes nothing: empty_layer in history, no layer', async (t) => {
  const { store } = await shared.get();
  const { opts } = await setup(t, 'noop');
  await build(opts('FROM busybox\nRUN true\n', { tags: ['noop:1'] }));
  const img = await store.resolveImage('noop:1');
  t.is(img.manifest.layers.length, 1);
  t.deepEqual(img.config.history?.at(-1), { created: '1970-01-01T00:00:00Z', created_by: '/bin/sh -c true', empty_layer: true });
});

test('RUN history: a predefined build arg given but not declared gives "|0 <cmd>", declared it is listed (Docker prependEnvOnCmd)', async (t) => {
  const { store } = await shared.get();
  const { opts } = await setup(t, 'run-history-args');
  await build(opts('FROM busybox\nRUN echo a\nARG HTTP_PROXY\nARG B=2\nRUN echo b\nENV B=env\nRUN echo c\n', { tags: ['run-history-args:1'], buildArgs: { HTTP_PROXY: 'http://p' } }));
  const img = await store.resolveImage('run-history-args:1');
  t.deepEqual(
    img.config.history?.filter((h) => h.created_by?.includes('echo')).map((h) => h.created_by),
    ['|0 /bin/sh -c echo a', '|2 B=2 HTTP_PROXY=http://p /bin/sh -c echo b', '|1 HTTP_PROXY=http://p /bin/sh -c echo c'],
  );
});

test('--label: one unexpanded LABEL step per label, sorted by key, at the end of the target stage (also with --target), as Docker 20.10 buildLabelOptions', async (t) => {
  const { store } = await shared.get();
  const { opts } = await setup(t, 'label-option');
  const starts: string[] = [];
  const df = 'FROM busybox AS first\nLABEL a=1\nFROM busybox\nENV HOME=/h\nLABEL s=2\n';
  await build(opts(df, { tags: ['label-option:1'], labels: { zz: '9', b: 'two words', a: 'override', empty: '', Z: '$HOME' }, onEvent: (e) => void (e.type === 'step-start' && starts.push(`${e.index + 1}/${e.total} ${e.instruction}`)) }));
  const img = await store.resolveImage('label-option:1');
  t.deepEqual(img.config.config.Labels, { Z: '$HOME', a: 'override', b: 'two words', empty: '', s: '2', zz: '9' });
  t.deepEqual(
    img.config.history?.slice(-6).map((h) => [h.created_by, h.empty_layer]),
    ['s=2', 'Z=$HOME', 'a=override', 'b=two words', 'empty=', 'zz=9'].map((l) => [`/bin/sh -c #(nop)  LABEL ${l}`, true]),
  );
  t.deepEqual(starts.slice(-6), ['3/8 LABEL s=2', '4/8 LABEL Z=$HOME', '5/8 LABEL a=override', '6/8 LABEL b=two words', '7/8 LABEL empty=', '8/8 LABEL zz=9']);
  await build(opts(df, { tags: ['label-option:first'], target: 'first', labels: { b: '2' } }));
  const first = await store.resolveImage('label-option:first');
  t.deepEqual(first.config.config.Labels, { a: '1', b: '2' });
  t.is(first.config.history?.at(-1)?.created_by, '/bin/sh -c #(nop)  LABEL b=2');
});

test('WORKDIR: a new directory is a layer, an existing one is empty_layer (Docker 20.10 classic)', async (t) => {
  const { store } = await shared.get();
  const { opts } = await setup(t, 'workdir');
  await build(opts('FROM busybox\nWORKDIR /new/dir\nWORKDIR /etc\n', { tags: ['workdir:1'] }));
  const img = await store.resolveImage('workdir:1');
  t.is(img.manifest.layers.length, 2);
  t.deepEqual(
    img.config.history?.slice(1).map((h) => [h.created_by, h.empty_layer === true]),
    [
      ['/bin/sh -c #(nop) WORKDIR /new/dir', false],
      ['/bin/sh -c #(nop) WORKDIR /etc', true],
    ],
  );
});

test('WORKDIR through a file fails with a clear error', async (t) => {
  const { opts } = await setup(t, 'workdir-file');
  const err = await t.throwsAsync(build(opts('FROM busybox\nWORKDIR /etc/passwd/x\n')), { instanceOf: BuildError });
  t.is(err?.line, 2);
  t.regex(err?.message ?? '', /not a directory/);
});

test('COPY without a context ("-" build) fails with E_CONTEXT; heredoc and --from still work', async (t) => {
  const { store } = await shared.get();
  const { opts } = await setup(t, 'nocontext');
  const err = await t.throwsAsync(build(opts('FROM busybox\nCOPY a /a\n', { contextDir: null })), { instanceOf: BuildError });
  t.is(err?.code, 'E_CONTEXT');
  t.is(err?.line, 2);
  await build(opts('FROM busybox AS a\nRUN echo x > /x\nFROM busybox\nCOPY --from=a /x /x\nCOPY <<EOF /h\nhd\nEOF\n', { contextDir: null, tags: ['nocontext:1'] }));
  t.is((await store.resolveImage('nocontext:1')).manifest.layers.length, 3);
});

test('COPY --from a later stage or an unknown name fails with the line', async (t) => {
  const { opts } = await setup(t, 'from-later');
  const later = await t.throwsAsync(build(opts('FROM busybox AS first\nCOPY --from=late /x /x\nFROM busybox AS late\n', { target: 'first' })), { instanceOf: BuildError });
  t.is(later?.line, 2);
  t.regex(later?.message ?? '', /late/);
  const unknown = await t.throwsAsync(build(opts('FROM busybox\n\nCOPY --from=nosuch /x /x\n')), { instanceOf: BuildError });
  t.is(unknown?.line, 3);
  t.regex(unknown?.message ?? '', /nosuch/);
});

test('COPY --from an image in the store', async (t) => {
  const { store } = await shared.get();
  const { tmp, opts } = await setup(t, 'from-image');
  await build(opts('FROM busybox\nCOPY --from=busybox:latest /etc/passwd /copied\n', { tags: ['from-image:1'] }));
  const lines = await fileLines(await flattenImage(store, 'from-image:1', tmp));
  t.true(lines.some((l) => l.startsWith('copied file 0644 0:0')));
});

test('COPY from the context chowns after copying, so files lose setuid (and setgid when group-executable) as in Docker; directories and sticky keep them', async (t) => {
  const { store } = await shared.get();
  const { tmp, opts } = await setup(t, 'ctx-suid');
  const ctxDir = path.join(tmp, 'ctx');
  await mkdir(path.join(ctxDir, 'sgdir'), { recursive: true });
  const modes: Array<[string, number]> = [['f4755', 0o4755], ['f2711', 0o2711], ['f2745', 0o2745], ['f1755', 0o1755], ['f6755', 0o6755]];
  for (const [name, mode] of modes) {
    await writeFile(path.join(ctxDir, name), name);
    await chmod(path.join(ctxDir, name), mode);
  }
  await chmod(path.join(ctxDir, 'sgdir'), 0o2775);
  await writeFile(path.join(ctxDir, 'Dockerfile'), 'FROM busybox\nCOPY . /c/\nCOPY --chown=app f4755 /owned\n');
  await build(opts('', { contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['ctx-suid:1'] }));
  const lines = await fileLines(await flattenImage(store, 'ctx-suid:1', tmp));
  const modeOf = (p: string): string | undefined => lines.find((l) => l.startsWith(`${p} `))?.split(' ')[2];
  t.deepEqual(
    ['c/f4755', 'c/f2711', 'c/f2745', 'c/f1755', 'c/f6755', 'c/sgdir', 'owned'].map(modeOf),
    ['0755', '0711', '2745', '1755', '0755', '2775', '0755'],
  );
});

test('COPY of a missing source and a wildcard matching nothing fail with the line', async (t) => {
  const { tmp, opts } = await setup(t, 'missing');
  await writeFile(path.join(tmp, 'present'), 'x');
  const missing = await t.throwsAsync(build(opts('FROM busybox\nCOPY absent /x\n')), { instanceOf: BuildError });
  t.is(missing?.line, 2);
  const wild = await t.throwsAsync(build(opts('FROM busybox\nCOPY present /p\nCOPY *.none /x/\n')), { instanceOf: BuildError });
  t.is(wild?.line, 3);
});

test('COPY several sources to a non-directory destination fails like Docker', async (t) => {
  const { tmp, opts } = await setup(t, 'multi-dest');
  await writeFile(path.join(tmp, 'a'), 'a');
  await writeFile(path.join(tmp, 'b'), 'b');
  const err = await t.throwsAsync(build(opts('FROM busybox\nCOPY a b /dest\n')), { instanceOf: BuildError });
  t.regex(err?.message ?? '', /must be a directory and end with a \//);
});

test('COPY --chown with an unknown user name fails with the line', async (t) => {
  const { tmp, opts } = await setup(t, 'chown-unknown');
  await writeFile(path.join(tmp, 'a'), 'a');
  const err = await t.throwsAsync(build(opts('FROM busybox\nCOPY --chown=nobodyhere a /a\n')), { instanceOf: BuildError });
  t.is(err?.line, 2);
  t.regex(err?.message ?? '', /can't find uid for user nobodyhere: no such user: nobodyhere/);
});

test('COPY --chown=name in an image without /etc/passwd fails as dockerd 20.10 (the open fails); numeric ids need no file', async (t) => {
  const { tmp, opts } = await setup(t, 'chown-scratch');
  await writeFile(path.join(tmp, 'a'), 'a');
  const err = await t.throwsAsync(build(opts('FROM scratch\nCOPY --chown=app a /a\n')), { instanceOf: BuildError });
  t.is(err?.message, "Dockerfile:2: COPY --chown=app a /a: unable to convert uid/gid chown string to host mapping: can't find uid for user app: open /etc/passwd: no such file or directory");
  await t.notThrowsAsync(build(opts('FROM scratch\nCOPY --chown=1:2 a /a\n')));
});

test('COPY --chown resolves as Docker 20.10 parseChownFlag: group defaults to the user string, numbers as is, empty parts and unknown names fail with its message', async (t) => {
  const { store } = await shared.get();
  const { tmp, opts } = await setup(t, 'chown-forms');
  await writeFile(path.join(tmp, 'a'), 'a');
  for (const [chown, message] of [
    ['ghost:app', "unable to convert uid/gid chown string to host mapping: can't find uid for user ghost: no such user: ghost"],
    ['app:ghostgrp', "unable to convert uid/gid chown string to host mapping: can't find gid for group ghostgrp: no such group: ghostgrp"],
    ['app:', "unable to convert uid/gid chown string to host mapping: can't find gid for group : no such group: "],
    [':app', "unable to convert uid/gid chown string to host mapping: can't find uid for user : no such user: "],
    // dockerd 20.10 wraps this one too (checked, oracle5/g-chown-3)
    ['a:b:c', 'unable to convert uid/gid chown string to host mapping: invalid chown string format: a:b:c'],
  ] as const) {
    const err = await t.throwsAsync(build(opts(`FROM busybox\nCOPY --chown=${chown} a /a\n`)), { instanceOf: BuildError });
    t.is(err?.message, `Dockerfile:2: COPY --chown=${chown} a /a: ${message}`, chown);
    t.is(err?.line, 2);
  }
  // app is uid 1000 gid 1000; staff is gid 50; 4242 is in neither file
  const ok = [['app', '1000:1000'], ['app:1234', '1000:1234'], ['4242', '4242:4242'], ['app:staff', '1000:50'], ['0:app', '0:1000']] as const;
  await build(opts(`FROM busybox\n${ok.map(([c], i) => `COPY --chown=${c} a /o${i}\n`).join('')}`, { tags: ['chown-forms:1'] }));
  const lines = await fileLines(await flattenImage(store, 'chown-forms:1', tmp));
  ok.forEach(([c, owner], i) => t.true(lines.some((l) => l.startsWith(`o${i} `) && l.includes(` ${owner}`)), `${c}: ${lines.filter((l) => l.startsWith(`o${i} `)).join()}`));
});

test('RUN over the --memory limit (oci): fails saying it was killed for memory and naming the limit', async (t) => {
  const { opts } = await setup(t, 'oom');
  const err = await t.throwsAsync(build(opts('FROM busybox\nRUN head -c 200m /dev/zero | tail\n', { isolation: 'oci', memoryBytes: 32 * 1024 * 1024, noCache: true })), {
    instanceOf: BuildError,
  });
  t.is(err?.code, 'E_STEP_FAILED');
  t.is(err?.line, 2);
  t.regex(err?.message ?? '', /killed for using more memory than the --memory limit \(33554432 bytes = 32 MiB\)/);
  // within the limit the same kind of step passes
  await t.notThrowsAsync(build(opts('FROM busybox\nRUN head -c 8m /dev/zero | tail | wc -c\n', { isolation: 'oci', memoryBytes: 64 * 1024 * 1024, cpus: 0.5, noCache: true })));
});

test('--memory with the chroot fallback is refused, not silently ignored', async (t) => {
  const { opts } = await setup(t, 'oom-chroot');
  const err = await t.throwsAsync(build(opts('FROM busybox\nRUN true\n', { isolation: 'chroot', memoryBytes: 64 * 1024 * 1024, noCache: true })));
  t.regex(err?.message ?? '', /need OCI isolation/);
});

// dockerd 20.10 (oracle5/g-run-empty, h-run-ws, h-run-emptyjson, g-workdir-empty, h-workdir-quoted)
test('nothing to run or no path fails as Docker: RUN without a command runs "/bin/sh -c" alone (status 2), RUN [] "No command specified", WORKDIR of nothing "cannot normalize nothing"', async (t) => {
  const { opts } = await setup(t, 'empty-args');
  const run = await t.throwsAsync(build(opts('FROM busybox\nRUN   \n')), { instanceOf: BuildError });
  t.is(run?.exitCode, 2);
  t.regex(run?.message ?? '', /^Dockerfile:2: RUN: The command '\/bin\/sh -c' returned a non-zero code: 2\n/);
  t.regex(run?.message ?? '', /-c requires an argument/);
  const json = await t.throwsAsync(build(opts('FROM busybox\nRUN []\n')), { instanceOf: BuildError });
  t.is(json?.message, 'Dockerfile:2: RUN []: No command specified');
  for (const wd of ['WORKDIR ""', 'ARG E\nWORKDIR $E']) {
    const err = await t.throwsAsync(build(opts(`FROM busybox\n${wd}\n`)), { instanceOf: BuildError });
    t.regex(err?.message ?? '', /^Dockerfile:\d: WORKDIR .*: cannot normalize nothing$/);
  }
});
