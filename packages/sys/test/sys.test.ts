import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { libdeflate, LOCK_EX, LOCK_NB, LOCK_SH, MNT_DETACH, MS_BIND, MS_RDONLY, MS_REC, SysError, sysCalls, type SysCalls } from '../src/index.js';

/** The addon itself, below the typed wrappers (from dist/test/: ../../build). */
const sysAddon = (): unknown => createRequire(import.meta.url)('../../build/Release/tsbuild_sys.node');

/** The addon must be built where the tests run (`npm ci` builds it; it needs python3, make and g++). */
function calls(): SysCalls {
  const sys = sysCalls();
  if (sys === undefined) throw new Error('the @tsbuild/sys addon is not built: run `npm rebuild @tsbuild/sys` (needs python3, make, g++)');
  return sys;
}

async function tempDir(t: { teardown(f: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-sys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A bind mount at `<temp>/target` of `<temp>/src`, which holds a file `f` with `content`. */
async function bindMounted(t: { teardown(f: () => Promise<void>): void }, content: string, flags = 0): Promise<string> {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  const target = join(dir, 'target');
  mkdirSync(src);
  mkdirSync(target);
  writeFileSync(join(src, 'f'), content);
  calls().mount(src, target, null, MS_BIND | flags, null);
  // (teardowns run last first: a failed test's mount goes before its directory)
  t.teardown(async () => {
    if (mountPoints().includes(target)) calls().umount(target, MNT_DETACH);
  });
  return target;
}

const mountPoints = (): string[] => readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');

test('the addon is built, loads, and has every call (an addon built from older sources lacks some)', (t) => {
  t.not(sysCalls(), undefined);
  const raw = sysAddon() as Record<string, unknown>;
  for (const f of ['flock', 'mount', 'umount2', 'umount2Async', 'strerror', 'gzipMember', 'gzipMemberSync', 'libdeflateLoaded', 'libdeflatePath', 'lstatBatch']) t.is(typeof raw[f], 'function', f);
});

test('flock: a free lock is taken at once; a conflicting one is refused without waiting, shared ones coexist', async (t) => {
  const sys = calls();
  const file = join(await tempDir(t), 'x.lock');
  const a = openSync(file, 'a');
  const b = openSync(file, 'a');
  const c = openSync(file, 'a');
  try {
    t.true(sys.flock(a, LOCK_SH | LOCK_NB));
    t.true(sys.flock(b, LOCK_SH | LOCK_NB), 'two shared holders');
    t.false(sys.flock(c, LOCK_EX | LOCK_NB), 'no exclusive one beside them');
    t.is(spawnSync('flock', ['-n', file, 'true']).status, 1, 'another process sees it taken');
    closeSync(a);
    closeSync(b);
    t.true(sys.flock(c, LOCK_EX | LOCK_NB), 'free once the shared holders close');
    t.is(spawnSync('flock', ['-n', '-s', file, 'true']).status, 1);
  } finally {
    closeSync(c);
  }
  t.is(spawnSync('flock', ['-n', file, 'true']).status, 0, 'closing the descriptor releases it');
});

test('flock: a bad descriptor is a SysError with errno EBADF', (t) => {
  const err = t.throws(() => calls().flock(987654, LOCK_EX | LOCK_NB), { instanceOf: SysError });
  t.is(err?.code, 'EBADF');
  t.is(err?.syscall, 'flock');
});

test('mount and umount: a read-only bind mount shows the source, refuses writes, and is gone after umount', async (t) => {
  const sys = calls();
  const target = await bindMounted(t, 'hello', MS_REC);
  try {
    sys.mount(null, target, null, MS_BIND | MS_RDONLY | 32 /* MS_REMOUNT */, null);
    t.true(mountPoints().includes(target));
    t.is(readFileSync(join(target, 'f'), 'utf8'), 'hello');
    t.throws(() => writeFileSync(join(target, 'g'), 'x'), { code: 'EROFS' });
  } finally {
    sys.umount(target);
  }
  t.false(mountPoints().includes(target));
  const err = t.throws(() => sys.umount(target), { instanceOf: SysError });
  t.is(err?.code, 'EINVAL', 'not a mount point any more');
  t.regex(err!.message, new RegExp(`^umount ${target}: .+ \\(EINVAL\\)$`));
});

test('umount of a busy mount fails with EBUSY; MNT_DETACH detaches it', async (t) => {
  const sys = calls();
  const target = await bindMounted(t, 'x');
  const fd = openSync(join(target, 'f'), 'r');
  try {
    t.is(t.throws(() => sys.umount(target), { instanceOf: SysError })?.code, 'EBUSY');
    sys.umount(target, MNT_DETACH);
    t.false(mountPoints().includes(target));
  } finally {
    closeSync(fd);
  }
});

test('mount of a missing source is a SysError with errno ENOENT naming the target', async (t) => {
  const dir = await tempDir(t);
  mkdirSync(join(dir, 'target'));
  const err = t.throws(() => calls().mount(join(dir, 'nope'), join(dir, 'target'), null, MS_BIND, null), { instanceOf: SysError });
  t.is(err?.code, 'ENOENT');
  t.regex(err!.message, /^mount .*target: /);
});

test('bad arguments throw an error instead of crashing the process', (t) => {
  const sys = sysCalls() as unknown as { flock(a: unknown, b: unknown): boolean };
  t.throws(() => sys.flock('x', 'y'));
});

test('umountAsync unmounts on the thread pool; a busy mount rejects with EBUSY, one not mounted with EINVAL', async (t) => {
  const sys = calls();
  const target = await bindMounted(t, 'x');
  const fd = openSync(join(target, 'f'), 'r');
  try {
    const busy = await t.throwsAsync(sys.umountAsync(target), { instanceOf: SysError });
    t.is(busy?.code, 'EBUSY');
    t.true(mountPoints().includes(target));
  } finally {
    closeSync(fd);
  }
  await sys.umountAsync(target);
  t.false(mountPoints().includes(target));
  const gone = await t.throwsAsync(sys.umountAsync(target), { instanceOf: SysError });
  t.is(gone?.code, 'EINVAL');
});

test('a path with a NUL byte is refused, not cut short', async (t) => {
  const sys = calls();
  const dir = await tempDir(t);
  mkdirSync(join(dir, 'target'));
  t.throws(() => sys.umount(`${join(dir, 'target')}\0/ignored`));
  t.throws(() => sys.mount(dir, `${join(dir, 'target')}\0x`, null, MS_BIND, null));
  t.false(mountPoints().includes(join(dir, 'target')));
});

test('libdeflate: loaded (Debian libdeflate0), from a file the loader names; gzipMember refuses a missing callback and overlapping buffers', async (t) => {
  const d = libdeflate();
  if (d === undefined) throw new Error('libdeflate.so.0 did not load: apt-get install libdeflate0 (scripts/install-system-deps.sh does)');
  t.regex(d.path ?? '', /libdeflate\.so/);
  const raw = sysAddon() as { gzipMember(i: Buffer, l: number, o: Buffer, cb: unknown): void };
  const buf = Buffer.alloc(4096, 'a');
  t.throws(() => raw.gzipMember(Buffer.from('abc'), 6, Buffer.alloc(100), 42), { message: /done must be a function/ });
  t.throws(() => raw.gzipMember(buf.subarray(0, 1000), 6, buf.subarray(500), () => undefined), { message: /must not overlap/ });
  const out = Buffer.alloc(200);
  const n = await d.gzipMember(Buffer.from('hello hello hello'), 6, out);
  t.is(gunzipSync(out.subarray(0, n)).toString(), 'hello hello hello');
});
