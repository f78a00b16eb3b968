import test from 'ava';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../src/index.js';
import { describeTree, tarOf, tempDir, type Entry } from './helpers.js';

/** target/ with sentinel/ beside it; `outsideUnchanged` checks nothing but target/ moved. */
async function arena(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t, 'apply-chroot');
  const target = join(dir, 'target');
  const sentinel = join(dir, 'sentinel');
  await mkdir(target);
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'file'), 'original');
  const before = await describeTree(sentinel);
  return {
    target,
    sentinel,
    outsideUnchanged: async () => {
      t.deepEqual(await describeTree(sentinel), before);
      t.deepEqual((await readdir(dir)).sort(), ['sentinel', 'target']);
    },
  };
}

// Docker 20.10 (checked against dockerd): ADD of such archives succeeds, ".." stopping at the destination
const landings: Array<[string, Entry[], string, string]> = [
  ['a leading "../" chain', [{ name: '../../../../tmp/x', content: 'a' }], 'tmp/x', 'a'],
  ['a ".." in the middle', [{ name: 'a/../../../sentinel/file', content: 'b' }], 'sentinel/file', 'b'],
  [
    'a symlink to ".." chain, written through',
    [
      { name: 'a', type: 'symlink', linkname: '..' },
      { name: 'a/b', type: 'symlink', linkname: '../..' },
      { name: 'a/b/tmp/y', content: 'c' },
    ],
    'tmp/y',
    'c',
  ],
  [
    'a symlink to an absolute existing directory, written through',
    [{ name: 'etc', type: 'directory' }, { name: 'evil', type: 'symlink', linkname: '/etc' }, { name: 'evil/passwd', content: 'd' }],
    'etc/passwd',
    'd',
  ],
  [
    'a hard link whose target climbs out',
    [{ name: 'x', content: 'e' }, { name: 'h', type: 'link', linkname: '../../x' }],
    'h',
    'e',
  ],
];

for (const [name, entries, path, content] of landings) {
  test(`chroot paths: ${name} lands inside the target`, async (t) => {
    const a = await arena(t);
    await applyLayer(Readable.from([await tarOf(entries)]), a.target, { format: 'plain', paths: 'chroot' });
    t.is(await readFile(join(a.target, path), 'utf8'), content);
    await a.outsideUnchanged();
  });
}

// Docker 20.10: "open /evil/passwd: no such file or directory", "link /etc/shadow /h: no such file or directory"
const refusals: Array<[string, Entry[], RegExp]> = [
  [
    'a write through a dangling absolute symlink',
    [{ name: 'evil', type: 'symlink', linkname: '/etc' }, { name: 'evil/passwd', content: 'x' }],
    /"evil\/passwd" goes through a symlink to "\/etc", which does not exist/,
  ],
  [
    'a write through a symlink replacing a directory, pointing at a missing one',
    [{ name: 'bin', type: 'directory' }, { name: 'bin', type: 'symlink', linkname: '/tmp/gone' }, { name: 'bin/owned', content: 'x' }],
    /"bin\/owned" goes through a symlink to "\/tmp", which does not exist/,
  ],
  ['a hard link to a missing absolute path', [{ name: 'h', type: 'link', linkname: '/etc/shadow' }], /"h" refers to "etc", which does not exist/],
];

for (const [name, entries, message] of refusals) {
  test(`chroot paths: ${name} is refused as Docker refuses it, nothing outside changes`, async (t) => {
    const a = await arena(t);
    const err = await t.throwsAsync(applyLayer(Readable.from([await tarOf(entries)]), a.target, { format: 'plain', paths: 'chroot' }), {
      code: 'E_CORRUPT_LAYER',
      message,
    } as never);
    t.truthy(err);
    await a.outsideUnchanged();
  });
}

test('chroot paths: a symlink pointing outside is kept as a symlink, its target never read or written', async (t) => {
  const a = await arena(t);
  await applyLayer(Readable.from([await tarOf([{ name: 'out', type: 'symlink', linkname: a.sentinel + '/file' }, { name: 'out', content: 'replaced' }])]), a.target, {
    format: 'plain',
    paths: 'chroot',
  });
  t.is(await readFile(join(a.target, 'out'), 'utf8'), 'replaced');
  await a.outsideUnchanged();
});

test('strict paths (the default) still refuse ".."', async (t) => {
  const a = await arena(t);
  await t.throwsAsync(applyLayer(Readable.from([await tarOf([{ name: '../x', content: 'x' }])]), a.target, { format: 'plain' }), { code: 'E_UNSAFE_PATH' } as never);
  t.deepEqual(await readdir(a.target), []);
  await a.outsideUnchanged();
});
