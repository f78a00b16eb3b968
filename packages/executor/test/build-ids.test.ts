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
