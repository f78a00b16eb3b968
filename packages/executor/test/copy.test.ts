import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chown, link, lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, stat, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { addInto, copyInto, detectArchive, resolveInRoot, selectSources, writeHeredoc } from '../src/context/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'ctx-copy-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function setup(t: ExecutionContext): Promise<{ ctx: string; rootfs: string; dir: string }> {
  const dir = await tempDir(t);
  const ctx = path.join(dir, 'ctx');
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(path.join(ctx, 'dir/sub'), { recursive: true });
  await writeFile(path.join(ctx, 'a.txt'), 'hello\n');
  await chmod(path.join(ctx, 'a.txt'), 0o751);
  await utimes(path.join(ctx, 'a.txt'), 981173106, 981173106);
  await writeFile(path.join(ctx, 'b.txt'), 'b\n');
  await writeFile(path.join(ctx, 'dir/f1'), '1\n');
  await chown(path.join(ctx, 'dir/f1'), 1234, 5678);
  await writeFile(path.join(ctx, 'dir/sub/f2'), '2\n');
  await chmod(path.join(ctx, 'dir/sub'), 0o700);
  await symlink('../f1', path.join(ctx, 'dir/sub/rel-link'));
  await symlink('/etc/shadow', path.join(ctx, 'dir/abs-link'));
  await link(path.join(ctx, 'dir/f1'), path.join(ctx, 'dir/hard'));
  await mkdir(path.join(rootfs, 'usr/lib'), { recursive: true });
  await mkdir(path.join(rootfs, 'existdir'), { recursive: true });
  await writeFile(path.join(rootfs, 'existfile'), 'x');
  await symlink('usr/lib', path.join(rootfs, 'lib'));
  await symlink('/', path.join(rootfs, 'evil'));
  await symlink('../../..', path.join(rootfs, 'evil2'));
  return { ctx, rootfs, dir };
}

async function info(p: string): Promise<string> {
  const s = await lstat(p);
  const type = s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : 'f';
  return `${type} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}${s.isFile() ? ` ${s.size}` : ''}`;
}

test('resolveInRoot: symlinks to "/" and "../../.." stay inside the root', async (t) => {
  const { rootfs } = await setup(t);
  t.is(await resolveInRoot(rootfs, '/evil/etc/passwd'), path.join(rootfs, 'etc/passwd'));
  t.is(await resolveInRoot(rootfs, '/evil2/etc/passwd'), path.join(rootfs, 'etc/passwd'));
  t.is(await resolveInRoot(rootfs, '../../../x'), path.join(rootfs, 'x'));
  t.is(await resolveInRoot(rootfs, '/lib/a'), path.join(rootfs, 'usr/lib/a'));
  t.is(await resolveInRoot(rootfs, '/lib', { followFinal: false }), path.join(rootfs, 'lib'));
  await symlink('loop', path.join(rootfs, 'loop'));
  await t.throwsAsync(resolveInRoot(rootfs, '/loop/x'), { code: 'E_SYMLINK_LOOP' } as never);
});

test('COPY file to a new path keeps mode and mtime, owner 0:0', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/newdir/newfile' });
  t.is(await info(path.join(rootfs, 'newdir/newfile')), 'f 751 0:0 6');
  t.is(await info(path.join(rootfs, 'newdir')), 'd 755 0:0');
  t.is((await stat(path.join(rootfs, 'newdir/newfile'))).mtimeMs, 981173106000);
});

test('COPY file into an existing directory (no trailing slash) and into dest/', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/existdir' });
  t.is(await readFile(path.join(rootfs, 'existdir/a.txt'), 'utf8'), 'hello\n');
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/new/' });
  t.is(await readFile(path.join(rootfs, 'new/a.txt'), 'utf8'), 'hello\n');
});

