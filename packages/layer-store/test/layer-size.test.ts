/**
 * Image and layer sizes as Docker reports them (content sizes, see src/layer-size.ts): counted
 * when a layer is written, computed from the blob when it was not, summed by inspect/images/history,
 * and checked against dockerd on the same images.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync } from 'node:fs';
import { link, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  collectGarbage,
  imageHistory,
  importRootfs,
  inspectImage,
  layerContentSize,
  listImages,
  load,
  removeImage,
  writeLayer,
  type DiffID,
} from '../src/index.js';
import { entryContentSize, LAYER_SIZES_DIR, recordedContentSize } from '../src/layer-size.js';
import { dockerTest, importBusybox, REPO, tempDir, tempStore } from './archive-fixtures.js';

/** Docker's `directory.Size`: lstat sizes of non-directories, each inode once (independent of the store's code). */
function dockerDirectorySize(root: string): number {
  const seen = new Set<number>();
  let sum = 0;
  const visit = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        visit(p);
        continue;
      }
      if (st.size === 0 || seen.has(st.ino)) continue;
      seen.add(st.ino);
      sum += st.size;
    }
  };
  visit(root);
  return sum;
}

/** A tree with the cases that differ between compressed, tar and content sizes. */
async function sampleTree(t: ExecutionContext): Promise<string> {
  const dir = join(await tempDir(t), 'tree');
  await mkdir(join(dir, 'd/sub'), { recursive: true });
  await writeFile(join(dir, 'd/a'), 'hello\n');
  await link(join(dir, 'd/a'), join(dir, 'd/hard')); // counted once
  await writeFile(join(dir, 'd/empty'), '');
  await writeFile(join(dir, 'd/sub/big'), Buffer.alloc(70_000, 7)); // compresses to little
  await symlink('/d/a', join(dir, 'abs-link')); // 4 bytes
  await symlink('sub/ünï', join(dir, 'd/utf8-link')); // bytes, not characters
  return dir;
}

const entryRows: Array<[string, Parameters<typeof entryContentSize>[0], number]> = [
  ['a regular file counts its size', { type: 'file', size: 1234 }, 1234],
  ['a symlink counts its target length', { type: 'symlink', size: 0, linkname: '/bin/busybox' }, 12],
  ['a symlink target counts in UTF-8 bytes', { type: 'symlink', size: 0, linkname: 'ü' }, 2],
  ['a hard link counts nothing (its file counted)', { type: 'link', size: 0, linkname: 'bin/sh' }, 0],
  ['a directory counts nothing', { type: 'directory', size: 0 }, 0],
  ['a device counts nothing', { type: 'char', size: 0 }, 0],
  ['a fifo counts nothing', { type: 'fifo', size: 0 }, 0],
];
for (const [name, header, expected] of entryRows) {
  test(`entryContentSize: ${name}`, (t) => {
    t.is(entryContentSize(header), expected);
  });
}

test('writeLayer records the content size Docker computes for the unpacked diff', async (t) => {
  const store = await tempStore(t);
  const dir = await sampleTree(t);
  const layer = await writeLayer(store, dir, { kind: 'rootfs' });
  const expected = dockerDirectorySize(dir);
  t.is(expected, 6 + 70_000 + 4 + Buffer.byteLength('sub/ünï'));
  t.is(await recordedContentSize(store, layer.diffID), expected);
  t.is(await layerContentSize(store, layer), expected);
  t.not(layer.size, expected, 'the compressed size is something else');
});

test('a layer without a recorded size gets it from its blob, and a damaged record is redone', async (t) => {
  const store = await tempStore(t);
  const dir = await sampleTree(t);
  const layer = await writeLayer(store, dir, { kind: 'rootfs' });
  const file = join(store.root, LAYER_SIZES_DIR, layer.diffID.slice(7));
  await rm(file);
  t.is(await recordedContentSize(store, layer.diffID), undefined);
  t.is(await layerContentSize(store, layer), dockerDirectorySize(dir));
  t.is(await readFile(file, 'utf8'), `${dockerDirectorySize(dir)}\n`, 'recorded after computing');
  await writeFile(file, '');
  t.is(await recordedContentSize(store, layer.diffID), undefined);
  t.is(await layerContentSize(store, layer), dockerDirectorySize(dir));
});

