import test from 'ava';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { getAttribute } from 'fs-xattr';
import { applyLayer } from '../src/index.js';
import { describeTree, sh, tarOf, tempDir, type Entry } from './helpers.js';

/** A target dir with a sentinel dir beside it; `unchanged()` checks nothing outside the target moved. */
async function arena(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  const target = join(dir, 'target');
  const sentinel = join(dir, 'sentinel');
  await mkdir(target);
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'file'), 'original');
  const before = await describeTree(dir.replace(/\/[^/]+$/, '') === dir ? dir : sentinel);
  const outside = async () => (await readdir(dir)).sort();
  return {
    dir,
    target,
    sentinel,
    unchanged: async () => {
      t.deepEqual(await describeTree(sentinel), before);
      t.deepEqual(await outside(), ['sentinel', 'target']);
    },
  };
}

const hostile: Array<[string, Entry[], RegExp, string?]> = [
  ['a ".." path', [{ name: '../evil', content: 'x' }], /"\.\.\/evil" contains a "\.\." component/],
  ['a ".." in the middle', [{ name: 'a/../../sentinel/file', content: 'x' }], /contains a "\.\." component/],
  [
    'a path through a symlink that climbs out',
    [{ name: 'link', type: 'symlink', linkname: '../sentinel' }, { name: 'link/pwned', content: 'x' }],
    /"link\/pwned" resolves through a symlink to outside the target/,
  ],
  [
    'a path through a chain of symlinks that climbs out',
    [
      { name: 'a', type: 'symlink', linkname: 'b/../..' },
      { name: 'b', type: 'directory' },
      { name: 'a/sentinel/file', content: 'x' },
    ],
    /"a\/sentinel\/file" resolves through a symlink to outside/,
  ],
  ['a hard link to outside', [{ name: 'hl', type: 'link', linkname: '../sentinel/file' }], /"hl" contains a "\.\." component/],
  [
    'a hard link through a symlink to outside',
    [{ name: 'up', type: 'symlink', linkname: '..' }, { name: 'hl', type: 'link', linkname: 'up/sentinel/file' }],
    /"hl" resolves through a symlink to outside/,
  ],
  [
    'a hard link through a symlink whose ".." sits behind a missing directory',
    [{ name: 'l', type: 'symlink', linkname: 'missing/../..' }, { name: 'hl', type: 'link', linkname: 'l/sentinel/file' }],
    /"hl" refers to "missing", which does not exist/,
    'E_CORRUPT_LAYER',
  ],
  ['a whiteout pointing out', [{ name: '../.wh.sentinel', content: '' }], /contains a "\.\." component/],
  [
    'a whiteout through a symlink',
    [{ name: 'up', type: 'symlink', linkname: '../sentinel' }, { name: 'up/.wh.file', content: '' }],
    /"up\/\.wh\.file" resolves through a symlink to outside/,
  ],
  [
    'an opaque whiteout through a symlink',
    [{ name: 'up', type: 'symlink', linkname: '../sentinel' }, { name: 'up/.wh..wh..opq', content: '' }],
    /resolves through a symlink to outside/,
  ],
];

for (const [name, entries, message, code = 'E_UNSAFE_PATH'] of hostile) {
  for (const format of ['plain', 'overlay'] as const) {
    test(`hostile layer (${format}): ${name} → refused, nothing outside changes`, async (t) => {
      const a = await arena(t);
      const err = await t.throwsAsync(applyLayer(Readable.from([await tarOf(entries)]), a.target, { format }), { code, message } as never);
      t.truthy((err as unknown as { hint: string }).hint);
      await a.unchanged();
    });
  }
}

test('absolute paths and absolute symlinks stay inside the target (chroot semantics, like Docker)', async (t) => {
  const a = await arena(t);
  const layer = await tarOf([
    { name: '/abs-file', content: 'abs' },
    { name: 'alink', type: 'symlink', linkname: a.sentinel },
    { name: 'alink/pwned', content: 'inside' },
    { name: './dot/./x', content: 'dot' },
  ]);
  await applyLayer(Readable.from([layer]), a.target, { format: 'plain' });
  t.is(await readFile(join(a.target, 'abs-file'), 'utf8'), 'abs');
  t.is(await readFile(join(a.target, a.sentinel, 'pwned'), 'utf8'), 'inside');
  t.is(await readFile(join(a.target, 'dot/x'), 'utf8'), 'dot');
  await a.unchanged();
});

