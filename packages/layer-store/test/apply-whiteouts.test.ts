import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../src/index.js';
import { encodeHeader, padding, trailer, type TarHeader } from '../src/tar.js';
import { tempDir } from './helpers.js';

function layer(entries: Array<Partial<TarHeader> & { name: string; content?: string }>): Readable {
  const parts: Buffer[] = [];
  for (const { content, ...e } of entries) {
    const body = Buffer.from(content ?? '');
    parts.push(encodeHeader({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_000_000_000, ...e, size: body.length }), body, padding(body.length));
  }
  return Readable.from([Buffer.concat([...parts, trailer()])]);
}

test('overlay whiteouts: every one a 0/0 char device with its own owner, even when the first is replaced later', async (t) => {
  const dir = await tempDir(t);
  const stats = await applyLayer(
    layer([
      { name: '.wh.a' },
      { name: '.wh.b' },
      { name: '.wh.c', uid: 1000, gid: 1000 },
      { name: 'a', content: 'now a file' }, // replaces the first whiteout made for 0:0
      { name: '.wh.d' },
      { name: 'sub/.wh.e', uid: 1000, gid: 1000 },
      { name: '.wh.f' },
    ]),
    dir,
    { format: 'overlay' },
  );
  t.is(stats.whiteouts, 6);
  t.is(await readFile(join(dir, 'a'), 'utf8'), 'now a file');
  const owners: Record<string, [number, number]> = { b: [0, 0], c: [1000, 1000], d: [0, 0], 'sub/e': [1000, 1000], f: [0, 0] };
  for (const [name, owner] of Object.entries(owners)) {
    const st = await lstat(join(dir, name));
    t.true(st.isCharacterDevice(), name);
    t.is(st.rdev, 0, name);
    t.deepEqual([st.uid, st.gid], owner, name);
  }
  t.is((await lstat(join(dir, 'a'))).nlink, 1, 'the file that replaced a whiteout shares no inode with later whiteouts');
});

test('many overlay whiteouts made as one layer hide every lower file in a real overlay mount', async (t) => {
  const dir = await tempDir(t);
  const lower = join(dir, 'lower');
  const upper = join(dir, 'upper');
  const merged = join(dir, 'merged');
  for (const d of [lower, upper, merged]) await mkdir(d);
  const n = 300;
  const files = Array.from({ length: n }, (_, i) => ({ name: `d${i % 3}/f${i}`, content: String(i) }));
  await applyLayer(layer(files), lower, { format: 'overlay' });
  // every other file removed, and one whole directory through an opaque marker
  const wh = files.filter((_, i) => i % 2 === 0 && i % 3 !== 2).map((f) => ({ name: f.name.replace(/f(\d+)$/, '.wh.f$1') }));
  await applyLayer(layer([...wh, { name: 'd2', type: 'directory', mode: 0o755 }, { name: 'd2/.wh..wh..opq' }, { name: 'd2/new', content: 'n' }]), upper, { format: 'overlay' });
  // two lower dirs, read-only (no upper): the layers as a build's RUN step sees them
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${upper}:${lower}`, merged]);
  t.teardown(() => execFileSync('umount', [merged]));
  const expected = [
    ...files.filter((_, i) => i % 3 !== 2 && i % 2 === 1).map((f) => f.name),
    'd2/new',
  ].sort();
  const seen: string[] = [];
  for (const d of await readdir(merged)) for (const f of await readdir(join(merged, d))) seen.push(`${d}/${f}`);
  t.deepEqual(seen.sort(), expected);
});
