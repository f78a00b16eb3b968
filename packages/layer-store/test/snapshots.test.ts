import test from 'ava';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIDOf, Store, writeLayer } from '../src/index.js';
import { sh, tempDir } from './helpers.js';

async function twoLayers(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  const store = await Store.open(join(dir, 'store'));
  const l1dir = join(dir, 'l1');
  await mkdir(join(l1dir, 'etc'), { recursive: true });
  await writeFile(join(l1dir, 'etc/a'), 'a');
  await writeFile(join(l1dir, 'etc/b'), 'b');
  // incompressible and bigger than any stream chunk: the blob hash must see every byte
  await writeFile(join(l1dir, 'big'), randomBytes(3 << 20));
  const l1 = await writeLayer(store, l1dir, { kind: 'rootfs', sourceDateEpoch: 0 });
  const l2dir = join(dir, 'l2');
  await mkdir(join(l2dir, 'etc'), { recursive: true });
  await writeFile(join(l2dir, 'etc/.wh.a'), '');
  await writeFile(join(l2dir, 'etc/c'), 'c');
  const l2 = await writeLayer(store, l2dir, { kind: 'rootfs', sourceDateEpoch: 0 });
  return { dir, store, l1, l2 };
}

test('prepareSnapshots unpacks each layer once under snapshots/<chainID>, bottom-first', async (t) => {
  const { store, l1, l2 } = await twoLayers(t);
  const dirs = await store.prepareSnapshots([l1, l2]);
  t.deepEqual(dirs, [store.snapshotDirFor(chainIDOf([l1.diffID])), store.snapshotDirFor(chainIDOf([l1.diffID, l2.diffID]))]);
  t.deepEqual((await readdir(join(dirs[0]!, 'etc'))).sort(), ['a', 'b']);
  t.is((await lstat(join(dirs[0]!, 'big'))).size, 3 << 20);
  const wh = await lstat(join(dirs[1]!, 'etc/a'));
  t.true(wh.isCharacterDevice(), 'overlay-format whiteout');
  t.is((await lstat(dirs[0]!)).mode & 0o777, 0o755);
  // Already there: reused, not unpacked again.
  await writeFile(join(dirs[0]!, 'marker'), 'm');
  t.deepEqual(await store.prepareSnapshots([l1, l2]), dirs);
  t.is(await readFile(join(dirs[0]!, 'marker'), 'utf8'), 'm');
  t.deepEqual(await readdir(store.tmpDir), []);
});

test('concurrent prepareSnapshots on one store do not collide', async (t) => {
  const { store, l1, l2 } = await twoLayers(t);
  const [a, b] = await Promise.all([store.prepareSnapshots([l1, l2]), store.prepareSnapshots([l1, l2])]);
  t.deepEqual(a, b);
  t.deepEqual((await readdir(join(a[1]!, 'etc'))).sort(), ['a', 'c']);
  t.deepEqual(await readdir(store.tmpDir), []);
});

test('snapshots work as overlay lower dirs', async (t) => {
  const { dir, store, l1, l2 } = await twoLayers(t);
  const lowers = await store.prepareSnapshots([l1, l2]);
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((n) => join(dir, n)) as [string, string, string];
  for (const d of [upper, work, merged]) await mkdir(d);
  await sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...lowers].reverse().join(':')},upperdir=${upper},workdir=${work}`, merged]);
  try {
    t.deepEqual((await readdir(join(merged, 'etc'))).sort(), ['b', 'c']);
  } finally {
    await sh('umount', [merged]);
  }
});

test('a corrupt or substituted layer blob leaves no snapshot', async (t) => {
  const { store, l1, l2 } = await twoLayers(t);
  const blob = store.blobPath(l1.digest);
  const bytes = await readFile(blob);
  await rm(blob);
  await writeFile(blob, bytes.subarray(0, bytes.length - 4));
  await t.throwsAsync(store.prepareSnapshots([l1]), { code: 'E_CORRUPT_LAYER' } as never);
  await t.throwsAsync(lstat(store.snapshotDirFor(chainIDOf([l1.diffID]))));
  // a valid gzip tar with other content under l1's name: the digest check catches it
  await rm(blob);
  await writeFile(blob, await readFile(store.blobPath(l2.digest)));
  await t.throwsAsync(store.prepareSnapshots([l1]), { code: 'E_DIGEST_MISMATCH' } as never);
  await t.throwsAsync(lstat(store.snapshotDirFor(chainIDOf([l1.diffID]))));
  t.deepEqual(await readdir(store.tmpDir), []);
});
