import test from 'ava';
import { execFileSync } from 'node:child_process';
import { link, mkdir, symlink, writeFile, chmod, chown, utimes, lutimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setAttribute } from 'fs-xattr';
import { importRootfs, layerTarStream } from '../src/index.js';
import { collector, tempDir, tempStore } from './archive-fixtures.js';
import { exported, rawTar, unpackAndWalk } from './export-fixtures.js';

test('export of an imported tree (links, xattrs, devices, setuid, long names) equals unpack-and-walk, byte for byte', async (t) => {
  const store = await tempStore(t);
  const src = await tempDir(t);
  await mkdir(join(src, 'b/deep/er'), { recursive: true });
  await mkdir(join(src, 'a'));
  await writeFile(join(src, 'a/f'), 'hello');
  await link(join(src, 'a/f'), join(src, 'b/hard'));
  await writeFile(join(src, 'b/suid'), 'x');
  await chown(join(src, 'b/suid'), 1000, 50);
  await chmod(join(src, 'b/suid'), 0o4755);
  await symlink('../a/f', join(src, 'b/sym'));
  await writeFile(join(src, 'b/deep/er/' + 'n'.repeat(150) + '-é'), Buffer.alloc(700_000, 7));
  await writeFile(join(src, 'cap'), 'c');
  await setAttribute(join(src, 'cap'), 'user.note', 'v');
  execFileSync('mknod', [join(src, 'null'), 'c', '1', '3']);
  execFileSync('mkfifo', [join(src, 'fifo')]);
  await utimes(join(src, 'a'), 1_111_111_111, 1_111_111_111);
  await lutimes(join(src, 'b/sym'), 1_222_222_222, 1_222_222_222);
  const tar = collector();
  await pipeline(layerTarStream(src, { kind: 'rootfs' }), tar);
  await importRootfs(store, Readable.from([tar.bytes()]), { ref: 'lsexport:tree', sourceDateEpoch: 0 });
  const ours = await exported(store, 'lsexport:tree');
  t.true(ours.equals(await unpackAndWalk(t, store, 'lsexport:tree')));
  const names = execFileSync('tar', ['-tvf', '-'], { input: ours }).toString();
  t.regex(names, /b\/hard link to a\/f/);
});

test('export of a layer not in walk form (unordered, parent through a symlink, whiteout, root entry, link metadata) equals unpack-and-walk', async (t) => {
  const store = await tempStore(t);
  const cases: Array<[string, Buffer]> = [
    ['unordered', rawTar([{ name: 'z', content: 'z' }, { name: 'a', content: 'a' }])],
    // (a missing parent would be made with mtime "now": not comparable across two unpackings)
    ['through-symlink', rawTar([{ name: 'd', type: 'directory', mode: 0o755 }, { name: 'l', type: 'symlink', linkname: 'd' }, { name: 'l/f', content: 'f' }])],
    ['whiteout', rawTar([{ name: 'x', content: 'x' }, { name: '.wh.y' }])],
    ['root-and-dot', rawTar([{ name: './', type: 'directory', mode: 0o700 }, { name: './p', content: 'p' }, { name: 'q', type: 'link', linkname: './p' }])],
    ['link-to-later', rawTar([{ name: 'a', content: 'a' }, { name: 'b', type: 'link', linkname: 'a', mode: 0o600, uid: 9 }])],
  ];
  for (const [name, layer] of cases) {
    const dir = await tempDir(t);
    const blobTar = join(dir, 'layer.tar');
    await writeFile(blobTar, layer);
    // a one-layer image whose layer is exactly these bytes (import would rewrite it): load it as a docker archive
    const manifest = [{ Config: 'c.json', RepoTags: [`lsexport:${name}`], Layers: ['layer.tar'] }];
    const { createHash } = await import('node:crypto');
    const diff = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
    await writeFile(join(dir, 'c.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diff] } }));
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const archive = execFileSync('tar', ['-C', dir, '-cf', '-', 'manifest.json', 'c.json', 'layer.tar']);
    const { load } = await import('../src/index.js');
    await load(store, Readable.from([archive]));
    t.true((await exported(store, `lsexport:${name}`)).equals(await unpackAndWalk(t, store, `lsexport:${name}`)), name);
  }
});
