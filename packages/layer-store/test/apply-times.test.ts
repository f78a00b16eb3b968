import test from 'ava';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyLayer } from '../src/index.js';
import { sh, tempDir } from './helpers.js';

// Checked against dockerd 20.10 (ADD of such a tar, h2/a6): system.Chtimes gives a file or a
// directory dated before 1970 the time 0; Node's utimes took the negative time for "now".
test('entries dated before 1970 get the time 0, not the time of the extraction', async (t) => {
  const dir = await tempDir(t, 'apply-times');
  const src = join(dir, 'src');
  const target = join(dir, 'target');
  await mkdir(join(src, 'oldd'), { recursive: true });
  await mkdir(target);
  await writeFile(join(src, 'oldf'), 'x\n');
  await writeFile(join(src, 'newf'), 'y\n');
  await sh('ln', ['-s', 'oldf', join(src, 'oldl')]);
  await sh('touch', ['-h', '-d', '@-315550085', join(src, 'oldf'), join(src, 'oldd'), join(src, 'oldl')]);
  await sh('touch', ['-d', '@1000000000', join(src, 'newf')]);
  await sh('tar', ['--format=pax', '-C', src, '-cf', join(dir, 'l.tar'), 'oldd', 'oldf', 'oldl', 'newf']);
  await applyLayer(createReadStream(join(dir, 'l.tar')), target, { format: 'plain' });
  for (const p of ['oldd', 'oldf', 'oldl']) t.is((await lstat(join(target, p))).mtimeMs, 0, p);
  t.is((await lstat(join(target, 'newf'))).mtimeMs, 1e12, 'a time after 1970 is kept');
});
