/**
 * The tar writer's walk lstats names in batches through the `@tsbuild/sys` addon (lstatBatch);
 * without the addon it calls Node's lstatSync and fs-xattr per name. Both must give the same tar
 * bytes (they are the diffID) and the same errors.
 */
import test from 'ava';
import { chmod, chown, lchown, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { lstatSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setAttribute } from 'fs-xattr';
import { fastFs } from '@tsbuild/sys';
import { layerTarStream, Store, writeLayer, type LayerTarOptions } from '../src/index.js';
import { layerTarStreamNodeFs } from '../src/layer-tar.js';
import { StoreError } from '../src/errors.js';
import { sh, tempDir } from './helpers.js';

async function bytes(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Every kind of entry, xattrs kept and dropped, a directory of 600 names (several batches), times before 1970 with fractions. */
async function fixture(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await writeFile(join(root, 'bin/tool'), '#!/bin/sh\n');
  await chmod(join(root, 'bin/tool'), 0o4755);
  await writeFile(join(root, 'bin/cap'), 'cap');
  await setAttribute(join(root, 'bin/cap'), 'security.capability', Buffer.from('0100000200040000000000000000000000000000', 'hex'));
  await setAttribute(join(root, 'bin/cap'), 'user.note', 'hello');
  await writeFile(join(root, 'bin/user-only'), 'u');
  await setAttribute(join(root, 'bin/user-only'), 'user.note', 'x');
  await symlink('tool', join(root, 'bin/rel'));
  await lchown(join(root, 'bin/rel'), 7, 8);
  await writeFile(join(root, 'data'), Buffer.alloc(70_000, 7));
  await chown(join(root, 'data'), 1000, 1000);
  await link(join(root, 'data'), join(root, 'bin/data-link'));
  await mkdir(join(root, 'dev'));
  await sh('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
  await sh('mknod', [join(root, 'dev/sda'), 'b', '8', '0']);
  await sh('mkfifo', [join(root, 'dev/fifo')]);
  await mkdir(join(root, 'many'));
  for (let i = 0; i < 600; i++) await writeFile(join(root, 'many', `f${i}`), i % 7 === 0 ? '' : `file ${i}\n`);
  await mkdir(join(root, 'many', 'sub'));
  await writeFile(join(root, 'many', 'sub', 'x'), 'x');
  await writeFile(join(root, 'old'), 'old');
  await utimes(join(root, 'old'), -1.5, -1.5);
  await writeFile(join(root, 'fraction'), 'f');
  await utimes(join(root, 'fraction'), 1_600_000_000.999, 1_600_000_000.999);
  await writeFile(join(root, `n${'é'.repeat(70)}`), 'long utf-8 name');
}

test('the addon is built here, so the comparisons below compare two paths', (t) => {
  t.truthy(fastFs());
});

const cases: Array<[string, LayerTarOptions]> = [
  ['rootfs', { kind: 'rootfs' }],
  ['rootfs, user xattrs', { kind: 'rootfs', userXattrs: true }],
  ['rootfs, noFileXattrs, sourceDateEpoch', { kind: 'rootfs', noFileXattrs: true, sourceDateEpoch: 1_500_000_000 }],
  ['upper', { kind: 'upper' }],
];
for (const [name, opts] of cases) {
  test(`batched lstat and Node's lstat give the same tar: ${name}`, async (t) => {
    const dir = await tempDir(t, 'tar-native-');
    await fixture(dir);
    const native = await bytes(layerTarStream(dir, opts));
    const node = await bytes(layerTarStreamNodeFs(dir, opts));
    t.true(native.length > 600 * 512, `${native.length} bytes`);
    t.true(native.equals(node));
  });
}

test('upper dir: whiteouts (0/0 char devices) and opaque directories come out the same both ways', async (t) => {
  const dir = await tempDir(t, 'tar-native-upper-');
  await mkdir(join(dir, 'etc/opaque'), { recursive: true });
  await setAttribute(join(dir, 'etc/opaque'), 'trusted.overlay.opaque', 'y');
  await writeFile(join(dir, 'etc/opaque/kept'), 'k');
  await sh('mknod', [join(dir, 'etc/gone'), 'c', '0', '0']);
  await sh('mknod', [join(dir, 'gone-too'), 'c', '0', '0']);
  const native = await bytes(layerTarStream(dir, { kind: 'upper' }));
  t.true(native.includes(Buffer.from('etc/.wh.gone')) && native.includes(Buffer.from('etc/opaque/.wh..wh..opq')));
  t.true(native.equals(await bytes(layerTarStreamNodeFs(dir, { kind: 'upper' }))));
});

test('knownStats: entries the caller stat\'ed are taken from it on the batched path too', async (t) => {
  const dir = await tempDir(t, 'tar-native-known-');
  await fixture(dir);
  // a stat that differs from the file's own (mode, owner; same size): the tar shows what the caller told
  await chmod(join(dir, 'many/f4'), 0o600);
  await chown(join(dir, 'many/f4'), 5, 5);
  const other = lstatSync(join(dir, 'many/f4'), { bigint: true }) as BigIntStats;
  const known = new Map([['many/f3', other]]);
  const native = await bytes(layerTarStream(dir, { kind: 'rootfs', knownStats: known }));
  t.true(native.equals(await bytes(layerTarStreamNodeFs(dir, { kind: 'rootfs', knownStats: known }))));
  t.false(native.equals(await bytes(layerTarStream(dir, { kind: 'rootfs' }))), 'the told stat is used');
});

test('a name that is not valid UTF-8 fails the same way on both paths', async (t) => {
  const dir = await tempDir(t, 'tar-native-bad-');
  await writeFile(Buffer.concat([Buffer.from(join(dir, 'bad')), Buffer.from([0xff]), Buffer.from('name')]), 'x');
  for (const s of [layerTarStream, layerTarStreamNodeFs]) {
    const err = await t.throwsAsync(bytes(s(dir, { kind: 'rootfs' })));
    t.true(err instanceof StoreError);
    t.is((err as StoreError).code, 'E_NAME_ENCODING');
  }
});

test('a file longer or shorter than its lstat said fails the same way on both paths (one native read, or open/read/close)', async (t) => {
  const dir = await tempDir(t, 'tar-native-size-');
  await writeFile(join(dir, 'a'), 'x'.repeat(100));
  const st = lstatSync(join(dir, 'a'), { bigint: true }) as BigIntStats;
  // the stat told is what the walk believes: a size that is no longer the file's
  for (const [size, message] of [
    [99n, /file .*\/a changed size while it was being archived \(99 → 100\+ bytes\)/],
    [101n, /file .*\/a changed size while it was being archived \(101 → 100 bytes\)/],
  ] as const) {
    const told = new Map([['a', Object.assign(Object.create(Object.getPrototypeOf(st) as object) as BigIntStats, st, { size })]]);
    for (const s of [layerTarStream, layerTarStreamNodeFs]) {
      const err = await t.throwsAsync(bytes(s(dir, { kind: 'rootfs', knownStats: told })));
      t.true(err instanceof StoreError, String(err));
      t.is((err as StoreError).code, 'E_FILE_CHANGED');
      t.regex(err!.message, message);
    }
  }
});

test('writeLayer, whose file contents are read on the thread pool, gives the stream\'s tar and fails alike on a file that changed size', async (t) => {
  const dir = await tempDir(t, 'tar-native-pool-');
  const src = join(dir, 'src');
  await mkdir(src);
  await fixture(src);
  await writeFile(join(src, 'big'), Buffer.alloc(3 * 1024 * 1024 + 17, 3)); // spans blocks
  const store = await Store.open(join(dir, 'store'));
  const layer = await writeLayer(store, src, { kind: 'rootfs', compression: 'none' });
  const { createHash } = await import('node:crypto');
  t.is(layer.diffID as string, `sha256:${createHash('sha256').update(await bytes(layerTarStream(src, { kind: 'rootfs' }))).digest('hex')}`);
  const st = lstatSync(join(src, 'big'), { bigint: true }) as BigIntStats;
  for (const [size, message] of [
    [st.size - 1n, /changed size while it was being archived \(3145744 → 3145745\+ bytes\)/],
    [st.size + 1n, /changed size while it was being archived \(3145746 → 3145745 bytes\)/],
  ] as const) {
    const told = new Map([['big', Object.assign(Object.create(Object.getPrototypeOf(st) as object) as BigIntStats, st, { size })]]);
    const err = await t.throwsAsync(writeLayer(store, src, { kind: 'rootfs', knownStats: told }));
    t.is((err as StoreError).code, 'E_FILE_CHANGED', String(err));
    t.regex(err!.message, message);
  }
});
