import test, { type ExecutionContext } from 'ava';
import { chmod, chown, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { prune, pruneCache, removeImage, Store } from '@tsbuild/layer-store';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

const DOCKERFILE = `FROM busybox
ENV A=1
COPY app/ /app/
RUN cat /app/a.js > /copied
ARG VERSION=1.0
RUN echo $VERSION > /version
CMD ["sh"]
`;

async function setup(t: ExecutionContext) {
  const dir = await testDir(t, 'cache');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: DOCKERFILE, 'app/a.js': 'a1\n', 'app/b.js': 'b\n', 'app/ignored.txt': 'x', '.dockerignore': 'app/ignored.txt\n' });
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['x'] };
  return { dir, store, ctxDir, opts };
}

test('cache: a no-change rebuild hits every step, runs nothing and gives the same image', async (t) => {
  const { opts } = await setup(t);
  const first = await buildCollect(opts);
  t.true(first.result.steps.every((s) => !s.cached));
  t.is(first.misses.get(1), 'no previous record');
  const second = await buildCollect(opts);
  t.deepEqual(second.result.steps.map((s) => s.cached), second.result.steps.map(() => true));
  t.false(second.events.some((e) => e.type === 'step-log'));
  t.is(second.result.id, first.result.id);
  t.is(second.result.manifestDigest, first.result.manifestDigest);
});

test('cache: records live in cache/<key>.json with blobs, inputs and lastUsed', async (t) => {
  const { store, opts } = await setup(t);
  await buildCollect(opts);
  const names = (await readdir(store.cacheDir)).filter((n) => n.endsWith('.json'));
  t.is(names.length, 6);
  const recs = await Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(store.cacheDir, n), 'utf8'))));
  const copy = recs.find((r) => r.inputs.kind === 'COPY');
  t.is(copy.blobs.length, 1);
  t.regex(copy.inputs.sources, /^sha256:/);
  t.true(await store.hasBlob(copy.blobs[0]));
  t.false(Number.isNaN(Date.parse(copy.lastUsed)));
  t.true(names.includes(`${copy.key.slice(7)}.json`));
});

test('cache: mtime changes and edits of ignored files do not miss', async (t) => {
  const { ctxDir, opts } = await setup(t);
  await buildCollect(opts);
  await utimes(path.join(ctxDir, 'app/a.js'), new Date(5e9), new Date(5e9));
  await writeFile(path.join(ctxDir, 'app/ignored.txt'), 'changed');
  const again = await buildCollect(opts);
  t.true(again.result.steps.every((s) => s.cached));
});

test('cache: an owner change of a context file does not miss (Docker\'s CLI sends the context as 0:0); a mode change does', async (t) => {
  const { ctxDir, opts } = await setup(t);
  const first = await buildCollect(opts);
  await chown(path.join(ctxDir, 'app/a.js'), 1234, 5678);
  const again = await buildCollect(opts);
  t.true(again.result.steps.every((s) => s.cached));
  t.is(again.result.id, first.result.id);
  await chmod(path.join(ctxDir, 'app/a.js'), 0o600);
  t.deepEqual((await buildCollect(opts)).result.steps.map((s) => s.cached), [true, false, false, false, false, false]);
});

test('cache: a content edit misses COPY with the file named, and later steps say their parent missed', async (t) => {
  const { ctxDir, opts } = await setup(t);
  await buildCollect(opts);
  await writeFile(path.join(ctxDir, 'app/a.js'), 'a2\n');
  const again = await buildCollect(opts);
  t.deepEqual(again.result.steps.map((s) => s.cached), [true, false, false, false, false, false]);
  t.is(again.misses.get(2), 'COPY app/ changed: app/a.js content');
  t.is(again.misses.get(3), 'parent step 3 missed');
});

test('cache: a build arg change is explained on the RUN that sees it', async (t) => {
  const { opts } = await setup(t);
  await buildCollect({ ...opts, buildArgs: { VERSION: '1.2' } });
  const again = await buildCollect({ ...opts, buildArgs: { VERSION: '1.3' } });
  t.deepEqual(again.result.steps.map((s) => s.cached), [true, true, true, true, false, false]);
  t.is(again.misses.get(5), 'RUN: build arg VERSION 1.2→1.3');
  t.is(again.misses.get(6), 'parent step 6 missed');
});

test('cache: an undeclared proxy build arg is not in the key (Docker 20.10: its RUN command lists only declared args), only the |0 prefix is', async (t) => {
  const dir = await testDir(t, 'cache-proxy');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: 'FROM busybox\nRUN env | grep -i proxy > /p || true\nARG http_proxy\nRUN echo b\n' });
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['x'] };
  const cached = async (buildArgs: Record<string, string>) => (await buildCollect({ ...opts, buildArgs })).result.steps.map((s) => s.cached);
  t.deepEqual(await cached({}), [false, false, false]);
  // HTTP_PROXY appears: Docker's command becomes '|0 /bin/sh -c ...', a miss
  const withProxy = await buildCollect({ ...opts, buildArgs: { HTTP_PROXY: 'http://a:1', http_proxy: 'http://x:1' } });
  t.deepEqual(withProxy.result.steps.map((s) => s.cached), [false, false, false]);
  t.is(withProxy.misses.get(1), 'RUN: an undeclared proxy build arg was given');
  // another undeclared HTTP_PROXY value: every step hits; the declared http_proxy changing misses only after its ARG
  t.deepEqual(await cached({ HTTP_PROXY: 'http://b:2', http_proxy: 'http://x:1' }), [true, true, true]);
  t.deepEqual(await cached({ HTTP_PROXY: 'http://b:2', http_proxy: 'http://y:1' }), [true, true, false]);
});