test('COPY relative dest resolves against workdir', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: 'x/', workdir: '/app' });
  t.is(await readFile(path.join(rootfs, 'app/x/a.txt'), 'utf8'), 'hello\n');
  await copyInto({ rootfs, sources: await selectSources(ctx, ['b.txt']), dest: '.', workdir: '/app' });
  t.is(await readFile(path.join(rootfs, 'app/b.txt'), 'utf8'), 'b\n');
});

// Checked against dockerd 20.10 (h2/c7, c8): only a trailing "/" (or an existing directory) makes
// the destination a directory for a file; "/x3/." and "sub/." are cleaned to a file name.
test('COPY file to a destination ending in "/." writes a file of that name unless it is a directory', async (t) => {
  const { ctx, rootfs } = await setup(t);
  const a = await selectSources(ctx, ['a.txt']);
  await copyInto({ rootfs, sources: a, dest: '/x3/.' });
  t.is(await info(path.join(rootfs, 'x3')), 'f 751 0:0 6');
  await copyInto({ rootfs, sources: a, dest: 'sub/.', workdir: '/w2' });
  t.is(await readFile(path.join(rootfs, 'w2/sub'), 'utf8'), 'hello\n');
  await copyInto({ rootfs, sources: a, dest: 'sub2/./', workdir: '/w2' });
  t.is(await readFile(path.join(rootfs, 'w2/sub2/a.txt'), 'utf8'), 'hello\n');
  await copyInto({ rootfs, sources: a, dest: '/existdir/.' });
  t.is(await readFile(path.join(rootfs, 'existdir/a.txt'), 'utf8'), 'hello\n');
  // a WORKDIR a RUN removed: "." is that path, written as a file
  await copyInto({ rootfs, sources: a, dest: '.', workdir: '/gone' });
  t.is(await readFile(path.join(rootfs, 'gone'), 'utf8'), 'hello\n');
});

// Checked against dockerd 20.10 (h2/c11): a file dated before 1970, copied with COPY --from, has
// the time 0 in Docker's layer; Node's utimes takes a negative time for "now" (we wrote build time).
test('COPY of files and directories dated before 1970 gives them the time 0, not the time of the copy', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await mkdir(path.join(ctx, 'old/sub'), { recursive: true });
  await writeFile(path.join(ctx, 'old/f'), 'x');
  execFileSync('touch', ['-h', '-d', '@-315550085', path.join(ctx, 'old/f'), path.join(ctx, 'old/sub')]);
  t.is((await lstat(path.join(ctx, 'old/f'))).mtimeMs, -315550085000, 'the source is dated 1960');
  await copyInto({ rootfs, sources: await selectSources(ctx, ['old']), dest: '/o/' });
  await copyInto({ rootfs, sources: await selectSources(ctx, ['old/f']), dest: '/f1' });
  for (const p of ['o/sub', 'o/f', 'f1']) t.is((await lstat(path.join(rootfs, p))).mtimeMs, 0, p);
});

// Checked against dockerd 20.10 (h2/c5d, c5f, c5g; it names the overlay path where we name the image's).
test('COPY below a file: the destination lstat fails as Docker\'s isExistingDirectory', async (t) => {
  const { ctx, rootfs } = await setup(t);
  const msg = (m: string) => ({ code: 'E_COPY_NOT_DIR', message: `failed to copy files: ${m}: not a directory` }) as never;
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/existfile/deeper/' }), msg('lstat /existfile/deeper'));
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/existfile/deeper/' }), msg('lstat /existfile/deeper'));
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/existfile/' }), msg('failed to create new directory: mkdir /existfile'));
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/existfile' }), msg('failed to copy directory: mkdir /existfile'));
});

