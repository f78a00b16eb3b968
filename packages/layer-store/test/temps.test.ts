import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { mountsUnder, reapStaleTemps } from '../src/index.js';
import { ownerGone, ownerTag } from '../src/temps.js';
import { tempStore } from './archive-fixtures.js';

/** The pid of a process that has exited (and been waited for). */
function deadPid(): number {
  return spawnSync('true').pid!;
}
const myStart = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19]!;

const owners: Array<[string, string, boolean | undefined]> = [
  ['this process', `run-${ownerTag()}-Ab12Cd`, false],
  ['this process, a temp file', `blob-${process.pid}.${myStart}-0123456789ab`, false],
  ['a dead process', `run-${deadPid()}.12345-Ab12Cd`, true],
  ['a live pid started at another time (reused)', `run-${process.pid}.${Number(myStart) + 1}-Ab12Cd`, true],
  ['an old temp file name of a live pid', `layer-${process.pid}-0123456789ab`, false],
  ['an old temp file name of a dead pid', `layer-${deadPid()}-0123456789ab`, true],
  ['no owner in the name', 'run-Ab12Cd', undefined],
];
for (const [what, name, gone] of owners) {
  test(`ownerGone: ${what}`, (t) => {
    t.is(ownerGone(name), gone);
  });
}

test('reapStaleTemps removes what dead processes left, keeps live and unknown entries, and never removes through a mount', async (t) => {
  const store = await tempStore(t);
  const live = await store.makeTempDir('run');
  t.true(basename(live).includes(ownerTag()), 'temp dirs carry the owner tag');
  const dead = join(store.tmpDir, `run-${deadPid()}.1-Xy12Zw`);
  await mkdir(join(dead, 'upper'), { recursive: true });
  await writeFile(join(dead, 'upper/f'), 'x');
  const deadFile = join(store.tmpDir, `blob-${deadPid()}.1-0123456789ab`);
  await writeFile(deadFile, 'half a blob');
  const unknown = join(store.tmpDir, 'run-Ab12Cd');
  await mkdir(unknown);
  const mounted = join(store.tmpDir, `run-${deadPid()}.1-Mn34Op`);
  await mkdir(join(mounted, 'rootfs'), { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'none', join(mounted, 'rootfs')]);
  t.teardown(() => void spawnSync('umount', ['--lazy', join(mounted, 'rootfs')]));
  await writeFile(join(mounted, 'rootfs/kept'), 'k');

  t.deepEqual((await reapStaleTemps(store)).sort(), [dead, deadFile].sort());
  t.true(existsSync(live) && existsSync(unknown));
  t.true(existsSync(join(mounted, 'rootfs/kept')), 'a dir with a mount below it stays when nothing released it');

  const released: string[] = [];
  const removed = await reapStaleTemps(store, {
    release: async (d) => {
      released.push(d);
      for (const mp of mountsUnder(d)) execFileSync('umount', [mp]);
    },
  });
  t.deepEqual(released, [mounted]);
  t.deepEqual(removed, [mounted]);
  t.false(existsSync(mounted));
});
