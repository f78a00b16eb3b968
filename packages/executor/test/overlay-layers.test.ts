/**
 * Deep images: the overlay mount of a step takes more lower dirs than fit in the kernel's one-page
 * mount options when written as snapshot paths (about 50); Docker's overlay2 handles up to 125.
 */
import test from 'ava';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mountRootfs } from '../src/sandbox/index.js';

for (const layers of [3, 130]) {
  test(`a rootfs of ${layers} layers mounts, top layer first, and leaves no helper links behind`, async (t) => {
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
    const rootfs = await mountRootfs({ lowerdirs: lowers, upperdir: path.join(step, 'upper'), workdir: path.join(step, 'work'), target: path.join(step, 'root') });
    try {
      const names = await readdir(rootfs.path);
      t.is(names.length, layers + 1);
      t.is(await readFile(path.join(rootfs.path, 'shared'), 'utf8'), `${layers - 1}\n`, 'the last (top) layer wins');
      t.is(await readFile(path.join(rootfs.path, 'f0'), 'utf8'), '0\n');
      await writeFile(path.join(rootfs.path, 'new'), 'n\n');
      // a chmod copies the data up too (metacopy off): the upper dir is a plain diff
      await chmod(path.join(rootfs.path, 'f0'), 0o600);
    } finally {
      await rootfs.unmount();
    }
    t.deepEqual((await readdir(path.join(step, 'upper'))).sort(), ['f0', 'new']);
    t.is(await readFile(path.join(step, 'upper', 'f0'), 'utf8'), '0\n');
    t.deepEqual((await readdir(step)).sort(), ['root', 'upper', 'work']);
  });
}