// Checked against dockerd 20.10 (h2/m1): the next RUN sees a copied file's time in whole seconds.
test('COPY keeps the sources\' times in whole seconds, as Docker\'s copy through tar', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await mkdir(path.join(ctx, 'frac/sub'), { recursive: true });
  await writeFile(path.join(ctx, 'frac/f'), 'x');
  execFileSync('touch', ['-d', '@1577934245.678901234', path.join(ctx, 'frac/f'), path.join(ctx, 'frac/sub')]);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['frac']), dest: '/fr/' });
  await copyInto({ rootfs, sources: await selectSources(ctx, ['frac/f']), dest: '/f2' });
  for (const p of ['fr/f', 'fr/sub', 'f2']) t.is((await lstat(path.join(rootfs, p), { bigint: true })).mtimeNs, 1577934245000000000n, p);
});

test('COPY directory copies its contents, keeps modes, symlinks and hard links, owner 0:0', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/d' });
  t.deepEqual((await readdir(path.join(rootfs, 'd'))).sort(), ['abs-link', 'f1', 'hard', 'sub']);
  t.is(await info(path.join(rootfs, 'd/f1')), 'f 644 0:0 2');
  t.is(await info(path.join(rootfs, 'd/sub')), 'd 700 0:0');
  t.is(await readlink(path.join(rootfs, 'd/abs-link')), '/etc/shadow');
  t.is(await readlink(path.join(rootfs, 'd/sub/rel-link')), '../f1');
  t.is((await stat(path.join(rootfs, 'd/hard'))).ino, (await stat(path.join(rootfs, 'd/f1'))).ino);
});

test('COPY directory makes its fifos and device nodes again with their mode, owner (or --chown) and numbers, as Docker 20.10 does; sockets are skipped', async (t) => {
  const { ctx, rootfs } = await setup(t);
  const sp = path.join(ctx, 'special');
  await mkdir(sp);
  execFileSync('mknod', ['-m', '600', path.join(sp, 'fifo'), 'p']);
  await chown(path.join(sp, 'fifo'), 1000, 50);
  execFileSync('mknod', ['-m', '640', path.join(sp, 'null'), 'c', '1', '3']);
  execFileSync('mknod', [path.join(sp, 'blk'), 'b', '7', '300']);
  // a socket (a listening server's path; Node unlinks it on close)
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(path.join(sp, 'sock'), resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  const kind = async (p: string) => {
    const s = await lstat(p);
    const k = s.isFIFO() ? 'p' : s.isCharacterDevice() ? 'c' : s.isBlockDevice() ? 'b' : '?';
    return `${k} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}${k === 'c' || k === 'b' ? ` ${Math.floor(s.rdev / 256) & 0xfff}:${(s.rdev & 0xff) | ((s.rdev >> 12) & ~0xff)}` : ''}`;
  };
  await copyInto({ rootfs, sources: await selectSources(ctx, ['special']), dest: '/s/', preserveOwnership: true });
  t.deepEqual((await readdir(path.join(rootfs, 's'))).sort(), ['blk', 'fifo', 'null']);
  t.is(await kind(path.join(rootfs, 's/fifo')), 'p 600 1000:50');
  t.is(await kind(path.join(rootfs, 's/null')), 'c 640 0:0 1:3');
  t.is(await kind(path.join(rootfs, 's/blk')), 'b 644 0:0 7:300');
  // over what is there, and with --chown
  await copyInto({ rootfs, sources: await selectSources(ctx, ['special']), dest: '/s/', chown: { uid: 7, gid: 8 } });
  t.is(await kind(path.join(rootfs, 's/fifo')), 'p 600 7:8');
});

test('COPY --chown: a file source chowns every created dir; a dir source only dest itself', async (t) => {
  const { ctx, rootfs } = await setup(t);
  const chown = { uid: 1000, gid: 50 };
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/nd/x/', chown });
  t.is(await info(path.join(rootfs, 'nd')), 'd 755 1000:50');
  t.is(await info(path.join(rootfs, 'nd/x')), 'd 755 1000:50');
  t.is(await info(path.join(rootfs, 'nd/x/a.txt')), 'f 751 1000:50 6');
  await copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/c/deep/', chown });
  t.is(await info(path.join(rootfs, 'c')), 'd 755 0:0');
  t.is(await info(path.join(rootfs, 'c/deep')), 'd 755 1000:50');
  t.is(await info(path.join(rootfs, 'c/deep/sub')), 'd 700 1000:50');
  t.is(await info(path.join(rootfs, 'c/deep/abs-link')), 'l 777 1000:50');
  await copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/existdir/', chown });
  t.is(await info(path.join(rootfs, 'existdir')), 'd 755 0:0', 'an existing dest keeps its owner');
});

test('COPY --chmod sets the mode of copied files and directories', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/m/', chmod: 0o640 });
  t.is(await info(path.join(rootfs, 'm/f1')), 'f 640 0:0 2');
  t.is(await info(path.join(rootfs, 'm/sub')), 'd 640 0:0');
});

