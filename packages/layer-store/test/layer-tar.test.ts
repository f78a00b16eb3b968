import test, { type ExecutionContext } from 'ava';
import { chmod, cp, link, lchown, mkdir, readFile, rm, symlink, utimes, writeFile, chown } from 'node:fs/promises';

import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { setAttribute } from 'fs-xattr';
import { applyLayer, hashing, layerTarStream, MediaTypes, sha256Of, Store, writeLayer, type WrittenLayer } from '../src/index.js';
import { readTar } from '../src/tar.js';
import { describeTree, sh, tempDir } from './helpers.js';

// security.capability for cap_net_bind_service+ep (VFS v2): binary, with bytes ≥ 0x80 in it.
const CAP = Buffer.from('0100000200040000000000000000000000000000', 'hex');
const CAP_HIGH = Buffer.from('01000002ff00000000000000ff00000000000000', 'hex');

/** A tree with every kind of entry the layer format must keep. */
async function makeFixture(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'tmp'));
  await chmod(join(root, 'tmp'), 0o1777);
  await mkdir(join(root, 'empty'));
  await mkdir(join(root, 'home/app/.cache'), { recursive: true });
  await chown(join(root, 'home/app'), 1000, 50);
  await chmod(join(root, 'home/app'), 0o750);
  await writeFile(join(root, 'bin/tool'), '#!/bin/sh\necho tool\n');
  await chmod(join(root, 'bin/tool'), 0o4755);
  await writeFile(join(root, 'bin/sgid'), 'x');
  await chmod(join(root, 'bin/sgid'), 0o2711);
  await writeFile(join(root, 'bin/cap'), 'cap');
  await setAttribute(join(root, 'bin/cap'), 'security.capability', CAP);
  await writeFile(join(root, 'bin/cap2'), 'cap2');
  await setAttribute(join(root, 'bin/cap2'), 'security.capability', CAP_HIGH);
  await setAttribute(join(root, 'bin/cap2'), 'user.note', 'hello');
  await writeFile(join(root, 'bin/trusted'), 't');
  await setAttribute(join(root, 'bin/trusted'), 'trusted.overlay.origin', 'zzz');
  await symlink('tool', join(root, 'bin/rel'));
  await symlink('/bin/tool', join(root, 'bin/abs'));
  await writeFile(join(root, 'home/app/data'), Buffer.alloc(70_000, 7));
  await lchown(join(root, 'home/app/data'), 1000, 1000);
  await link(join(root, 'home/app/data'), join(root, 'home/app/data-link'));
  await link(join(root, 'home/app/data'), join(root, 'bin/zz-data-link'));
  const long = 'd'.repeat(60);
  await mkdir(join(root, long, long), { recursive: true });
  await writeFile(join(root, long, long, 'f'.repeat(120)), 'long');
  await symlink('t'.repeat(150), join(root, 'longlink'));
  await writeFile(join(root, 'héllo wörld ☃'), 'utf8');
  await mkdir(join(root, 'dev'));
  await sh('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
  await sh('mknod', [join(root, 'dev/sda'), 'b', '8', '0']);
  await sh('mkfifo', [join(root, 'dev/fifo')]);
  await lchown(join(root, 'dev/fifo'), 5, 6);
  await lchown(join(root, 'bin/rel'), 7, 8);
  // mtimes last (dirs after children)
  await utimes(join(root, 'bin/tool'), 1_000_000, 1_000_000);
  await utimes(join(root, 'home/app'), 2_000_000, 2_000_000);
}

async function gunzipDigest(store: Store, d: Parameters<Store['openBlob']>[0]): Promise<string> {
  const h = hashing();
  const s = store.openBlob(d).pipe(createGunzip()).pipe(h);
  for await (const _ of s) void _;
  return h.digest();
}

/** The fixture tree written as a layer with `opts` and applied to a fresh dir. */
async function roundTrip(t: ExecutionContext, opts: { userXattrs?: boolean }): Promise<{ src: string; out: string; store: Store; layer: WrittenLayer }> {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  await mkdir(src);
  await mkdir(out);
  await makeFixture(src);
  const store = await Store.open(join(dir, 'store'));
  const layer = await writeLayer(store, src, { kind: 'rootfs', ...opts });
  await applyLayer(layer.open(), out, { format: 'plain' });
  return { src, out, store, layer };
}

test('round trip: dir → layer → apply gives an identical tree (modes, owners, links, xattrs, devices)', async (t) => {
  const { src, out, store, layer } = await roundTrip(t, { userXattrs: true });
  t.is(layer.mediaType, MediaTypes.ociLayerGzip);
  t.is(layer.size, await store.blobSize(layer.digest));
  t.is(await gunzipDigest(store, layer.digest), layer.diffID as string);
  const want = await describeTree(src, { skipXattrs: ['trusted.overlay.origin'] });
  t.deepEqual(await describeTree(out), want);
  t.true(want.some((l) => l.includes('security.capability=01000002ff')));
  t.true(want.some((l) => l.includes('user.note=')));
});

