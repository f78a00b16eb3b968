import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { acquireLock as acquire, load, Store, type LockOptions } from '../src/index.js';

async function lockFile(t: { teardown(f: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ls-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'x.lock');
}

/** Whether another process could take the lock right now (`flock -n` fails while it is held). */
const freeForOthers = (file: string): boolean => spawnSync('flock', ['-n', file, 'true']).status === 0;

// Each behaviour with the flock(2) system call (@tsbuild/sys) and with the flock(1) helper alone
// (where the addon is not built).
for (const how of ['flock(2)', 'flock(1)'] as const) {
  const acquireLock = (file: string, opts: LockOptions = {}) => acquire(file, how === 'flock(1)' ? { ...opts, sys: null } : opts);

  test(`acquireLock (${how}): held against other processes until release; a second holder in the same process waits`, async (t) => {
    const file = await lockFile(t);
    const first = await acquireLock(file);
    t.false(freeForOthers(file));
    const order: string[] = [];
    const second = acquireLock(file).then((l) => (order.push('second'), l));
    await new Promise((r) => setTimeout(r, 50));
    order.push('release');
    await first.release();
    const held = await second;
    t.deepEqual(order, ['release', 'second']);
    t.false(freeForOthers(file));
    await held.release();
    await held.release(); // idempotent
    t.true(freeForOthers(file));
  });

  test(`acquireLock (${how}): an aborted wait rejects with a LockError and holds nothing`, async (t) => {
    const file = await lockFile(t);
    const first = await acquireLock(file);
    const ac = new AbortController();
    const waiting = acquireLock(file, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 30);
    const err = await t.throwsAsync(waiting);
    t.is((err as { code?: string }).code, 'E_LOCK');
    await first.release();
    t.true(freeForOthers(file));
  });

  test(`acquireLock (${how}): a holder that dies releases the lock (no stale lock)`, async (t) => {
    const file = await lockFile(t);
    const script = `import('${new URL('../src/index.js', import.meta.url).href}').then(async (m) => { await m.acquireLock(${JSON.stringify(file)}${how === 'flock(1)' ? ', { sys: null }' : ''}); process.kill(process.pid, 'SIGKILL'); })`;
    const r = spawnSync(process.execPath, ['-e', script]);
    t.is(r.signal, 'SIGKILL');
    t.true(freeForOthers(file));
    const l = await acquireLock(file);
    await l.release();
  });

  test(`acquireLock (${how}) shared: many holders at once; an exclusive one says it waits and gets the lock after the last release`, async (t) => {
    const file = await lockFile(t);
    const a = await acquireLock(file, { shared: true });
    const b = await acquireLock(file, { shared: true });
    t.true(spawnSync('flock', ['-n', '-s', file, 'true']).status === 0, 'another shared holder gets it');
    t.false(freeForOthers(file), 'no exclusive one');
    let waited = 0;
    let got = false;
    const exclusive = acquireLock(file, { onWait: () => waited++ }).then((l) => ((got = true), l));
    await a.release();
    await new Promise((r) => setTimeout(r, 100));
    t.false(got, 'one shared holder is left');
    await b.release();
    const held = await exclusive;
    t.is(waited, 1);
    t.false(spawnSync('flock', ['-n', '-s', file, 'true']).status === 0, 'exclusive now');
    await held.release();
    t.true(freeForOthers(file));
  });
}

test('Store.lease: one shared lock for all holders of a Store, gone with the last release', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ls-lease-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await Store.open(join(dir, 'store'));
  const [x, y] = await Promise.all([store.lease(), store.lease()]);
  t.false(freeForOthers(store.contentLockPath));
  await x.release();
  t.false(freeForOthers(store.contentLockPath), 'y still holds it');
  await y.release();
  await y.release(); // idempotent
  t.true(freeForOthers(store.contentLockPath));
});

test('load holds a content lease while it runs (garbage collection waits), and releases it when it fails', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ls-lease-load-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await Store.open(join(dir, 'store'));
  const input = new PassThrough();
  const loading = load(store, input);
  for (let i = 0; i < 500 && freeForOthers(store.contentLockPath); i++) await new Promise((r) => setTimeout(r, 10));
  t.false(freeForOthers(store.contentLockPath), 'held while the archive is read');
  input.end();
  await t.throwsAsync(loading, { message: /empty/ });
  t.true(freeForOthers(store.contentLockPath), 'released');
});