test('a file entry replaces a symlink instead of writing through it', async (t) => {
  const a = await arena(t);
  const layer = await tarOf([
    { name: 'f', type: 'symlink', linkname: '../sentinel/file' },
    { name: 'f', content: 'replaced' },
  ]);
  await applyLayer(Readable.from([layer]), a.target, { format: 'plain' });
  t.true((await lstat(join(a.target, 'f'))).isFile());
  t.is(await readFile(join(a.target, 'f'), 'utf8'), 'replaced');
  await a.unchanged();
});

test('truncated tar → CorruptLayerError', async (t) => {
  const a = await arena(t);
  const full = await tarOf([{ name: 'big', content: 'x'.repeat(5000) }]);
  await t.throwsAsync(applyLayer(Readable.from([full.subarray(0, 2000)]), a.target, { format: 'plain' }), { code: 'E_CORRUPT_LAYER', message: /truncated/ } as never);
  await t.throwsAsync(applyLayer(Readable.from([full.subarray(0, 512 + 5120)]), a.target, { format: 'plain' }), { code: 'E_CORRUPT_LAYER', message: /no end-of-archive marker/ } as never);
  await a.unchanged();
});

test('corrupt gzip → CorruptLayerError', async (t) => {
  const a = await arena(t);
  const gz = gzipSync(await tarOf([{ name: 'f', content: 'hello'.repeat(1000) }]));
  const bad = Buffer.from(gz);
  bad.fill(0x55, 20, 60);
  await t.throwsAsync(applyLayer(Readable.from([bad]), a.target, { format: 'plain' }), { code: 'E_CORRUPT_LAYER' } as never);
  await t.throwsAsync(applyLayer(Readable.from([gz.subarray(0, gz.length - 30)]), a.target, { format: 'plain' }), { code: 'E_CORRUPT_LAYER' } as never);
  await a.unchanged();
});

test('gzip bomb: maxBytes stops decompression', async (t) => {
  const a = await arena(t);
  const gz = gzipSync(await tarOf([{ name: 'zeros', content: '\0'.repeat(4 * 1024 * 1024) }]));
  t.true(gz.length < 64 * 1024);
  await t.throwsAsync(applyLayer(Readable.from([gz]), a.target, { format: 'plain', maxBytes: 1024 * 1024 }), { code: 'E_CORRUPT_LAYER', message: /larger than the limit/ } as never);
  await a.unchanged();
});

test('zstd layers are decompressed via zstd -dc', async (t) => {
  const a = await arena(t);
  const plain = await tarOf([{ name: 'z/f', content: 'zstd!' }]);
  const zst = Buffer.from(await sh('sh', ['-c', 'zstd -q -c | base64 -w0'], { input: plain }), 'base64');
  await applyLayer(Readable.from([zst]), a.target, { format: 'plain' });
  t.is(await readFile(join(a.target, 'z/f'), 'utf8'), 'zstd!');
});

test('whiteouts: plain deletes, overlay keeps 0/0 devices and the opaque xattr', async (t) => {
  const dir = await tempDir(t);
  const lower = await tarOf([
    { name: 'a', content: 'a' },
    { name: 'd', type: 'directory' },
    { name: 'd/old', content: 'old' },
    { name: 'keep', content: 'k' },
  ]);
  const upper = await tarOf([
    { name: '.wh.a', content: '' },
    { name: 'd', type: 'directory' },
    { name: 'd/.wh..wh..opq', content: '' },
    { name: 'd/new', content: 'new' },
  ]);
  const plain = join(dir, 'plain');
  await mkdir(plain);
  await applyLayer(Readable.from([lower]), plain, { format: 'plain' });
  const stats = await applyLayer(Readable.from([upper]), plain, { format: 'plain' });
  t.is(stats.whiteouts, 2);
  t.deepEqual((await describeTree(plain, { mtimes: false })).map((l) => l.split(' ')[0]), ['d', 'd/new', 'keep']);
  const ov = join(dir, 'overlay');
  await mkdir(ov);
  await applyLayer(Readable.from([upper]), ov, { format: 'overlay' });
  const wh = await lstat(join(ov, 'a'));
  t.true(wh.isCharacterDevice());
  t.is(wh.rdev, 0);
  t.is((await getAttribute(join(ov, 'd'), 'trusted.overlay.opaque')).toString(), 'y');
  t.deepEqual(await readdir(join(ov, 'd')), ['new']);
});