test('by default a layer keeps file capabilities and drops user.* xattrs, as Docker 20.10 builds and exports', async (t) => {
  const { src, out } = await roundTrip(t, {});
  const got = await describeTree(out);
  t.deepEqual(got, await describeTree(src, { skipXattrs: ['trusted.overlay.origin', 'user.note'] }));
  t.true(got.some((l) => l.includes('security.capability=01000002ff')));
  t.false(got.some((l) => l.includes('user.')));
});

test('GNU tar reads the layer: entries in order, numeric owners, long names, link entries', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(src);
  await makeFixture(src);
  const store = await Store.open(join(dir, 'store'));
  const layer = await writeLayer(store, src, { kind: 'rootfs', compression: 'none' });
  t.is(layer.mediaType, MediaTypes.ociLayer);
  t.is(layer.digest as string, layer.diffID as string);
  const blob = await readFile(store.blobPath(layer.digest));
  t.is(sha256Of(blob), layer.digest);
  t.is(layer.size, blob.length);
  const listing = await sh('tar', ['--numeric-owner', '-tvf', store.blobPath(layer.digest)]);
  const names = (await sh('tar', ['-tf', store.blobPath(layer.digest)])).trim().split('\n');
  t.is(names[0], 'bin/');
  t.true(names.indexOf('bin/') < names.indexOf('bin/abs'));
  t.true(names.includes(`${'d'.repeat(60)}/${'d'.repeat(60)}/${'f'.repeat(120)}`));
  t.true(names.includes('héllo wörld ☃'));
  t.regex(listing, /-rwsr-xr-x 0\/0 +\d+ .* bin\/tool/);
  t.regex(listing, /drwxrwxrwt 0\/0 .* tmp\//);
  t.regex(listing, /hrw-r--r-- 1000\/1000 .* home\/app\/data link to bin\/zz-data-link|hrw-r--r-- 1000\/1000 .* home\/app\/data-link link to home\/app\/data/);
  t.regex(listing, /crw-r--r-- 0\/0 +1,3 .* dev\/null/);
  t.regex(listing, /longlink -> t{150}/);
  t.notRegex(listing, /root/);
  // sorted depth-first: every entry's parent comes before it
  const seen = new Set<string>();
  for (const n of names) {
    const parent = n.replace(/\/$/, '').split('/').slice(0, -1).join('/');
    if (parent) t.true(seen.has(`${parent}/`), n);
    seen.add(n);
  }
});

test('determinism: same tree → same digests; newer mtimes clamped by sourceDateEpoch → same digests', async (t) => {
  const dir = await tempDir(t);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  await mkdir(a);
  await makeFixture(a);
  const store = await Store.open(join(dir, 'store'));
  const l1 = await writeLayer(store, a, { kind: 'rootfs' });
  const l2 = await writeLayer(store, a, { kind: 'rootfs' });
  t.is(l1.digest, l2.digest);
  t.is(l1.diffID, l2.diffID);
  // A copy made now has different mtimes (newer than the epoch) — clamped, identical.
  await mkdir(b);
  await makeFixture(b);
  await utimes(join(b, 'bin/tool'), 3_000_000, 3_000_000);
  const epoch = 500_000;
  const c1 = await writeLayer(store, a, { kind: 'rootfs', sourceDateEpoch: epoch });
  const c2 = await writeLayer(store, b, { kind: 'rootfs', sourceDateEpoch: epoch });
  t.is(c1.diffID, c2.diffID);
  t.is(c1.digest, c2.digest);
  t.not(c1.diffID, l1.diffID);
  // and an older mtime is kept, not raised
  const entries: Array<[string, number]> = [];
  for await (const e of readTar(layerTarStream(a, { kind: 'rootfs', sourceDateEpoch: 1_500_000 }))) entries.push([e.header.name, e.header.mtime]);
  t.deepEqual(entries.find(([n]) => n === 'bin/tool'), ['bin/tool', 1_000_000]);
  t.deepEqual(entries.find(([n]) => n === 'home/app'), ['home/app', 1_500_000]);
});

test('writeLayer leaves no temp files and honours an aborted signal', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'f'), 'x');
  const store = await Store.open(join(dir, 'store'));
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await t.throwsAsync(writeLayer(store, join(dir), { kind: 'rootfs', signal: ac.signal }));
  const { readdir } = await import('node:fs/promises');
  t.deepEqual(await readdir(store.tmpDir), []);
});

