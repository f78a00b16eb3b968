import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../src/index.js';

async function lockFile(t: { teardown(f: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ls-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'x.lock');
}

/** Whether another process could take the lock right now (`flock -n` fails while it is held). */
const freeForOthers = (file: string): boolean => spawnSync('flock', ['-n', file, 'true']).status === 0;

test('acquireLock: held against other processes until release; a second holder in the same process waits', async (t) => {
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

test('acquireLock: an aborted wait rejects with a LockError and holds nothing', async (t) => {
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

test('acquireLock: a holder that dies releases the lock (no stale lock)', async (t) => {
  const file = await lockFile(t);
  const script = `import('${new URL('../src/index.js', import.meta.url).href}').then(async (m) => { await m.acquireLock(${JSON.stringify(file)}); process.kill(process.pid, 'SIGKILL'); })`;
  const r = spawnSync(process.execPath, ['-e', script]);
  t.is(r.signal, 'SIGKILL');
  t.true(freeForOthers(file));
  const l = await acquireLock(file);
  await l.release();
});