test('COPY several sources needs a directory destination', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt', 'b.txt']), dest: '/single' }), {
    code: 'E_COPY_DEST_NOT_DIR',
    message: 'When using COPY with more than one source file, the destination must be a directory and end with a /',
  } as never);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['*.txt']), dest: '/multi/' });
  t.deepEqual((await readdir(path.join(rootfs, 'multi'))).sort(), ['a.txt', 'b.txt']);
});

test('COPY through hostile symlinks in the image stays inside the rootfs', async (t) => {
  const { ctx, rootfs, dir } = await setup(t);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/evil/escape1' });
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/evil2/tmp/escape2' });
  await copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/lib/' });
  t.is(await readFile(path.join(rootfs, 'escape1'), 'utf8'), 'hello\n');
  t.is(await readFile(path.join(rootfs, 'tmp/escape2'), 'utf8'), 'hello\n');
  t.is(await readFile(path.join(rootfs, 'usr/lib/a.txt'), 'utf8'), 'hello\n');
  await t.throwsAsync(stat('/escape1'));
  await t.throwsAsync(stat(path.join(dir, 'escape2')));
  // A symlink in the image where the source has a file is replaced, never written through.
  await symlink('/etc/hostile-target', path.join(rootfs, 'existdir/f1'));
  await copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/existdir' });
  t.is(await info(path.join(rootfs, 'existdir/f1')), 'f 644 0:0 2');
  await t.throwsAsync(stat('/etc/hostile-target'));
});