test('overlay upper dir from a real overlay mount → .wh. and .wh..wh..opq entries', async (t) => {
  const dir = await tempDir(t);
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(dir, n)) as [string, string, string, string];
  for (const d of [lower, upper, work, merged]) await mkdir(d);
  await writeFile(join(lower, 'a.txt'), 'a');
  await mkdir(join(lower, 'd'));
  await writeFile(join(lower, 'd/x'), 'x');
  await writeFile(join(lower, 'd/y'), 'y');
  await writeFile(join(lower, 'keep'), 'k');
  await writeFile(join(lower, 'b.txt'), 'b');
  await sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  try {
    await rm(join(merged, 'a.txt'));
    await rm(join(merged, 'b.txt'));
    await rm(join(merged, 'd'), { recursive: true });
    await mkdir(join(merged, 'd'));
    await writeFile(join(merged, 'd/z'), 'z');
    await writeFile(join(merged, 'new'), 'n');
  } finally {
    await sh('umount', [merged]);
  }
  const store = await Store.open(join(dir, 'store'));
  const layer = await writeLayer(store, upper, { kind: 'upper' });
  const names: string[] = [];
  const xattrs: string[] = [];
  for await (const e of readTar(layer.open().pipe(createGunzip()))) {
    names.push(`${e.header.type}:${e.header.name}`);
    xattrs.push(...(e.header.xattrs?.keys() ?? []));
  }
  t.deepEqual(names, ['file:.wh.a.txt', 'file:.wh.b.txt', 'directory:d', 'file:d/.wh..wh..opq', 'file:d/z', 'file:new']);
  t.deepEqual(xattrs.filter((x) => x.startsWith('trusted.')), []);
  // Applying it on a copy of the lower dir gives what the merged view showed.
  const view = join(dir, 'view');
  await cp(lower, view, { recursive: true });
  await applyLayer(layer.open(), view, { format: 'plain' });
  t.deepEqual((await describeTree(view, { mtimes: false })).map((l) => l.split(' ')[0]), ['d', 'd/z', 'keep', 'new']);
  t.is(await readFile(join(view, 'd/z'), 'utf8'), 'z');
});

test('chunk boundaries: files around 1 MiB, a 2.5 MB file with an xattr and 300 small files round-trip byte-exact; GNU tar extracts the same tree', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(join(src, 'small'), { recursive: true });
  const MiB = 1024 * 1024;
  // header (512) + content + padding must fit in one 1 MiB chunk, else the file is streamed.
  const sizes = [MiB - 1024, MiB - 1023, MiB - 512, MiB - 511, MiB, MiB + 1, 2_500_000];
  for (const [i, size] of sizes.entries()) {
    const b = Buffer.alloc(size);
    for (let j = 0; j < size; j += 997) b[j] = (i + j) & 0xff;
    await writeFile(join(src, `f${i}`), b);
    await chown(join(src, `f${i}`), 1000 + i, 2000 + i);
  }
  await setAttribute(join(src, 'f6'), 'user.big', 'yes');
  for (let i = 0; i < 300; i++) await writeFile(join(src, 'small', `s${String(i).padStart(3, '0')}`), Buffer.alloc(1000 + i * 17, i & 0xff));
  const tarFile = join(dir, 'layer.tar');
  const { createWriteStream, createReadStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  await pipeline(layerTarStream(src, { kind: 'rootfs', userXattrs: true }), createWriteStream(tarFile));
  const ours = join(dir, 'ours');
  const gnu = join(dir, 'gnu');
  await mkdir(ours);
  await mkdir(gnu);
  await applyLayer(createReadStream(tarFile), ours, { format: 'plain' });
  await sh('tar', ['--xattrs', '--xattrs-include=user.*', '-C', gnu, '-xf', tarFile]);
  const want = await describeTree(src);
  t.deepEqual(await describeTree(ours), want);
  t.deepEqual(await describeTree(gnu), want);
});

test('knownStats: entries the caller stat\'ed are not stat\'ed again, and a snapshot link gives the bytes a fresh walk gives', async (t) => {
  const root = await tempDir(t, 'known-stats');
  const snapshot = join(root, 'snapshot');
  const upper = join(root, 'upper');
  await mkdir(join(snapshot, 'app'), { recursive: true });
  await mkdir(join(upper, 'app'), { recursive: true });
  await writeFile(join(snapshot, 'app/a.txt'), 'earlier copy\n');
  await chmod(join(snapshot, 'app/a.txt'), 0o640);
  const { lstatSync } = await import('node:fs');
  // what a rebuilt COPY does: stat the earlier snapshot's file, then link it into the new upper dir
  const before = lstatSync(join(snapshot, 'app/a.txt'), { bigint: true });
  await link(join(snapshot, 'app/a.txt'), join(upper, 'app/a.txt'));
  await writeFile(join(upper, 'app/b.txt'), 'new\n');
  const tarOf = async (known?: Map<string, import('node:fs').BigIntStats>): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of layerTarStream(upper, { kind: 'upper', ...(known ? { knownStats: known } : {}) })) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const fresh = await tarOf();
  t.deepEqual(await tarOf(new Map([['app/a.txt', before]])), fresh, 'the link count and ctime the link changed make no difference');
  // the option is used: stats that say otherwise (mode 0600) show in the tar, though the file is 0640
  const other = { ...before, mode: (before.mode & ~0o777n) | 0o600n, isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false, isCharacterDevice: () => false, isBlockDevice: () => false, isFIFO: () => false };
  const told = await tarOf(new Map([['app/a.txt', other as unknown as import('node:fs').BigIntStats]]));
  const modes = new Map<string, number>();
  for await (const e of readTar(Readable.from([told]))) {
    modes.set(e.header.name, e.header.mode);
    for await (const _ of e.body) void _;
  }
  t.is(modes.get('app/a.txt'), 0o600);
  t.is(modes.get('app/b.txt'), 0o644 & ~process.umask());
});
