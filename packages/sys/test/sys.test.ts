import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { fastFs, libdeflate, poolSha256, LSTAT_FIELDS, LOCK_EX, LOCK_NB, LOCK_SH, MNT_DETACH, MS_BIND, MS_RDONLY, MS_REC, SysError, sysCalls, type SysCalls } from '../src/index.js';

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
  for (const f of ['flock', 'mount', 'umount2', 'umount2Async', 'strerror', 'gzipMember', 'gzipMemberSync', 'libdeflateLoaded', 'libdeflatePath', 'lstatBatch', 'readFileInto', 'linkBatchAsync', 'fillBlockAsync', 'sha256Available', 'sha256Init', 'sha256Digest', 'sha256UpdateAsync']) t.is(typeof raw[f], 'function', f);
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

test('lstatBatch: the fields of Node\'s bigint lstat, mtime and ctime to the nanosecond; no llistxattr when xattrs is false', async (t) => {
  const fast = fastFs();
  if (fast === undefined) return t.fail('the addon is not built');
  const dir = await mkdtemp(join(tmpdir(), 'sys-lstat-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f'), 'hello');
  utimesSync(join(dir, 'f'), 1_000_000_000.123456, 1_500_000_000.987654);
  symlinkSync('f', join(dir, 'l'));
  const names = ['f', 'l', 'missing'];
  const out = new BigUint64Array(names.length * LSTAT_FIELDS);
  t.is(fast.lstatBatch(`${dir}/`, names, out), 3);
  for (const [i, n] of ['f', 'l'].entries()) {
    const st = lstatSync(join(dir, n), { bigint: true });
    const o = i * LSTAT_FIELDS;
    t.deepEqual([out[o], out[o + 1], out[o + 2], out[o + 3], BigInt.asIntN(64, out[o + 4]!), out[o + 5], out[o + 6], out[o + 7], out[o + 8], out[o + 11], BigInt.asIntN(64, out[o + 12]!), BigInt.asIntN(64, out[o + 13]!)], [st.mode, st.uid, st.gid, st.size, st.mtimeMs, st.nlink, st.dev, st.ino, st.rdev, 0n, st.mtimeNs, st.ctimeNs], n);
  }
  t.is(out[2 * LSTAT_FIELDS + 11], 2n, 'ENOENT');
  const bare = new BigUint64Array(LSTAT_FIELDS);
  t.is(fast.lstatBatch(`${dir}/`, ['f'], bare, false), 1);
  t.is(bare[10], 0n, 'not asked');
  t.is(bare[3], 5n);
  // a NUL would cut the path short: refused, not another file's lstat
  t.is(fast.lstatBatch(`${dir}/`, ['f\0x'], bare), 1);
  t.is(bare[11], 22n);
});

