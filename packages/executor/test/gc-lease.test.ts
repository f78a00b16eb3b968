/**
 * Garbage collection during a build: the build holds the store's content lease from its first
 * mount to its end, so a concurrent prune waits instead of removing the snapshots the build has
 * mounted (which made files vanish under a running RUN).
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { exportImage, mountsUnder, prune, pruneCache } from '@tsbuild/layer-store';
import { Writable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { build } from '../src/index.js';
import { busyboxStore, testDir, writeFiles } from './cache-helpers.js';

test('prune and prune --cache wait for a running build: its snapshots stay, its RUN sees every file', async (t) => {
  const dir = await testDir(t, 'gc-lease');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: 'FROM busybox\nRUN echo one > /one\nCOPY f /f\nRUN sleep 2 && cat /one /f > /two\nRUN cat /two\n',
    f: 'f\n',
  });
  const order: string[] = [];
  const building = build({ store, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['lease:1'], isolation: 'oci' }).then((r) => {
    order.push('build');
    return r;
  });
  // the third step's RUN is mounted on the snapshots of the two before it
  for (let i = 0; i < 600 && mountsUnder(store.tmpDir).length === 0; i++) await delay(20);
  t.true(mountsUnder(store.tmpDir).length > 0, 'a step is running');
  let waited = 0;
  const pruning = Promise.all([
    prune(store, { onWait: () => waited++ }),
    pruneCache(store, { onWait: () => waited++ }),
  ]).then((r) => {
    order.push('prune');
    return r;
  });
  const [result] = await Promise.all([building, pruning]);
  t.is(waited, 2, 'both said they wait for the build');
  t.deepEqual(order, ['build', 'prune']);
  t.is(result.steps.length, 4);

  const chunks: Buffer[] = [];
  await exportImage(store, 'lease:1', new Writable({ write: (c: Buffer, _e, cb) => void (chunks.push(c), cb()) }));
  const tarFile = path.join(dir, 'x.tar');
  await writeFile(tarFile, Buffer.concat(chunks));
  t.is(execFileSync('tar', ['-xOf', tarFile, 'two']).toString(), 'one\nf\n');
});