test('images, inspect and history report content sizes; prune drops the records of removed layers', async (t) => {
  const store = await tempStore(t);
  const { tarFile } = await importBusybox(t, store, 'lsexp:size');
  const rootfs = join(await tempDir(t), 'x');
  await mkdir(rootfs);
  execFileSync('tar', ['-C', rootfs, '-xf', tarFile]);
  const expected = dockerDirectorySize(rootfs);
  const info = await inspectImage(store, 'lsexp:size');
  t.is(info.Size, expected);
  t.is(info.VirtualSize, expected);
  t.deepEqual((await listImages(store)).map((r) => r.size), [expected]);
  t.deepEqual((await imageHistory(store, 'lsexp:size')).map((r) => r.size), [expected]);
  const diffID = info.RootFS.Layers[0] as DiffID;
  t.is(await recordedContentSize(store, diffID), expected);
  await removeImage(store, 'lsexp:size');
  await collectGarbage(store);
  t.is(await recordedContentSize(store, diffID), undefined);
});

// ---- against dockerd ----

const DOCKER = '/usr/bin/docker';
const dockerEnv = { ...process.env, DOCKER_BUILDKIT: '0' };

function docker(args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(DOCKER, args, { env: dockerEnv, encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
}

function dockerTag(t: ExecutionContext): string {
  const tag = `lsexp-size:${randomBytes(5).toString('hex')}`;
  t.teardown(() => void spawnSync(DOCKER, ['rmi', '-f', tag], { env: dockerEnv, stdio: 'ignore' }));
  return tag;
}

dockerTest('an imported tarball has the Size and config shape docker import gives it', async (t) => {
  const dir = await sampleTree(t);
  const tarFile = join(await tempDir(t), 'tree.tar');
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', tarFile, '.']);
  const tag = dockerTag(t);
  docker(['import', '-c', 'ENV a=b', '-c', 'CMD ["x"]', '-m', 'msg', tarFile, tag]);
  const theirs = JSON.parse(docker(['image', 'inspect', tag]))[0] as Record<string, unknown>;
  const store = await tempStore(t);
  await importRootfs(store, createReadStream(tarFile), { ref: 'lsexp:imp', changes: ['ENV a=b', 'CMD ["x"]'], message: 'msg' });
  const ours = (await inspectImage(store, 'lsexp:imp')) as unknown as Record<string, unknown>;
  t.is(ours.Size, theirs.Size);
  t.is(ours.VirtualSize, theirs.VirtualSize);
  t.deepEqual(ours.Config, theirs.Config);
  t.deepEqual(ours.ContainerConfig, theirs.ContainerConfig);
  t.is(ours.Comment, theirs.Comment);
  t.deepEqual(Object.keys(ours).filter((k) => k !== 'Descriptor'), Object.keys(theirs), 'same keys in the same order');
});

dockerTest('a docker-built image with whiteouts, loaded from docker save, has Docker\'s sizes per layer', async (t) => {
  const base = dockerTag(t);
  const { tarFile } = await importBusybox(t, await tempStore(t), 'lsexp:unused');
  docker(['import', tarFile, base]);
  const ctx = await tempDir(t);
  await writeFile(
    join(ctx, 'Dockerfile'),
    `FROM ${base}\nRUN mkdir -p /data/sub && echo hello > /data/a && echo x > /data/sub/b && ln /data/a /data/hard && ln -s /data/a /data/sym\nENV FOO=bar\nRUN rm -rf /data/sub /data/a && mkdir /data/sub && echo new > /data/sub/c && chmod 4755 /bin/busybox\n`,
  );
  const tag = dockerTag(t);
  docker(['build', '-q', '-t', tag, ctx]);
  const saved = join(ctx, 'img.tar');
  docker(['save', '-o', saved, tag]);
  const store = await tempStore(t);
  await load(store, createReadStream(saved));
  t.is((await inspectImage(store, tag)).Size, Number(docker(['image', 'inspect', '-f', '{{.Size}}', tag]).trim()));
  const theirs = docker(['history', '-H=false', '--format', '{{.Size}}', tag]).trim().split('\n').map(Number);
  t.deepEqual((await imageHistory(store, tag)).map((r) => r.size), theirs);
});
