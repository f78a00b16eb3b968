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
