/** What `load` prints, as dockerd's `docker load` (checked against dockerd 20.10). */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, runMain as run, tempDir } from './helpers.js';

test('load of a tag that names another image prints dockerd\'s "renaming the old one" line before its Loaded line', async (t) => {
  const dir = await tempDir(t);
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  const tar = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 1 << 28 });
  const root = join(dir, 'store');
  const a = await run(root, ['import', '-c', 'CMD ["a"]', '-', 'lsload:1'], { stdin: tar, env: { SOURCE_DATE_EPOCH: '0' } });
  t.is(a.code, 0, a.stderr);
  t.is((await run(root, ['tag', 'lsload:1', 'lsload:2'])).code, 0);
  const archive = join(dir, 'a.tar');
  t.is((await run(root, ['save', '-o', archive, 'lsload:1', 'lsload:2'])).code, 0);
  const b = await run(root, ['import', '-c', 'CMD ["b"]', '-', 'lsload:1'], { stdin: tar, env: { SOURCE_DATE_EPOCH: '0' } });
  const loaded = await run(root, ['load', '-i', archive]);
  t.is(loaded.code, 0, loaded.stderr);
  t.is(loaded.stdout, `The image lsload:1 already exists, renaming the old one with ID ${b.stdout.trim()} to empty string\nLoaded image: lsload:1\nLoaded image: lsload:2\n`);
  t.is((await run(root, ['load', '-i', archive])).stdout, 'Loaded image: lsload:1\nLoaded image: lsload:2\n', 'nothing moved the second time');
});
