import test from 'ava';
import * as path from 'node:path';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

test('repro: two cold builds with sourceDateEpoch into different stores give identical digests', async (t) => {
  const dir = await testDir(t, 'repro');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: 'FROM busybox\nENV GREETING=hello\nCOPY app/ /app/\nRUN mkdir -p /out && echo "$GREETING" > /out/a && cp /app/x.txt /out/b && chmod 600 /out/b\nWORKDIR /srv\nCMD ["cat", "/out/a"]\n',
    'app/x.txt': 'x\n',
  });
  const ids = [];
  for (const name of ['s1', 's2']) {
    const store = await busyboxStore(path.join(dir, name));
    const r = await buildCollect({ store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, sourceDateEpoch: 1700000000, now: () => new Date() });
    ids.push([r.result.id, r.result.manifestDigest, r.result.steps.filter((s) => s.layer).length]);
  }
  t.deepEqual(ids[0], ids[1]);
  t.true((ids[0]?.[2] as number) >= 2, 'COPY and RUN layers included');
});
