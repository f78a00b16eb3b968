/**
 * `export` of an image whose layers all have snapshots walks the snapshots as one merged tree
 * (mergedTarStream) instead of unpacking the layers: the tar must be byte for byte the one
 * unpacking gives, through whiteouts, opaque directories, replaced types and hard links.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { load, type Store } from '../src/index.js';
import type { TarHeader } from '../src/tar.js';
import { tempDir, tempStore } from './archive-fixtures.js';
import { exported, rawTar, unpackAndWalk, type RawEntry } from './export-fixtures.js';

const dir = (name: string, extra: Partial<TarHeader> = {}): RawEntry => ({ name, type: 'directory', mode: 0o755, ...extra });

/** Loads the layers as one image `ref` (a docker archive with exactly these layer tars). */
async function loadImage(t: Parameters<typeof tempDir>[0], store: Store, ref: string, layers: Buffer[]): Promise<void> {
  const work = await tempDir(t);
  const names = layers.map((_, i) => `l${i}.tar`);
  for (const [i, l] of layers.entries()) await writeFile(join(work, names[i]!), l);
  const diffIDs = layers.map((l) => `sha256:${createHash('sha256').update(l).digest('hex')}`);
  await writeFile(join(work, 'c.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIDs } }));
  await writeFile(join(work, 'manifest.json'), JSON.stringify([{ Config: 'c.json', RepoTags: [ref], Layers: names }]));
  await load(store, Readable.from([execFileSync('tar', ['-C', work, '-cf', '-', 'manifest.json', 'c.json', ...names])]));
}

const L1 = rawTar([
  dir('d'),
  { name: 'd/a', content: 'a' },
  { name: 'd/b', content: 'b' },
  dir('d/sub'),
  { name: 'd/sub/x', content: 'x' },
  dir('o'),
  { name: 'o/keep', content: 'k' },
  { name: 'f2d', content: 'a file first' },
  dir('d2f'),
  { name: 'd2f/inner', content: 'i' },
  { name: 'h1', content: 'hard' },
  { name: 'h2', type: 'link', linkname: 'h1' },
  { name: 'h3', content: 'h3' },
  { name: 'h4', type: 'link', linkname: 'h3' },
  { name: 's', type: 'symlink', linkname: 'd' },
  dir('x', { xattrs: new Map([['user.a', Buffer.from('1')]]), mtime: 1_100_000_000 }),
  { name: 'x/f', content: 'f', uid: 1000, gid: 50, mode: 0o4755 },
]);
const L2 = rawTar([
  dir('d', { mode: 0o700, mtime: 1_200_000_000 }),
  { name: 'd/.wh.a' },
  { name: 'd/c', content: 'c' },
  dir('d/sub'),
  { name: 'd/sub/.wh..wh..opq' },
  { name: 'd/sub/y', content: 'y' },
  dir('o'),
  { name: 'o/.wh..wh..opq' },
  { name: 'o/new', content: 'n' },
  dir('f2d'),
  { name: 'f2d/z', content: 'z' },
  { name: 'd2f', content: 'now a file' },
  { name: 'h1', content: 'new h1' },
  dir('s'),
  { name: 's/in', content: 'in' },
]);
const L3 = rawTar([
  dir('d'),
  { name: 'd/b', content: 'b3' },
  { name: '.wh.o' },
  dir('o2'),
  dir('f2d'),
  { name: 'f2d/.wh.z' },
  // the xattr again: a layer made from an overlay upper dir has it (copy-up keeps xattrs); one
  // without it is where the two definitions part (see mergedWalk)
  dir('x', { mtime: 1_300_000_000, xattrs: new Map([['user.a', Buffer.from('1')]]) }),
]);

test('export through the snapshots of every layer equals unpack-and-walk byte for byte (whiteouts, opaque dirs, replaced types, hard links)', async (t) => {
  const store = await tempStore(t);
  await loadImage(t, store, 'lsmerge:three', [L1, L2, L3]);
  const want = await unpackAndWalk(t, store, 'lsmerge:three');
  t.true((await exported(store, 'lsmerge:three')).equals(want), 'without snapshots (unpacked)');

  const image = await store.resolveImage('lsmerge:three');
  await store.prepareSnapshots(image.manifest.layers.map((l, i) => ({ digest: l.digest, diffID: image.config.rootfs.diff_ids[i]! })));
  // the snapshots alone make the export now: a layer blob gone does not matter
  await unlink(store.blobPath(image.manifest.layers[1]!.digest));
  const merged = await exported(store, 'lsmerge:three');
  t.true(merged.equals(want), 'through the snapshots');
  const list = execFileSync('tar', ['-tvf', '-'], { input: merged }).toString();
  t.regex(list, /h4 link to h3/, 'a hard link of a lower layer stays one');
  t.notRegex(list, /h2 link to/, 'h1 replaced above: h2 is a file of its own');
  t.notRegex(list, /\.wh\./, 'no whiteout left');
});

test('export through snapshots: one layer of an imported tree, as unpack-and-walk gives it', async (t) => {
  const store = await tempStore(t);
  await loadImage(t, store, 'lsmerge:one', [L1]);
  const want = await unpackAndWalk(t, store, 'lsmerge:one');
  const image = await store.resolveImage('lsmerge:one');
  await store.prepareSnapshots([{ digest: image.manifest.layers[0]!.digest, diffID: image.config.rootfs.diff_ids[0]! }]);
  t.true((await exported(store, 'lsmerge:one')).equals(want));
});
