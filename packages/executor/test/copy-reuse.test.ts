/**
 * A rebuild of a COPY whose sources partly changed links the unchanged files from the earlier
 * build's snapshot instead of copying them (CopyReuse). The invariants: the image is byte for byte
 * the one a cold build makes, and the earlier snapshot (shared inodes) is never modified.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, link, lstat, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { chainIDsOf, Store } from '@tsbuild/layer-store';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

const T0 = 1_600_000_000;
const EPOCH = 1_700_000_000;

/** Every entry with type, mode, owner, size, mtime (ns), link target and content digest. */
async function listing(dir: string): Promise<string[]> {
  const rows: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const r = path.join(rel, name);
      const p = path.join(dir, r);
      const st = await lstat(p, { bigint: true });
      const sha = st.isFile() ? createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16) : '';
      rows.push(`${r} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${sha}`);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return rows;
}

/** Sets the mtime of every entry below `dir` (not following symlinks) and of `dir` to T0. */
async function settle(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    const st = await lstat(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) await settle(p);
    await utimes(p, T0, T0);
  }
  await utimes(dir, T0, T0);
}

async function copySnapshot(store: Store, imageID: string, layerIndex: number): Promise<string> {
  const image = await store.resolveImage(imageID);
  return store.snapshotDirFor(chainIDsOf(image.config.rootfs.diff_ids)[layerIndex]!);
}

test('a rebuild of a partly changed COPY links the unchanged files: same image as a cold build, earlier snapshot untouched', async (t) => {
  const dir = await testDir(t, 'copy-reuse');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: 'FROM busybox\nWORKDIR /src\nCOPY . .\nCOPY b.txt /b2.txt\n',
    'a/one.txt': 'one\n',
    'a/two.txt': 'two\n',
    'a/deep/three.txt': 'three\n',
    'b.txt': 'b\n',
    'x.sh': '#!/bin/sh\necho x\n',
    'suid.bin': 'setuid\n',
    'h1.txt': 'hard\n',
    'late.txt': 'newer than the epoch\n',
  });
  await chmod(path.join(ctxDir, 'x.sh'), 0o755);
  await chmod(path.join(ctxDir, 'suid.bin'), 0o4755);
  await link(path.join(ctxDir, 'h1.txt'), path.join(ctxDir, 'h2.txt'));
  await symlink('a/one.txt', path.join(ctxDir, 'ln'));
  await settle(ctxDir);
  // newer than SOURCE_DATE_EPOCH: clamped in the snapshot, so never linked (the mtimes differ)
  await utimes(path.join(ctxDir, 'late.txt'), EPOCH + 100, EPOCH + 100);

  const storeA = await busyboxStore(path.join(dir, 'a'));
  const opts = { contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, sourceDateEpoch: EPOCH };
  const first = await buildCollect({ ...opts, store: storeA.root });
  const snap1 = await copySnapshot(storeA, first.result.id, 2);
  const before = await listing(snap1);

  // edits: content, mode, a new file, a removed file (its directory's mtime put back)
  await writeFile(path.join(ctxDir, 'a/two.txt'), 'two, edited\n');
  await chmod(path.join(ctxDir, 'a/one.txt'), 0o600);
  await writeFile(path.join(ctxDir, 'a/new.txt'), 'new\n');
  await rm(path.join(ctxDir, 'a/deep/three.txt'));
  await settle(ctxDir);
  await utimes(path.join(ctxDir, 'late.txt'), EPOCH + 100, EPOCH + 100);

  const second = await buildCollect({ ...opts, store: storeA.root });
  t.regex(second.misses.get(2) ?? '', /COPY/, 'the COPY missed');
  const snap2 = await copySnapshot(storeA, second.result.id, 2);
  t.not(snap2, snap1);

  // linked: unchanged plain files share the earlier inode; changed, new, setuid, hard-linked and
  // clamped files were copied
  const ino = async (d: string, rel: string): Promise<bigint> => (await lstat(path.join(d, 'src', rel), { bigint: true })).ino;
  for (const rel of ['b.txt', 'x.sh', 'Dockerfile']) t.is(await ino(snap2, rel), await ino(snap1, rel), `${rel} is linked`);
  for (const rel of ['a/one.txt', 'a/two.txt', 'suid.bin', 'h1.txt', 'late.txt']) t.not(await ino(snap2, rel), await ino(snap1, rel), `${rel} is copied`);
  t.is((await lstat(path.join(snap2, 'src/h1.txt'))).ino, (await lstat(path.join(snap2, 'src/h2.txt'))).ino, 'the hard link pair stays a pair');

  t.deepEqual(await listing(snap1), before, 'the earlier snapshot is unchanged');

  const storeB = await busyboxStore(path.join(dir, 'b'));
  const cold = await buildCollect({ ...opts, store: storeB.root });
  t.is(second.result.id, cold.result.id, 'the rebuild makes the image a cold build makes');
  t.deepEqual(await listing(snap2), await listing(await copySnapshot(storeB, cold.result.id, 2)), 'and the same snapshot');
});

