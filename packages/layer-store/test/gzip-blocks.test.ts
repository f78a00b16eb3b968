/**
 * A rewritten layer takes the compressed gzip blocks that did not change from the earlier blob
 * (gzip-blocks.ts): the output must be byte for byte what a fresh compression gives, whatever
 * the index says.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectGarbage, Store, writeLayer, type Digest, type WriteLayerOptions, type WrittenLayer } from '../src/index.js';
import { hexOf } from '../src/digest.js';
import { GZIP_BLOCKS_DIR } from '../src/gzip-blocks.js';
import { tempDir } from './helpers.js';

const T0 = 1_600_000_000;

/** Text that deflate compresses (so its blocks are deflated, not stored), different per seed. */
function text(size: number, seed: number): Buffer {
  const words = ['layer', 'tar', 'gzip', 'deflate', 'block', 'window', 'index', 'reuse'];
  let out = '';
  let x = seed;
  while (out.length < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += `${words[x % words.length]}${x % 7 === 0 ? '\n' : ' '}`;
  }
  return Buffer.from(out.slice(0, size));
}

/** A tree of six 700 KB text files (a.txt … f.txt) and z.txt, every mtime T0: about 4 MiB of tar. */
async function tree(dir: string, z: string, aSize = 700_000): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [i, name] of ['a', 'b', 'c', 'd', 'e', 'f'].entries()) await writeFile(join(dir, `${name}.txt`), text(name === 'a' ? aSize : 700_000, i + 1));
  await writeFile(join(dir, 'z.txt'), z);
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'z']) await utimes(join(dir, `${name}.txt`), T0, T0);
  await utimes(dir, T0, T0);
}

const rootfs: WriteLayerOptions = { kind: 'rootfs' };

/** A store with the tree's first layer written (indexed), and an empty store for fresh writes to compare with. */
async function firstLayer(t: ExecutionContext): Promise<{ dir: string; store: Store; fresh: Store; first: WrittenLayer }> {
  const base = await tempDir(t, 'gzblocks-');
  const dir = join(base, 'tree');
  const store = await Store.open(join(base, 'store'));
  const fresh = await Store.open(join(base, 'fresh'));
  await tree(dir, 'z version 1\n');
  return { dir, store, fresh, first: await writeLayer(store, dir, { ...rootfs, indexBlocks: true }) };
}

test('a layer written again with reuseBlocksOf takes its unchanged blocks and is byte for byte a fresh write', async (t) => {
  const { dir, store, fresh, first } = await firstLayer(t);
  t.truthy(first.gzipBlocks);
  t.true(first.gzipBlocks!.total >= 4, `${first.gzipBlocks!.total} blocks`);
  t.is(first.gzipBlocks!.reused, 0);
  t.true(existsSync(join(store.root, GZIP_BLOCKS_DIR, hexOf(first.digest))), 'the index is kept beside the blob');

  // the last file changes, same length: every block but the last is the same
  await tree(dir, 'z version 2\n');
  const second = await writeLayer(store, dir, { ...rootfs, reuseBlocksOf: first.digest });
  const reference = await writeLayer(fresh, dir, rootfs);
  t.not(second.digest, first.digest);
  t.is(second.digest, reference.digest, 'the same blob as a fresh compression');
  t.is(second.diffID, reference.diffID);
  t.is(second.gzipBlocks!.total, first.gzipBlocks!.total);
  t.is(second.gzipBlocks!.reused, second.gzipBlocks!.total - 1, 'all blocks but the one holding z.txt');
  t.deepEqual(await readFile(store.blobPath(second.digest)), await readFile(fresh.blobPath(reference.digest)));

  // the first file grows: every later block moves, the result is still a fresh compression's
  await tree(dir, 'z version 2\n', 700_100);
  const third = await writeLayer(store, dir, { ...rootfs, reuseBlocksOf: second.digest });
  const reference3 = await writeLayer(fresh, dir, rootfs);
  t.is(third.digest, reference3.digest);
  t.true(third.gzipBlocks!.reused < third.gzipBlocks!.total);
});

test('a block index that does not fit (another level, damaged, not the blob it names) is ignored', async (t) => {
  const { dir, store, fresh, first } = await firstLayer(t);
  await tree(dir, 'z version 2\n');
  const reference = await writeLayer(fresh, dir, rootfs);
  const indexFile = join(store.root, GZIP_BLOCKS_DIR, hexOf(first.digest));
  const good = await readFile(indexFile, 'utf8');

  // level 1 cannot take level 6 blocks
  const level1 = await writeLayer(store, dir, { ...rootfs, gzipLevel: 1, reuseBlocksOf: first.digest });
  t.is(level1.gzipBlocks!.reused, 0);
  t.is(level1.digest, (await writeLayer(fresh, dir, { ...rootfs, gzipLevel: 1 })).digest);

  const index = JSON.parse(good) as { blocks: Array<[string, number]> };
  const damaged: Array<[string, string]> = [
    ['not JSON', good.slice(0, 40)],
    // one length off: the lengths no longer add up to the blob
    ['a wrong length', JSON.stringify({ ...index, blocks: index.blocks.map(([k, n], i) => [k, i === 0 ? n + 1 : n]) })],
    ['another version of the engine', JSON.stringify({ ...index, engineId: 'other' })],
    ['another engine', JSON.stringify({ ...index, engine: 'zlib' })],
    ['another block format', JSON.stringify({ ...index, format: 0 })],
  ];
  for (const [what, body] of damaged) {
    await writeFile(indexFile, body);
    const again = await writeLayer(store, dir, { ...rootfs, reuseBlocksOf: first.digest });
    t.is(again.gzipBlocks!.reused, 0, what);
    t.is(again.digest, reference.digest, what);
  }
  // no index at all, or a blob that is not in the store
  await writeFile(indexFile, good);
  const missing = await writeLayer(store, dir, { ...rootfs, reuseBlocksOf: `sha256:${'0'.repeat(64)}` as Digest });
  t.is(missing.gzipBlocks!.reused, 0);
  t.is(missing.digest, reference.digest);
});

test('garbage collection drops the block index of a removed blob', async (t) => {
  const base = await tempDir(t, 'gzblocks-gc-');
  const dir = join(base, 'tree');
  const store = await Store.open(join(base, 'store'));
  await tree(dir, 'z\n');
  const layer = await writeLayer(store, dir, { ...rootfs, indexBlocks: true });
  const indexFile = join(store.root, GZIP_BLOCKS_DIR, hexOf(layer.digest));
  t.true(existsSync(indexFile));
  const report = await collectGarbage(store);
  t.true(report.blobsDeleted.includes(layer.digest), 'no image holds the layer');
  t.false(existsSync(indexFile));
});
