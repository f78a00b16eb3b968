/** The IDs a build prints per step (` ---> <id>`) are image IDs, as Docker's classic builder prints them. */
import test from 'ava';
import * as path from 'node:path';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

test("step IDs: FROM's is the base image's ID, the last step's is the built image's, a cached rebuild prints the same", async (t) => {
  const dir = await testDir(t, 'build-ids');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: 'FROM busybox\nRUN echo hi > /hi\nENV A=1\nMAINTAINER someone\nCOPY Dockerfile /df\n' });
  const store = await busyboxStore(dir);
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } };
  const ids = (events: Awaited<ReturnType<typeof buildCollect>>['events']): string[] => events.flatMap((e) => (e.type === 'step-done' ? [e.id] : []));
  const first = await buildCollect(opts);
  const firstIds = ids(first.events);
  t.is(firstIds.length, 5);
  t.is(firstIds[0], (await store.resolveImage('busybox')).id);
  t.is(firstIds.at(-1), first.result.id);
  t.is(new Set(firstIds).size, 5, 'every step has its own image ID');
  const again = await buildCollect(opts);
  t.deepEqual(ids(again.events), firstIds);
});

// dockerd 20.10 commits nothing for a stage with no instruction after FROM: 'FROM busybox' alone
// (also 'FROM busybox AS a / FROM a AS b / FROM b') is tagged as the base image itself, same ID
// and config (Env null: no default PATH added). Checked against dockerd (h1/p18, p21); we
// committed a new image with PATH added.
test('a Dockerfile of FROM alone tags the base image itself, through unchanged stages too', async (t) => {
  const dir = await testDir(t, 'build-ids');
  const store = await busyboxStore(dir);
  const base = await store.resolveImage('busybox');
  for (const text of ['FROM busybox\n', 'FROM busybox AS a\nFROM a AS b\nFROM b\n']) {
    const r = await buildCollect({ store: store.root, contextDir: null, dockerfile: { text }, tags: ['only-from'] });
    t.is(r.result.id, base.id);
    t.is(r.result.manifestDigest, base.manifestDescriptor.digest);
    const tagged = await store.resolveImage('only-from');
    t.is(tagged.id, base.id);
    t.is(tagged.config.config?.Env, undefined);
  }
  // a stage FROM such a stage still gets the default PATH, as Docker's beginStage sets it
  const child = await buildCollect({ store: store.root, contextDir: null, dockerfile: { text: 'FROM busybox AS a\nFROM a\nENV X=1\n' } });
  const img = await store.resolveImage(child.result.id);
  t.deepEqual(img.config.config?.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'X=1']);
});

// dockerd 20.10: FROM scratch prints ' ---> ' with no ID, and a target that is FROM scratch
// alone fails 'No image was generated. Is your Dockerfile empty?' (checked, h1/p23, p26, p27)
test('FROM scratch has no ID; FROM scratch alone generates no image', async (t) => {
  const dir = await testDir(t, 'build-ids');
  const store = await busyboxStore(dir);
  const r = await buildCollect({ store: store.root, contextDir: null, dockerfile: { text: 'FROM scratch\nENV A=1\n' } });
  t.deepEqual(r.events.flatMap((e) => (e.type === 'step-done' ? [e.id === '' ? '' : 'id'] : [])), ['', 'id']);
  for (const text of ['FROM scratch\n', 'FROM busybox\nFROM scratch\n']) {
    await t.throwsAsync(buildCollect({ store: store.root, contextDir: null, dockerfile: { text } }), { message: 'No image was generated. Is your Dockerfile empty?' });
  }
  // a --label step is an instruction: the image is made
  const labelled = await buildCollect({ store: store.root, contextDir: null, dockerfile: { text: 'FROM scratch\n' }, labels: { a: 'b' } });
  t.truthy(labelled.result.id);
});

// dockerd 20.10 (checked, h1/x6): the second HEALTHCHECK's step prints
// 'Note: overriding previous HEALTHCHECK: [CMD a]' on the build output, a cached rebuild too
test('HEALTHCHECK over an earlier one prints the override note in its step', async (t) => {
  const dir = await testDir(t, 'build-ids');
  const opts = { store: path.join(dir, 'store'), contextDir: null, dockerfile: { text: 'FROM scratch\nHEALTHCHECK CMD ["a"]\nHEALTHCHECK CMD b\n' } };
  for (let run = 0; run < 2; run++) {
    const r = await buildCollect(opts);
    const logs = r.events.flatMap((e) => (e.type === 'step-log' ? [[e.index, e.stream, Buffer.from(e.bytes).toString()]] : []));
    t.deepEqual(logs, [[2, 'stdout', 'Note: overriding previous HEALTHCHECK: [CMD a]\n']]);
  }
});