test('COPY a file onto a symlink in the image writes its target, resolved inside the rootfs (Docker 20.10 follows the last component)', async (t) => {
  const { ctx, rootfs, dir } = await setup(t);
  const copy = async (src: string, dest: string, extra: { chown?: { uid: number; gid: number } } = {}): Promise<void> =>
    copyInto({ rootfs, sources: await selectSources(ctx, [src]), dest, ...extra });
  await mkdir(path.join(rootfs, 'd'));
  await mkdir(path.join(rootfs, 'e'));
  for (const f of ['d/f', 'd/g']) {
    await writeFile(path.join(rootfs, f), 'old\n', { mode: 0o600 });
    await chown(path.join(rootfs, f), 5, 6);
  }
  await symlink('/d/f', path.join(rootfs, 'd/sl'));
  await symlink('g', path.join(rootfs, 'd/rel'));
  await symlink('/d/rel', path.join(rootfs, 'd/chain'));
  await symlink('/d', path.join(rootfs, 'linkdir'));
  await symlink('/nowhere/x', path.join(rootfs, 'd/dang'));
  const unique = path.basename(dir);
  await symlink(`../../../../../tmp/esc-${unique}`, path.join(rootfs, 'd/esc'));
  await symlink(`/etc/abs-${unique}`, path.join(rootfs, 'd/abs'));
  await symlink('/d/g', path.join(rootfs, 'e/b.txt'));

  await copy('b.txt', '/d/sl'); // absolute target: the file is written, the symlink stays
  t.is(await readlink(path.join(rootfs, 'd/sl')), '/d/f');
  t.is(await readFile(path.join(rootfs, 'd/f'), 'utf8'), 'b\n');
  t.is(await info(path.join(rootfs, 'd/f')), 'f 644 0:0 2');
  await copy('a.txt', '/d/chain', { chown: { uid: 7, gid: 8 } }); // a chain to a relative link
  t.is(await readlink(path.join(rootfs, 'd/chain')), '/d/rel');
  t.is(await info(path.join(rootfs, 'd/g')), 'f 751 7:8 6');
  await copy('b.txt', '/linkdir'); // a symlink to a directory: into it
  t.is(await info(path.join(rootfs, 'd/b.txt')), 'f 644 0:0 2');
  t.is(await info(path.join(rootfs, 'linkdir')), 'l 777 0:0');
  await copy('b.txt', '/d/dang', { chown: { uid: 9, gid: 9 } }); // dangling: its target is created
  t.is(await info(path.join(rootfs, 'nowhere')), 'd 755 9:9');
  t.is(await info(path.join(rootfs, 'nowhere/x')), 'f 644 9:9 2');
  await copy('b.txt', '/d/esc'); // targets outside the root stay inside it
  await copy('b.txt', '/d/abs');
  t.is(await readFile(path.join(rootfs, `tmp/esc-${unique}`), 'utf8'), 'b\n');
  t.is(await readFile(path.join(rootfs, `etc/abs-${unique}`), 'utf8'), 'b\n');
  await t.throwsAsync(stat(`/tmp/esc-${unique}`));
  await t.throwsAsync(stat(`/etc/abs-${unique}`));
  // into a directory the source's name is not followed: the symlink there is replaced
  await copy('b.txt', '/e/');
  t.is(await info(path.join(rootfs, 'e/b.txt')), 'f 644 0:0 2');
  t.is(await readFile(path.join(rootfs, 'd/g'), 'utf8'), 'hello\n');
  // a trailing slash after a symlink to a file: Docker's "mkdir …: not a directory"
  await t.throwsAsync(copy('b.txt', '/d/sl/'), { code: 'E_COPY_NOT_DIR', message: /mkdir \/d\/f: not a directory/ } as never);
});

test('COPY: a dir where the source has a file is replaced; a symlink where it has a dir becomes a dir; a file where dest dir is needed fails', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await mkdir(path.join(rootfs, 'app/f1/x'), { recursive: true });
  await symlink('/usr/lib', path.join(rootfs, 'app/sub'));
  await copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/app/' });
  t.is(await info(path.join(rootfs, 'app/f1')), 'f 644 0:0 2');
  t.is(await info(path.join(rootfs, 'app/sub')), 'd 700 0:0');
  t.deepEqual(await readdir(path.join(rootfs, 'usr/lib')), []);
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['dir']), dest: '/existfile' }), { code: 'E_COPY_NOT_DIR' } as never);
  await t.throwsAsync(copyInto({ rootfs, sources: await selectSources(ctx, ['a.txt']), dest: '/existfile/' }), { code: 'E_COPY_NOT_DIR' } as never);
});

test('writeHeredoc writes 0644 (or --chmod), owner, into a directory under the delimiter name', async (t) => {
  const { rootfs } = await setup(t);
  t.is(await writeHeredoc(rootfs, '/etc/conf', 'line\n'), '/etc/conf');
  t.is(await info(path.join(rootfs, 'etc/conf')), 'f 644 0:0 5');
  t.is(await writeHeredoc(rootfs, 'scripts/', '#!/bin/sh\n', { name: 'run.sh', workdir: '/app', chmod: 0o755, chown: { uid: 1000, gid: 1000 } }), '/app/scripts/run.sh');
  t.is(await info(path.join(rootfs, 'app/scripts/run.sh')), 'f 755 1000:1000 10');
});

