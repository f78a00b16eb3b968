/**
 * What later steps see of a step's files: times in whole seconds, as Docker 20.10 gives them
 * (its layers are unpacked from their tars, whose mtimes pkg/archive truncates to the second;
 * checked against dockerd on Debian, hreal/probe2: `RUN touch /e` then `RUN stat /e`).
 */
import test from 'ava';
import { lstatSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { chainIDsOf } from '@tsbuild/layer-store';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

/** Every entry of `dir` (itself included) whose mtime or atime has a sub-second part. */
function subSecond(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    const st = lstatSync(p, { bigint: true });
    if (st.mtimeNs % 1_000_000_000n !== 0n) out.push(path.relative(dir, p) || '.');
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(path.join(p, n));
  };
  visit(dir);
  return out;
}

// COPY, ADD and WORKDIR: snapshot-adopt.test.ts
test('a RUN snapshot holds whole-second mtimes, as the layer tar does', async (t) => {
  const dir = await testDir(t, 'snapshot-times');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: ['FROM busybox', 'RUN mkdir -p /d/e && touch /d/a /d/e/f /etc/new && ln -s a /d/l', 'COPY a.txt /etc/', 'WORKDIR /w/x', ''].join('\n'),
    'a.txt': 'a\n',
  });
  const store = await busyboxStore(dir);
  const { result } = await buildCollect({ store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } });
  const image = await store.resolveImage(result.id);
  const chains = chainIDsOf(image.config.rootfs.diff_ids);
  t.is(chains.length, 4);
  const seen: Record<string, string[]> = {};
  seen['run'] = subSecond(store.snapshotDirFor(chains[1]!));
  t.deepEqual(seen, { run: [] });
});

test("COPY of a directory into an existing one changes that one's mtime, as Docker's chrootarchive untar does", async (t) => {
  const dir = await testDir(t, 'copy-dest-mtime');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: ['FROM busybox', 'RUN mkdir -p /u1/bin /u2/bin && touch -t 200101010000 /u1 /u2 /u1/bin /u2/bin', 'COPY d/ /u1/', ''].join('\n'),
    'd/bin/y': 'y\n',
  });
  const store = await busyboxStore(dir);
  const { result } = await buildCollect({ store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } });
  const image = await store.resolveImage(result.id);
  const chains = chainIDsOf(image.config.rootfs.diff_ids);
  const year = (p: string): number => lstatSync(path.join(store.snapshotDirFor(chains[2]!), p)).mtime.getUTCFullYear();
  // /u2 is not in the COPY's layer; /u1 is, with the copy's time; /u1/bin has the source's
  t.false(lstatSync(path.join(store.snapshotDirFor(chains[2]!), 'u2'), { throwIfNoEntry: false }) !== undefined);
  t.true(year('u1') > 2001);
  t.is(year('u1/bin'), lstatSync(path.join(ctxDir, 'd', 'bin')).mtime.getUTCFullYear());
});