test('cache: COPY --from hits when the files it selects are the same though its stage was rebuilt (Docker keys it by their hash), and misses when they change', async (t) => {
  const dir = await testDir(t, 'cache-from');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  const dockerfile = (mode: string, a: string) =>
    `FROM busybox AS a\nENV MODE=${mode}\nRUN mkdir /d && echo ${a} > /d/a && echo $MODE > /mode\nFROM busybox\nRUN echo final > /f\nCOPY --from=a /d /d/\nRUN cat /d/a > /after\n`;
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['x'] };
  const finalStage = (r: Awaited<ReturnType<typeof buildCollect>>) => r.result.steps.slice(-3).map((s) => s.cached);
  await writeFiles(ctxDir, { Dockerfile: dockerfile('one', 'same') });
  const first = await buildCollect(opts);
  await writeFiles(ctxDir, { Dockerfile: dockerfile('two', 'same') });
  const rebuilt = await buildCollect(opts);
  t.deepEqual(rebuilt.result.steps.map((s) => s.cached), [false, false, true, true, true]);
  t.is(rebuilt.result.id, first.result.id);
  // and again from the diffIDs of the rebuilt stage (which now miss by rootfs, hit by content)
  t.deepEqual(finalStage(await buildCollect(opts)), [true, true, true]);
  await writeFiles(ctxDir, { Dockerfile: dockerfile('three', 'other') });
  const changed = await buildCollect(opts);
  t.deepEqual(finalStage(changed), [true, false, false]);
  t.not(changed.result.id, first.result.id);
});

test('cache: a changed instruction says so; a new step has no previous record', async (t) => {
  const { ctxDir, opts } = await setup(t);
  await buildCollect(opts);
  await writeFile(path.join(ctxDir, 'Dockerfile'), DOCKERFILE.replace('RUN cat /app/a.js > /copied', 'RUN cat /app/b.js > /copied') + 'RUN true\n');
  const again = await buildCollect(opts);
  t.is(again.misses.get(3), 'instruction text changed (was: RUN cat /app/a.js > /copied)');
  t.is(again.misses.get(4), 'parent step 4 missed');
  t.is(again.misses.get(7), 'no previous record');
  const third = await buildCollect(opts);
  t.true(third.result.steps.every((s) => s.cached));
});

test('cache: survives rmi and prune of the image that made it', async (t) => {
  const { store, opts } = await setup(t);
  const first = await buildCollect(opts);
  await removeImage(store, 'x');
  await prune(store);
  const reopened = await Store.open(store.root);
  for (const s of first.result.steps) if (s.layer) t.true(await reopened.hasBlob(s.layer), `layer of step ${s.index} kept`);
  const again = await buildCollect(opts);
  t.true(again.result.steps.every((s) => s.cached));
  t.is(again.result.id, first.result.id);
});

test('cache: --no-cache looks nothing up but still records; --no-cache-filter skips only that stage', async (t) => {
  const { ctxDir, opts } = await setup(t);
  await writeFile(path.join(ctxDir, 'Dockerfile'), 'FROM busybox AS base\nRUN echo one > /one\nFROM base AS final\nRUN echo two > /two\n');
  await buildCollect(opts);
  const none = await buildCollect({ ...opts, noCache: true });
  t.true(none.result.steps.every((s) => !s.cached));
  const filtered = await buildCollect({ ...opts, noCacheFilter: ['final'] });
  t.deepEqual(filtered.result.steps.map((s) => [s.stage, s.cached]), [[0, true], [1, false]]);
  const all = await buildCollect(opts);
  t.true(all.result.steps.every((s) => s.cached));
});

test('cache: pruneCache removes records by age, by storage (LRU) and all, then collects garbage', async (t) => {
  const { store, opts } = await setup(t);
  const first = await buildCollect(opts);
  const records = async () => (await readdir(store.cacheDir)).filter((n) => n.endsWith('.json')).length;
  t.is((await pruneCache(store, { usedBefore: new Date(-1000) })).recordsDeleted, 0);
  const byStorage = await pruneCache(store, { keepStorage: 0 });
  t.is(byStorage.recordsDeleted, 3, 'the three records that keep a layer');
  t.is(await records(), 3);
  await removeImage(store, 'x');
  const all = await pruneCache(store);
  t.is(all.recordsDeleted, 3);
  t.is(await records(), 0);
  const layer = first.result.steps.find((s) => s.layer)?.layer;
  t.false(await store.hasBlob(layer as never), 'layers only the cache kept are collected');
});