test('readFileInto: a file\'s bytes at an offset; shorter and longer files say so; errors are negative errnos', async (t) => {
  const fast = fastFs();
  if (fast === undefined) return t.fail('the addon is not built');
  const dir = await mkdtemp(join(tmpdir(), 'sys-read-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = randomBytes(70_000);
  writeFileSync(join(dir, 'f'), data);
  symlinkSync('f', join(dir, 'l'));
  const buf = Buffer.alloc(100_000, 7);
  t.is(fast.readFileInto(join(dir, 'f'), buf, 10, 70_000), 70_000);
  t.true(buf.subarray(10, 70_010).equals(data));
  t.is(buf[9], 7);
  t.is(buf[70_010], 7, 'nothing written past the length');
  t.is(fast.readFileInto(join(dir, 'f'), buf, 0, 80_000), 70_000, 'shorter');
  buf.fill(7);
  t.is(fast.readFileInto(join(dir, 'f'), buf, 0, 69_999), 70_000, 'longer: length + 1');
  t.is(buf[69_999], 7, 'the extra byte is not put into the buffer');
  t.is(fast.readFileInto(join(dir, 'missing'), buf, 0, 1), -2);
  t.is(fast.readFileInto(join(dir, 'l'), buf, 0, 1), -40, 'ELOOP: a symlink is not followed');
  t.is(fast.readFileInto(`${join(dir, 'f')}\0x`, buf, 0, 1), -22, 'EINVAL: a NUL in the path');
  t.throws(() => fast.readFileInto(join(dir, 'f'), buf, 99_999, 2), { instanceOf: TypeError });
});

test('poolSha256: node:crypto\'s digests; pieces hashed in order, each one\'s callback after it is hashed', async (t) => {
  if (poolSha256() === undefined) return t.fail('no sha256 on the pool (addon not built, or node exports no SHA256_Init)');
  const data = randomBytes(3_000_017);
  for (const cuts of [[], [0], [1, 63, 64, 65], [1_048_576, 2_097_152], [5, 2_999_999]]) {
    const h = poolSha256()!;
    const hashed: number[] = [];
    let at = 0;
    for (const [i, cut] of [...cuts, data.length].entries()) {
      h.update(data.subarray(at, cut), () => hashed.push(i));
      at = cut;
    }
    t.is((await h.digest()).toString('hex'), createHash('sha256').update(data).digest('hex'), cuts.join(','));
    t.deepEqual(hashed, [...cuts, 0].map((_, i) => i));
  }
  // updates queued while a job runs are taken by the next one; a digest waits for all of them
  const h = poolSha256()!;
  for (let i = 0; i < 50; i++) h.update(data.subarray(i * 60_000, (i + 1) * 60_000));
  t.is((await h.digest()).toString('hex'), createHash('sha256').update(data.subarray(0, 3_000_000)).digest('hex'));
  t.is((await poolSha256()!.digest()).toString('hex'), createHash('sha256').digest('hex'));
});

test('sha256 state checks: a buffer that is no state is a TypeError, not a crash', (t) => {
  const raw = sysAddon() as { sha256Init(s: Buffer): void; sha256UpdateAsync(s: Buffer, d: unknown, cb: unknown): void };
  const none = (): undefined => undefined;
  t.throws(() => raw.sha256UpdateAsync(Buffer.alloc(111), [Buffer.from('x')], none), { instanceOf: TypeError });
  const state = Buffer.alloc(112);
  raw.sha256Init(state);
  state.writeUInt32LE(64, 104); // num: bytes buffered, below 64 in any real state
  t.throws(() => raw.sha256UpdateAsync(state, [Buffer.from('x')], none), { instanceOf: TypeError, message: /not a sha256 state/ });
  raw.sha256Init(state);
  t.throws(() => raw.sha256UpdateAsync(state, 'text', none), { instanceOf: TypeError });
  t.throws(() => raw.sha256UpdateAsync(state, ['text'], () => undefined), { instanceOf: TypeError });
  t.throws(() => raw.sha256UpdateAsync(state, [Buffer.from('x')], undefined), { instanceOf: TypeError });
});

test('linkBatch: links in order on the thread pool, each errno reported (EEXIST, ENOENT) without stopping', async (t) => {
  const fast = fastFs();
  if (fast === undefined) return t.fail('the addon is not built');
  const dir = await mkdtemp(join(tmpdir(), 'sys-link-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a'), 'a');
  writeFileSync(join(dir, 'taken'), 't');
  const errnos = await fast.linkBatch([join(dir, 'a'), join(dir, 'a'), join(dir, 'missing'), join(dir, 'a')], [join(dir, 'b'), join(dir, 'taken'), join(dir, 'c'), join(dir, 'd')]);
  t.deepEqual([...errnos], [0, 17, 2, 0]);
  t.is(lstatSync(join(dir, 'b')).ino, lstatSync(join(dir, 'a')).ino);
  t.is(lstatSync(join(dir, 'a')).nlink, 3);
  t.is(readFileSync(join(dir, 'taken'), 'utf8'), 't');
  await t.throwsAsync(fast.linkBatch([join(dir, 'a')], [`${join(dir, 'e')}\0x`]), { instanceOf: TypeError });
  await t.throwsAsync(fast.linkBatch([join(dir, 'a')], []), { instanceOf: TypeError });
  t.deepEqual([...(await fast.linkBatch([], []))], []);
});

test('fillBlock: pieces of files read into a block on the thread pool; short, long and missing files are problems', async (t) => {
  const fast = fastFs();
  if (fast === undefined) return t.fail('the addon is not built');
  const dir = await mkdtemp(join(tmpdir(), 'sys-fill-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = randomBytes(3000);
  const b = randomBytes(10);
  writeFileSync(join(dir, 'a'), a);
  writeFileSync(join(dir, 'b'), b);
  symlinkSync('a', join(dir, 'l'));
  const block = Buffer.alloc(4096, 9);
  const pa = join(dir, 'a');
  t.is(await fast.fillBlock(block, [{ path: pa, size: 3000, from: 1000, at: 0, length: 2000 }, { path: join(dir, 'b'), size: 10, from: 0, at: 2000, length: 10 }]), undefined);
  t.true(block.subarray(0, 2000).equals(a.subarray(1000)));
  t.true(block.subarray(2000, 2010).equals(b));
  t.is(block[2010], 9, 'nothing past the pieces');
  // a piece in the middle of a file does not check its end; the last one does
  t.is(await fast.fillBlock(block, [{ path: pa, size: 3000, from: 0, at: 0, length: 100 }]), undefined);
  t.deepEqual(await fast.fillBlock(block, [{ path: pa, size: 2999, from: 0, at: 0, length: 2999 }]), { piece: 0, kind: 'long' });
  t.deepEqual(await fast.fillBlock(block, [{ path: pa, size: 3001, from: 2000, at: 0, length: 1001 }]), { piece: 0, kind: 'short', end: 3000 });
  t.deepEqual(await fast.fillBlock(block, [{ path: join(dir, 'b'), size: 10, from: 0, at: 0, length: 10 }, { path: join(dir, 'missing'), size: 1, from: 0, at: 10, length: 1 }]), { piece: 1, kind: 'errno', errno: 2 });
  t.deepEqual(await fast.fillBlock(block, [{ path: join(dir, 'l'), size: 1, from: 0, at: 0, length: 1 }]), { piece: 0, kind: 'errno', errno: 40 });
  await t.throwsAsync(fast.fillBlock(block, [{ path: pa, size: 3000, from: 0, at: 4000, length: 100 }]), { instanceOf: RangeError });
  await t.throwsAsync(fast.fillBlock(block, [{ path: pa, size: 10, from: 5, at: 0, length: 10 }]), { instanceOf: RangeError });
  await t.throwsAsync(fast.fillBlock(block, [{ path: `${pa}\0`, size: 1, from: 0, at: 0, length: 1 }]), { instanceOf: TypeError });
});
