import test, { type ExecutionContext } from 'ava';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { acquireLock } from '@tsbuild/layer-store';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

const DOCKERFILE = `FROM busybox
WORKDIR /src
RUN echo built > /built
COPY early/ /early/
COPY late.txt /late.txt
CMD ["sh"]
`;

async function setup(t: ExecutionContext) {
  const dir = await testDir(t, 'rebuild');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: DOCKERFILE, 'early/a.txt': 'a\n', 'early/b.txt': 'b\n', 'late.txt': 'v1\n' });
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['x'] };
  return { store, ctxDir, opts };
}

test('rebuild: a fully cached rebuild takes no store lock and makes no temp dir (so mounts nothing)', async (t) => {
  const { store, opts } = await setup(t);
  const first = await buildCollect(opts);
  const tmpBefore = await stat(store.tmpDir, { bigint: true });
  // Held for the whole rebuild: a rebuild that wanted the lock would wait here until ava's timeout.
  const lock = await acquireLock(store.lockPath);
  try {
    const second = await buildCollect(opts);
    t.true(second.result.steps.every((s) => s.cached));
    t.is(second.result.id, first.result.id);
  } finally {
    await lock.release();
  }
  // every mount (RUN, COPY, WORKDIR) lives in a temp dir under tmp/: none was made or removed
  t.is((await stat(store.tmpDir, { bigint: true })).mtimeNs, tmpBefore.mtimeNs);
});

test('rebuild: a changed late-copied file writes one new layer; earlier steps hit', async (t) => {
  const { store, ctxDir, opts } = await setup(t);
  await buildCollect(opts);
  const blobsBefore = new Set(await readdir(store.blobsDir));
  await writeFile(path.join(ctxDir, 'late.txt'), 'v2\n');
  const second = await buildCollect(opts);
  t.deepEqual(second.result.steps.map((s) => s.cached), [true, true, true, false, false]);
  t.regex(second.misses.get(4) ?? '', /late\.txt content/);
  const added = (await readdir(store.blobsDir)).filter((b) => !blobsBefore.has(b));
  // the COPY's layer, the image config and the manifest
  t.is(added.length, 3);
  t.is(second.result.steps.filter((s) => s.layer !== undefined && !s.cached).length, 1);
});

test('rebuild: the stat index is saved once the build ends, with content digests and tarsums of the copied files', async (t) => {
  const { store, ctxDir, opts } = await setup(t);
  await buildCollect(opts);
  const dir = path.join(store.cacheDir, 'stat-indexes');
  const files = await readdir(dir);
  t.is(files.length, 1);
  const lines = (await readFile(path.join(dir, files[0]!), 'utf8')).trim().split('\n');
  t.is(lines[0], 'tsbuild-stat-index v2');
  const byPath = new Map(lines.slice(1).map((l) => { const f = l.split('\t'); return [f[3], f] as const; }));
  for (const rel of ['early/a.txt', 'early/b.txt', 'late.txt']) {
    const f = byPath.get(path.join(ctxDir, rel));
    t.truthy(f, `${rel} is in the index`);
    t.regex(f![1]!, /^[0-9a-f]{64}$/, `${rel}: content digest`);
    t.regex(f![2]!, /^[0-9a-f]{64}$/, `${rel}: tarsum for the history`);
  }
});
