/**
 * A no-change rebuild writes nothing to the store (no record, pointer, stat index, blob or
 * index.json rewritten), except a record's `lastUsed` once it is older than an hour.
 */
import test from 'ava';
import { readdir, readFile, lstat } from 'node:fs/promises';
import * as path from 'node:path';
import { LAST_USED_RESOLUTION_MS } from '../src/build/cache.js';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

/** Every path under `dir` with what a write would change: inode, size, mtime. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const s = await lstat(p, { bigint: true });
      out.set(path.relative(dir, p), e.isDirectory() ? 'dir' : `${s.ino}:${s.size}:${s.mtimeNs}`);
      if (e.isDirectory() && !p.startsWith(path.join(dir, 'snapshots'))) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort();
}

test('cache: a no-change rebuild writes nothing to the store; lastUsed is refreshed once it is an hour old', async (t) => {
  const dir = await testDir(t, 'nochange');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: 'FROM busybox\nENV A=1\nWORKDIR /app\nCOPY app/ /app/\nRUN cat /app/a.js > /copied\nCMD ["sh"]\n',
    'app/a.js': 'a1\n',
  });
  const opts = { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, tags: ['x'] };
  const at = (ms: number) => () => new Date(ms);
  const first = await buildCollect({ ...opts, now: at(0) });
  t.true(first.result.steps.every((s) => !s.cached));

  const before = await snapshot(store.root);
  const second = await buildCollect({ ...opts, now: at(LAST_USED_RESOLUTION_MS - 1) });
  t.true(second.result.steps.every((s) => s.cached));
  t.is(second.result.manifestDigest, first.result.manifestDigest);
  t.deepEqual(changed(before, await snapshot(store.root)), [], 'nothing written');

  const third = await buildCollect({ ...opts, now: at(LAST_USED_RESOLUTION_MS + 1) });
  t.true(third.result.steps.every((s) => s.cached));
  const rewritten = changed(before, await snapshot(store.root));
  t.is(rewritten.length, 5, rewritten.join(' '));
  t.true(rewritten.every((p) => /^cache\/[0-9a-f]{64}\.json$/.test(p)), rewritten.join(' '));
  for (const p of rewritten) {
    const rec = JSON.parse(await readFile(path.join(store.root, p), 'utf8')) as { lastUsed: string };
    t.is(rec.lastUsed, new Date(LAST_USED_RESOLUTION_MS + 1).toISOString());
  }
});