async function makeTar(dir: string, name: string, compress: string[]): Promise<string> {
  const src = path.join(dir, 'tarsrc');
  await mkdir(path.join(src, 'inner'), { recursive: true });
  await writeFile(path.join(src, 'inner/file'), 'in tar\n');
  await writeFile(path.join(src, '.wh.gone'), '');
  await chown(path.join(src, 'inner/file'), 42, 43);
  const out = path.join(dir, 'ctx', name);
  execFileSync('tar', ['-C', src, ...compress, '-cf', out, '.']);
  await rm(src, { recursive: true });
  return out;
}

for (const [name, flags, format] of [
  ['x.tar', [], 'tar'],
  ['x.tar.gz', ['-z'], 'gzip'],
  ['x.tar.bz2', ['-j'], 'bzip2'],
  ['x.tar.xz', ['-J'], 'xz'],
  ['no-extension', ['-z'], 'gzip'],
] as const) {
  test(`ADD ${name} (${format}) is extracted into dest, keeping owners and applying whiteouts`, async (t) => {
    const { ctx, rootfs, dir } = await setup(t);
    await makeTar(dir, name, [...flags]);
    t.is(await detectArchive(path.join(ctx, name)), format);
    await mkdir(path.join(rootfs, 'out'));
    await writeFile(path.join(rootfs, 'out/gone'), 'old');
    await addInto({ rootfs, sources: await selectSources(ctx, [name]), dest: '/out' });
    t.is(await readFile(path.join(rootfs, 'out/inner/file'), 'utf8'), 'in tar\n');
    t.is(await info(path.join(rootfs, 'out/inner/file')), 'f 644 42:43 7');
    t.deepEqual((await readdir(path.join(rootfs, 'out'))).sort(), ['inner']);
  });
}

for (const [name, flags] of [
  ['root.tar', []],
  ['root.tar.gz', ['-z']],
  ['root.tar.bz2', ['-j']],
  ['root.tar.xz', ['-J']],
] as const) {
  test(`ADD ${name}: the archive's root entry changes neither a new nor an existing destination; ./sub/ applies (as Docker 20.10)`, async (t) => {
    const { ctx, rootfs, dir } = await setup(t);
    const src = path.join(dir, 'rootsrc');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'one'), '1\n');
    await chmod(src, 0o700);
    await chmod(path.join(src, 'sub'), 0o750);
    execFileSync('tar', ['--owner=123', '--group=456', '--numeric-owner', '-C', src, ...flags, '-cf', path.join(ctx, name), '.']);
    t.regex(execFileSync('tar', ['-tvf', path.join(ctx, name)], { encoding: 'utf8' }), /^drwx------ 123\/456 .* \.\/\n/);
    const sources = await selectSources(ctx, [name]);
    await addInto({ rootfs, sources, dest: '/new/' });
    await addInto({ rootfs, sources, dest: '/new-noslash' });
    t.is(await info(path.join(rootfs, 'new')), 'd 755 0:0');
    t.is(await info(path.join(rootfs, 'new-noslash')), 'd 755 0:0');
    t.is(await info(path.join(rootfs, 'new/sub')), 'd 750 123:456');
    t.is(await info(path.join(rootfs, 'new/one')), 'f 644 123:456 2');
    await mkdir(path.join(rootfs, 'pre/sub'), { recursive: true });
    await chown(path.join(rootfs, 'pre'), 7, 8);
    await chmod(path.join(rootfs, 'pre'), 0o2711);
    await chmod(path.join(rootfs, 'pre/sub'), 0o701);
    await symlink('/pre', path.join(rootfs, 'prelink'));
    await addInto({ rootfs, sources, dest: '/prelink' });
    t.is(await info(path.join(rootfs, 'pre')), 'd 2711 7:8');
    t.is(await info(path.join(rootfs, 'pre/sub')), 'd 750 123:456');
    await chmod(rootfs, 0o755);
    await addInto({ rootfs, sources, dest: '/' });
    t.is(await info(rootfs), 'd 755 0:0');
  });
}

