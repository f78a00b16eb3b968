/**
 * The rootfs mount of a step, through mount(2)/umount2(2) (@tsbuild/sys) and through mount(8)/umount(8)
 * (where the addon is not built). Deep images: the overlay mount takes more lower dirs than fit in
 * the kernel's one-page mount options when written as snapshot paths (about 50); Docker's overlay2
 * handles up to 125. FROM scratch (no lower dir): the upper dir is bind-mounted.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import * as path from 'node:path';
import { mountRootfs } from '../src/sandbox/index.js';

/** Whether `dir` is a mount point now (/proc/self/mounts escapes spaces; test paths have none). */
const mounted = (dir: string): boolean => mountOptions(dir) !== undefined;
/** The options of the mount at `dir`, from /proc/self/mounts. */
const mountOptions = (dir: string): string[] | undefined =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[1] === dir)
    ?.split(' ')[3]
    ?.split(',');
/** overlayfs takes `volatile` from Linux 5.10. */
const [major = 0, minor = 0] = release().split('.').map(Number);
const hasVolatile = major > 5 || (major === 5 && minor >= 10);

for (const [how, sys] of [['mount(2)', undefined], ['mount(8)', null]] as const) {
  for (const layers of [0, 3, 130]) {
    test(`${how}: a rootfs of ${layers} layers mounts, top layer first, and leaves no helper links or mount behind`, async (t) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-overlay-layers-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      const lowers: string[] = [];
      for (let i = 0; i < layers; i++) {
        // paths as long as the store's snapshot paths (64 hex digits)
        const d = path.join(dir, 'snapshots', `${String(i).padStart(4, '0')}${'0'.repeat(60)}`);
        await mkdir(d, { recursive: true });
        await writeFile(path.join(d, `f${i}`), `${i}\n`);
        await writeFile(path.join(d, 'shared'), `${i}\n`);
        lowers.push(d);
      }
      const step = path.join(dir, 'tmp', 'step');
      const rootfs = await mountRootfs({ lowerdirs: lowers, upperdir: path.join(step, 'upper'), workdir: path.join(step, 'work'), target: path.join(step, 'root'), sys });
      try {
        t.true(mounted(rootfs.path));
        // unmounting a volatile overlay does not sync the store's whole filesystem
        // (Linux 6.x lists it as fsync=volatile)
        if (layers > 0) t.is(mountOptions(rootfs.path)?.some((o) => o === 'volatile' || o === 'fsync=volatile'), hasVolatile);
        const names = await readdir(rootfs.path);
        t.is(names.length, layers === 0 ? 0 : layers + 1);
        if (layers > 0) {
          t.is(await readFile(path.join(rootfs.path, 'shared'), 'utf8'), `${layers - 1}\n`, 'the last (top) layer wins');
          t.is(await readFile(path.join(rootfs.path, 'f0'), 'utf8'), '0\n');
          // a chmod copies the data up too (metacopy off): the upper dir is a plain diff
          await chmod(path.join(rootfs.path, 'f0'), 0o600);
        }
        await writeFile(path.join(rootfs.path, 'new'), 'n\n');
      } finally {
        await rootfs.unmount();
      }
      t.false(mounted(rootfs.path));
      await rootfs.unmount(); // idempotent
      t.deepEqual((await readdir(path.join(step, 'upper'))).sort(), layers === 0 ? ['new'] : ['f0', 'new']);
      if (layers > 0) t.is(await readFile(path.join(step, 'upper', 'f0'), 'utf8'), '0\n');
      t.deepEqual((await readdir(step)).sort(), layers === 0 ? ['root', 'upper'] : ['root', 'upper', 'work']);
    });
  }

  test(`${how}: a rootfs still in use (an open file) is detached lazily, and gone from the mount table`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-overlay-busy-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const lower = path.join(dir, 'lower');
    await mkdir(lower);
    await writeFile(path.join(lower, 'f'), 'x');
    const rootfs = await mountRootfs({ lowerdirs: [lower], upperdir: path.join(dir, 'upper'), workdir: path.join(dir, 'work'), target: path.join(dir, 'root'), sys });
    const handle = await open(path.join(rootfs.path, 'f'), 'r');
    try {
      await rootfs.unmount();
      t.false(mounted(rootfs.path));
      t.is((await handle.readFile('utf8')), 'x', 'the open file still reads');
    } finally {
      await handle.close();
    }
  });

  test(`${how}: a mount that fails names the mount point and leaves nothing mounted`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-overlay-fail-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const target = path.join(dir, 'root');
    const err = await t.throwsAsync(mountRootfs({ lowerdirs: [path.join(dir, 'no-such-lower')], upperdir: path.join(dir, 'upper'), workdir: path.join(dir, 'work'), target, sys }));
    t.regex(err!.message, new RegExp(`mounting the rootfs at ${target}`));
    t.false(mounted(target));
  });
}
