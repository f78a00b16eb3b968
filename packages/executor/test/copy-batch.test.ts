import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { chmod, chown, link, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { copyInto, selectSources, type CopyOptions } from '../src/context/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'ctx-copy-batch-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

/**
 * A context with what the per-entry loop branches on: files of every size class around the copy
 * buffer (empty, small, 256 KiB ± 1, several MiB), special mode bits, symlinks, hard links across
 * directories, nested directories with their own modes and times.
 */
async function makeContext(dir: string): Promise<string> {
  const ctx = path.join(dir, 'ctx');
  await mkdir(path.join(ctx, 'a/deep/er'), { recursive: true });
  await mkdir(path.join(ctx, 'b'), { recursive: true });
  await mkdir(path.join(ctx, 'c'), { recursive: true });
  await writeFile(path.join(ctx, 'empty'), '');
  await writeFile(path.join(ctx, 'small.txt'), 'small\n');
  await writeFile(path.join(ctx, 'a/under'), randomBytes(256 * 1024 - 1));
  await writeFile(path.join(ctx, 'a/exact'), randomBytes(256 * 1024));
  await writeFile(path.join(ctx, 'a/over'), randomBytes(256 * 1024 + 1));
  await writeFile(path.join(ctx, 'a/deep/big'), randomBytes(3 * 1024 * 1024 + 17));
  await writeFile(path.join(ctx, 'a/deep/er/suid'), '#!/bin/sh\n');
  await chmod(path.join(ctx, 'a/deep/er/suid'), 0o4755);
  await writeFile(path.join(ctx, 'a/deep/er/sgid'), 'g\n');
  await chmod(path.join(ctx, 'a/deep/er/sgid'), 0o2755);
  await writeFile(path.join(ctx, 'b/owned'), 'o\n');
  await chown(path.join(ctx, 'b/owned'), 1234, 5678);
  await writeFile(path.join(ctx, 'b/linked'), 'linked\n');
  await link(path.join(ctx, 'b/linked'), path.join(ctx, 'c/hard1'));
  await link(path.join(ctx, 'b/linked'), path.join(ctx, 'a/deep/hard2'));
  await symlink('../b/linked', path.join(ctx, 'c/rel-link'));
  await symlink('/etc/passwd', path.join(ctx, 'c/abs-link'));
  await chmod(path.join(ctx, 'c'), 0o1777);
  await chmod(path.join(ctx, 'a/deep'), 0o700);
  let time = 1_000_000_000;
  const stamp = async (rel: string): Promise<void> => {
    time += 1000;
    await utimes(path.join(ctx, rel), time, time + 0.123456);
  };
  for (const f of ['empty', 'small.txt', 'a/under', 'a/exact', 'a/over', 'a/deep/big', 'a/deep/er/suid', 'a/deep/er/sgid', 'b/owned', 'b/linked']) await stamp(f);
  // directories last: writing their entries above changed their times
  for (const d of ['a/deep/er', 'a/deep', 'a', 'b', 'c']) await stamp(d);
  return ctx;
}

/**
 * A listing of `dir` below it: type, mode, owner, size, mtime (ns), content hash or link target;
 * the second and later names of one inode are listed as a link to the first.
 */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const inodes = new Map<bigint, string>();
  const walk = (host: string, rel: string): void => {
    for (const name of readdirSync(host).sort()) {
      const p = path.join(host, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p, { bigint: true });
      const first = st.isFile() && st.nlink > 1n ? inodes.get(st.ino) : undefined;
      if (first !== undefined) {
        out.push(`${r} hardlink to ${first}`);
        continue;
      }
      if (st.isFile() && st.nlink > 1n) inodes.set(st.ino, r);
      const what = st.isSymbolicLink()
        ? `-> ${readlinkSync(p)}`
        : st.isFile()
          ? createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)
          : st.isDirectory()
            ? 'dir'
            : 'other';
      out.push(`${r} ${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : '-'} ${st.isSymbolicLink() ? '-' : st.mtimeNs} ${what}`);
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(dir, '');
  return out;
}

/**
 * What stands in the image before the copy: every entry of the context in the opposite kind or
 * with other content, so each one is replaced (a dir where the context has a file, a file where it
 * has a dir or a symlink, a symlink pointing out of the root where it has a file or a dir), plus
 * an entry the context does not have, which must stay.
 */
async function populateConflicts(dst: string): Promise<void> {
  await mkdir(path.join(dst, 'small.txt/inner'), { recursive: true });
  await writeFile(path.join(dst, 'small.txt/inner/x'), 'x');
  await writeFile(path.join(dst, 'empty'), 'not empty');
  await writeFile(path.join(dst, 'a'), 'a file where a dir goes');
  await mkdir(path.join(dst, 'b'));
  await writeFile(path.join(dst, 'b/owned'), 'older content, longer than the new one');
  await symlink('/', path.join(dst, 'b/linked'));
  await symlink('/tmp', path.join(dst, 'c'));
  await mkdir(path.join(dst, 'keep'));
  await writeFile(path.join(dst, 'keep/me'), 'kept');
}

const rows: Array<[string, Partial<CopyOptions>]> = [
  ['owner 0:0', {}],
  ['--chown', { chown: { uid: 1000, gid: 50 } }],
  ['--chmod', { chmod: 0o640 }],
  ['preserveOwnership (COPY --from)', { preserveOwnership: true }],
];

for (const [name, extra] of rows) {
  test(`COPY dir (${name}): a copy over existing entries of every kind gives the tree a fresh copy gives`, async (t) => {
    const dir = await tempDir(t);
    const ctx = await makeContext(dir);
    const fresh = path.join(dir, 'fresh');
    const over = path.join(dir, 'over');
    await mkdir(fresh);
    await mkdir(path.join(over, 'dst'), { recursive: true });
    await populateConflicts(path.join(over, 'dst'));
    for (const rootfs of [fresh, over]) {
      await copyInto({ rootfs, sources: await selectSources(ctx, ['.']), dest: '/dst/', ...extra });
    }
    const freshTree = listTree(path.join(fresh, 'dst'));
    const overTree = listTree(path.join(over, 'dst'));
    t.deepEqual(
      overTree.filter((l) => !l.startsWith('keep')),
      freshTree,
    );
    t.deepEqual(
      overTree.filter((l) => l.startsWith('keep')).map((l) => l.split(' ')[0]),
      ['keep', 'keep/me'],
    );
    // The fresh copy has the context's content, sizes, times (in whole seconds, as Docker's copy
    // through tar: checked against dockerd, h2/m1) and links.
    const wholeSeconds = (l: string): string => l.replace(/ (\d{10,})(\d{9}) /, ' $1000000000 ');
    const source = listTree(ctx).map(wholeSeconds);
    const strip = (l: string): string => {
      const f = l.split(' ');
      return f.length === 4 ? l : [f[0], f[3], f[4], f[5]].join(' ');
    };
    t.deepEqual(freshTree.map(strip), source.map(strip));
    // the symlinks that stood there were replaced, not written through
    t.false(existsSync('/tmp/rel-link'));
    t.false(existsSync('/linked'));
  });
}

test('COPY dir: owners and modes of the copied entries follow Docker (chmod then chown clears setuid and setgid)', async (t) => {
  const dir = await tempDir(t);
  const ctx = await makeContext(dir);
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(rootfs);
  await copyInto({ rootfs, sources: await selectSources(ctx, ['.']), dest: '/dst' });
  const modes = new Map(listTree(path.join(rootfs, 'dst')).map((l) => [l.split(' ')[0]!, l.split(' ').slice(1, 3).join(' ')]));
  t.is(modes.get('a/deep/er/suid'), '755 0:0');
  t.is(modes.get('a/deep/er/sgid'), '755 0:0');
  t.is(modes.get('b/owned'), '644 0:0');
  t.is(modes.get('c'), '1777 0:0');
  t.is(modes.get('a/deep'), '700 0:0');
  const kept = path.join(dir, 'kept');
  await mkdir(kept);
  await copyInto({ rootfs: kept, sources: await selectSources(ctx, ['.']), dest: '/dst', preserveOwnership: true });
  const keptModes = new Map(listTree(path.join(kept, 'dst')).map((l) => [l.split(' ')[0]!, l.split(' ').slice(1, 3).join(' ')]));
  t.is(keptModes.get('a/deep/er/suid'), '4755 0:0', 'no chown: setuid survives');
  t.is(keptModes.get('b/owned'), '644 1234:5678');
});

test('COPY: hard links stay hard links within a source, not across sources (as Docker 20.10), also where the name was taken', async (t) => {
  const dir = await tempDir(t);
  const ctx = await makeContext(dir);
  await link(path.join(ctx, 'c/hard1'), path.join(ctx, 'c/hard1b'));
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(path.join(rootfs, 'dst'), { recursive: true });
  await writeFile(path.join(rootfs, 'dst/hard1b'), 'taken');
  await copyInto({ rootfs, sources: await selectSources(ctx, ['b', 'c', 'a/deep/hard2']), dest: '/dst/' });
  const ino = (rel: string): bigint => lstatSync(path.join(rootfs, 'dst', rel), { bigint: true }).ino;
  t.is(ino('hard1b'), ino('hard1'));
  t.not(ino('hard1'), ino('linked'));
  t.not(ino('hard2'), ino('linked'));
  t.not(ino('hard2'), ino('hard1'));
  t.is(readFileSync(path.join(rootfs, 'dst/hard1b'), 'utf8'), 'linked\n');
  t.is(lstatSync(path.join(rootfs, 'dst/hard1')).nlink, 2);
  t.is(lstatSync(path.join(rootfs, 'dst/linked')).nlink, 1);
});

/** Open file descriptors of this process. */
function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test.serial('COPY aborted mid-copy rejects with the abort reason only, lets the event loop run meanwhile, and leaks no descriptor', async (t) => {
  const dir = await tempDir(t);
  const ctx = path.join(dir, 'ctx');
  const count = 4000;
  for (let d = 0; d < 20; d++) {
    mkdirSync(path.join(ctx, `d${d}`), { recursive: true });
    for (let f = 0; f < count / 20; f++) writeFileSync(path.join(ctx, `d${d}`, `f${f}`), `${d}/${f}\n`);
  }
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(rootfs);
  const sources = await selectSources(ctx, ['.']);
  const before = openFds();
  const ac = new AbortController();
  const reason = new Error('stop here');
  let polls = 0;
  let settled = false;
  // Runs only when the copy yields to the event loop: abort once some files are written.
  const poll = (): void => {
    if (settled) return;
    polls++;
    let written = 0;
    try {
      written = readdirSync(path.join(rootfs, 'dst/d0')).length;
    } catch {
      /* not there yet */
    }
    if (written > 0) ac.abort(reason);
    else setImmediate(poll);
  };
  setImmediate(poll);
  const copy = copyInto({ rootfs, sources, dest: '/dst', signal: ac.signal }).finally(() => (settled = true));
  const err = await t.throwsAsync(copy);
  t.is(err, reason);
  t.true(polls > 0);
  const written = (await readdir(path.join(rootfs, 'dst'))).length;
  t.true(written < 20 || readdirSync(path.join(rootfs, 'dst/d19')).length < count / 20, 'stopped before the end');
  t.is(openFds(), before);
});