test('ADD of a non-archive named .tar.gz, and of a gzip that is not a tar, copies them as they are', async (t) => {
  const { ctx, rootfs } = await setup(t);
  await writeFile(path.join(ctx, 'fake.tar.gz'), 'not an archive\n');
  execFileSync('sh', ['-c', `echo plain | gzip > '${path.join(ctx, 'plain.gz')}'`]);
  t.is(await detectArchive(path.join(ctx, 'fake.tar.gz')), null);
  t.is(await detectArchive(path.join(ctx, 'plain.gz')), null);
  await addInto({ rootfs, sources: await selectSources(ctx, ['fake.tar.gz', 'plain.gz']), dest: '/f/' });
  t.is(await readFile(path.join(rootfs, 'f/fake.tar.gz'), 'utf8'), 'not an archive\n');
  t.is((await stat(path.join(rootfs, 'f/plain.gz'))).size, (await stat(path.join(ctx, 'plain.gz'))).size);
});

async function server(t: ExecutionContext, body: string): Promise<string> {
  const srv = createServer((req, res) => {
    if (req.url === '/missing') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Last-Modified': 'Tue, 07 Jun 2005 08:09:10 GMT', 'Content-Type': 'application/octet-stream' });
    res.end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

test('ADD URL: file name from the URL, mode 0600, mtime from Last-Modified, checksum verified', async (t) => {
  const { rootfs, dir } = await setup(t);
  const base = await server(t, 'payload\n');
  const good = `sha256:${createHash('sha256').update('payload\n').digest('hex')}`;
  await addInto({ rootfs, sources: [], urls: [`${base}/files/file.bin`], dest: '/u/', checksum: good, tmpDir: dir });
  t.is(await info(path.join(rootfs, 'u/file.bin')), 'f 600 0:0 8');
  t.is((await stat(path.join(rootfs, 'u/file.bin'))).mtime.toISOString(), '2005-06-07T08:09:10.000Z');
  await addInto({ rootfs, sources: [], urls: [`${base}/file.bin`], dest: '/u2', tmpDir: dir });
  t.is(await readFile(path.join(rootfs, 'u2'), 'utf8'), 'payload\n');
  await t.throwsAsync(addInto({ rootfs, sources: [], urls: [`${base}/x`], dest: '/u3', checksum: `sha256:${'0'.repeat(64)}`, tmpDir: dir }), {
    code: 'E_ADD_CHECKSUM',
  } as never);
  await t.throwsAsync(stat(path.join(rootfs, 'u3')));
  await t.throwsAsync(addInto({ rootfs, sources: [], urls: [`${base}/`], dest: '/u4/', tmpDir: dir }), {
    message: `ADD failed: cannot determine filename for source ${base}/`,
  } as never);
  await t.throwsAsync(addInto({ rootfs, sources: [], urls: [`${base}/missing`], dest: '/u5', tmpDir: dir }), { code: 'E_ADD_URL' } as never);
  t.deepEqual((await readdir(dir)).filter((n) => n.startsWith('tsbuild-add-')), [], 'staging removed');
});

// Checked against dockerd 20.10 (h2/ae1): the destination is resolved (lstat) before the untar.
test('ADD of an archive below a file fails as dockerd: lstat DEST: not a directory', async (t) => {
  const { ctx, rootfs } = await setup(t);
  execFileSync('tar', ['-C', path.join(ctx, 'dir'), '-cf', path.join(ctx, 'x.tar'), 'f1']);
  await t.throwsAsync(addInto({ rootfs, sources: await selectSources(ctx, ['x.tar']), dest: '/existfile/deeper/' }), {
    code: 'E_COPY_NOT_DIR',
    message: 'failed to copy files: lstat /existfile/deeper: not a directory',
  } as never);
  await addInto({ rootfs, sources: await selectSources(ctx, ['x.tar']), dest: '/fine/deeper/' });
  t.is(await readFile(path.join(rootfs, 'fine/deeper/f1'), 'utf8'), '1\n');
});