test('an opaque whiteout after entries of the same layer keeps them', async (t) => {
  const dir = await tempDir(t);
  await applyLayer(Readable.from([await tarOf([{ name: 'd/lower', content: 'l' }])]), dir, { format: 'plain' });
  await applyLayer(Readable.from([await tarOf([{ name: 'd/mine', content: 'm' }, { name: 'd/.wh..wh..opq', content: '' }])]), dir, { format: 'plain' });
  t.deepEqual(await readdir(join(dir, 'd')), ['mine']);
});

test('directory mtimes are set after their children; setuid survives chown', async (t) => {
  const dir = await tempDir(t);
  const layer = await tarOf([
    { name: 'd', type: 'directory', mtime: new Date(1_000_000_000), mode: 0o750, uid: 5, gid: 6 },
    { name: 'd/suid', content: 'x', mode: 0o4755, uid: 1000, gid: 1000, mtime: new Date(2_000_000_000) },
  ]);
  await applyLayer(Readable.from([layer]), dir, { format: 'plain' });
  const d = await lstat(join(dir, 'd'));
  t.is(d.mtimeMs, 1_000_000_000);
  t.is(d.mode & 0o7777, 0o750);
  t.deepEqual([d.uid, d.gid], [5, 6]);
  const f = await lstat(join(dir, 'd/suid'));
  t.is(f.mode & 0o7777, 0o4755);
  t.deepEqual([f.uid, f.gid], [1000, 1000]);
});

test('a directory later replaced by a symlink to outside: its mtime is not set through the symlink', async (t) => {
  const a = await arena(t);
  const sentinelBefore = (await lstat(a.sentinel)).mtimeMs;
  const layer = await tarOf([
    { name: 'd', type: 'directory', mtime: new Date(1_000_000_000) },
    { name: 'd', type: 'symlink', linkname: a.sentinel.replace(/[^/]+$/, '').concat('sentinel') },
  ]);
  await applyLayer(Readable.from([layer]), a.target, { format: 'plain' });
  t.true((await lstat(join(a.target, 'd'))).isSymbolicLink());
  t.is((await lstat(a.sentinel)).mtimeMs, sentinelBefore);
  await a.unchanged();
});

test('the same directory twice: the last entry\'s metadata wins', async (t) => {
  const dir = await tempDir(t);
  const layer = await tarOf([
    { name: 'd', type: 'directory', mtime: new Date(1_000_000_000), mode: 0o700 },
    { name: 'd/f', content: 'x' },
    { name: 'd', type: 'directory', mtime: new Date(1_500_000_000), mode: 0o751 },
  ]);
  await applyLayer(Readable.from([layer]), dir, { format: 'plain' });
  const d = await lstat(join(dir, 'd'));
  t.is(d.mtimeMs, 1_500_000_000);
  t.is(d.mode & 0o7777, 0o751);
});

for (const size of [0, 511, 512, 3 * 1024 * 1024 + 7]) {
  test(`a ${size}-byte file replaces a directory and a symlink, with owner, mode and mtime`, async (t) => {
    const a = await arena(t);
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = 33 + ((i * 7 + (i >> 9)) % 94);
    const body = content.toString('ascii');
    const layer = await tarOf([
      { name: 'd', type: 'directory' },
      { name: 'd/inner', content: 'x' },
      { name: 's', type: 'symlink', linkname: '../sentinel/file' },
      { name: 'd', content: body, mode: 0o4750, uid: 123, gid: 456, mtime: new Date(1_234_567_000) },
      { name: 's', content: body, mode: 0o640, uid: 7, gid: 8, mtime: new Date(1_234_568_000) },
    ]);
    await applyLayer(Readable.from([layer]), a.target, { format: 'plain' });
    for (const [name, mode, owner, mtime] of [['d', 0o4750, [123, 456], 1_234_567_000], ['s', 0o640, [7, 8], 1_234_568_000]] as const) {
      const st = await lstat(join(a.target, name));
      t.true(st.isFile(), name);
      t.is(st.mode & 0o7777, mode, name);
      t.deepEqual([st.uid, st.gid], [...owner], name);
      t.is(st.mtimeMs, mtime, name);
      t.true((await readFile(join(a.target, name))).equals(content), name);
    }
    await a.unchanged();
  });
}
