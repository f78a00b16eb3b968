/**
 * `import` keeps its unpacked tree as the layer's snapshot (the first build on the base does not
 * unpack it again). The invariant: the kept snapshot is exactly what unpacking the layer gives.
 */
import test from 'ava';
import { createReadStream } from 'node:fs';
import { chmod, link, lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { getAttribute, setAttribute } from 'fs-xattr';
import tar from 'tar-stream';
import { applyLayer, chainIDsOf, importRootfs, Store } from '../src/index.js';
import { describeTree, sh, tempDir } from './helpers.js';

test('import keeps the unpacked tree as the snapshot, equal to unpacking the layer (links, modes, xattrs, devices, clamped mtimes)', async (t) => {
  const dir = await tempDir(t, 'import-snap');
  const src = join(dir, 'src');
  await mkdir(join(src, 'etc/sub'), { recursive: true });
  await writeFile(join(src, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(src, 'etc/sub/tool'), '#!/bin/sh\n');
  await chmod(join(src, 'etc/sub/tool'), 0o4755);
  await link(join(src, 'etc/sub/tool'), join(src, 'etc/hard'));
  await symlink('sub/tool', join(src, 'etc/ln'));
  await setAttribute(join(src, 'etc/passwd'), 'user.note', 'kept');
  await sh('mkfifo', [join(src, 'etc/fifo')]);
  await sh('mknod', [join(src, 'etc/null'), 'c', '1', '3']);
  await sh('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', src, '-cf', join(dir, 'rootfs.tar'), '.']);
  const store = await Store.open(join(dir, 'store'));
  const epoch = 1700000000;
  const { id } = await importRootfs(store, createReadStream(join(dir, 'rootfs.tar')), { ref: 'snap:1', sourceDateEpoch: epoch });
  const image = await store.resolveImage(id);
  const chain = chainIDsOf(image.config.rootfs.diff_ids)[0]!;
  const kept = store.snapshotDirFor(chain);
  await t.notThrowsAsync(lstat(kept), 'import left the snapshot in place');
  const unpacked = join(dir, 'unpacked');
  await mkdir(unpacked);
  await applyLayer(store.openBlob(image.manifest.layers[0]!.digest), unpacked, { format: 'overlay' });
  t.deepEqual(await describeTree(kept), await describeTree(unpacked));
  t.is((await lstat(kept)).mode & 0o7777, 0o755);
  // the build path finds it: prepareSnapshots returns the kept directory
  t.deepEqual(await store.prepareSnapshots([{ digest: image.manifest.layers[0]!.digest, diffID: image.config.rootfs.diff_ids[0]! }]), [kept]);
});

test('overlay attributes in a tar (trusted.overlay.*) are never applied, so a snapshot cannot carry them', async (t) => {
  const dir = await tempDir(t, 'import-ovl');
  const pack = tar.pack();
  pack.entry({ name: 'd/', type: 'directory', mode: 0o755, pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.user.ok': 'v' } });
  pack.entry({ name: 'd/f', mode: 0o644, pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }, 'x\n');
  pack.finalize();
  const store = await Store.open(join(dir, 'store'));
  const { id } = await importRootfs(store, Readable.from(pack), { ref: 'ovl:1' });
  const image = await store.resolveImage(id);
  const kept = store.snapshotDirFor(chainIDsOf(image.config.rootfs.diff_ids)[0]!);
  await t.throwsAsync(getAttribute(join(kept, 'd'), 'trusted.overlay.opaque'), { code: 'ENODATA' });
  await t.throwsAsync(getAttribute(join(kept, 'd/f'), 'trusted.overlay.redirect'), { code: 'ENODATA' });
  t.is((await getAttribute(join(kept, 'd'), 'user.ok')).toString(), 'v');
});