test('a COPY rebuild whose earlier snapshot was pruned copies everything', async (t) => {
  const dir = await testDir(t, 'copy-reuse-gone');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: 'FROM busybox\nCOPY d/ /d/\n', 'd/keep.txt': 'k\n', 'd/edit.txt': 'e\n' });
  await mkdir(path.join(ctxDir, 'd/empty'));
  await settle(ctxDir);
  const store = await busyboxStore(dir);
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, sourceDateEpoch: EPOCH };
  const first = await buildCollect(opts);
  const snap1 = await copySnapshot(store, first.result.id, 1);
  await rm(snap1, { recursive: true });
  await writeFile(path.join(ctxDir, 'd/edit.txt'), 'edited\n');
  await settle(ctxDir);
  const second = await buildCollect(opts);
  const snap2 = await copySnapshot(store, second.result.id, 1);
  t.is((await lstat(path.join(snap2, 'd/keep.txt'))).nlink, 1);
  t.is(await readFile(path.join(snap2, 'd/keep.txt'), 'utf8'), 'k\n');
});

test('SOURCE_DATE_EPOCH is part of every step key: a build with it after one without misses, says why, and makes the cold build\'s image', async (t) => {
  const dir = await testDir(t, 'copy-reuse-epoch');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: 'FROM busybox\nCOPY d/ /d/\nENV A=1\n', 'd/f.txt': 'f\n' });
  await settle(ctxDir);
  await utimes(path.join(ctxDir, 'd/f.txt'), EPOCH + 100, EPOCH + 100); // newer than the epoch: clamped with it
  const store = await busyboxStore(path.join(dir, 'a'));
  const base = { contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } };
  const plain = await buildCollect({ ...base, store: store.root });
  const snap = await copySnapshot(store, plain.result.id, 1);
  const before = await listing(snap);
  const withEpoch = await buildCollect({ ...base, store: store.root, sourceDateEpoch: EPOCH });
  t.regex(withEpoch.misses.get(1) ?? '', /SOURCE_DATE_EPOCH unset→1700000000/);
  t.true(withEpoch.misses.has(2), 'config steps miss too (their created times differ)');
  t.deepEqual(await listing(snap), before, 'the unclamped snapshot keeps its mtimes');
  const cold = await buildCollect({ ...base, store: (await busyboxStore(path.join(dir, 'b'))).root, sourceDateEpoch: EPOCH });
  t.is(withEpoch.result.id, cold.result.id);
});

test('a later source that replaces a directory by a symlink to a host directory: no reused link goes through it', async (t) => {
  const dir = await testDir(t, 'copy-reuse-symlink');
  const outside = path.join(dir, 'outside');
  await mkdir(outside);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: 'FROM busybox\nCOPY d1/ d2/ /dst/\n', 'd1/a/b.txt': 'b\n', 'd1/other.txt': 'o\n', 'd2/keep.txt': 'k\n' });
  await settle(ctxDir);
  const storeA = await busyboxStore(path.join(dir, 'a'));
  const opts = { contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, sourceDateEpoch: EPOCH };
  await buildCollect({ ...opts, store: storeA.root });
  // now the second source has `a` too, as a symlink: copied after d1's a/b.txt (which the earlier
  // snapshot has, so the rebuild defers its link), it replaces the directory a
  await symlink(outside, path.join(ctxDir, 'd2/a'));
  await settle(ctxDir);
  const second = await buildCollect({ ...opts, store: storeA.root });
  t.deepEqual(await readdir(outside), [], 'nothing was linked into the directory the symlink points at');
  const cold = await buildCollect({ ...opts, store: (await busyboxStore(path.join(dir, 'b'))).root });
  t.is(second.result.id, cold.result.id);
});

test('a rebuilt COPY of a few MiB takes the unchanged gzip blocks from the earlier layer: the same manifest as a cold build', async (t) => {
  const dir = await testDir(t, 'copy-gzblocks');
  const ctxDir = path.join(dir, 'ctx');
  // ~3 MiB of compressible text (deflated blocks), then late.txt, last in the tar
  const body = (i: number): string => Array.from({ length: 20_000 }, (_, n) => `file ${i} line ${(n * 7919 + i) % 100_003}\n`).join('');
  const files: Record<string, string> = { Dockerfile: 'FROM busybox\nWORKDIR /src\nCOPY . .\n', 'late.txt': 'v1\n' };
  for (let i = 0; i < 8; i++) files[`d/f${i}.txt`] = body(i);
  await writeFiles(ctxDir, files);
  await settle(ctxDir);
  const storeA = await busyboxStore(path.join(dir, 'a'));
  const opts = { contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, sourceDateEpoch: EPOCH };
  const first = await buildCollect({ ...opts, store: storeA.root });
  const layersOf = async (s: Store, id: string): Promise<string[]> => (await s.resolveImage(id)).manifest.layers.map((l) => l.digest);
  const copy1 = (await layersOf(storeA, first.result.id)).at(-1);
  t.true(existsSync(path.join(storeA.root, 'gzip-blocks', copy1!.replace('sha256:', ''))), 'the COPY layer keeps its block index');

  await writeFile(path.join(ctxDir, 'late.txt'), 'v2\n');
  await settle(ctxDir);
  const second = await buildCollect({ ...opts, store: storeA.root });
  t.regex(second.misses.get(2) ?? '', /late\.txt/);
  const storeB = await busyboxStore(path.join(dir, 'b'));
  const cold = await buildCollect({ ...opts, store: storeB.root });
  t.not((await layersOf(storeA, second.result.id)).at(-1), copy1);
  t.is(second.result.manifestDigest, cold.result.manifestDigest, 'compressed layers, manifest and config as a cold build makes them');
});
