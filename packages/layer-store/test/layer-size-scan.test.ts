/**
 * The incremental tar-header scanner that counts a layer's content size while load and pull hash
 * it: tables of hand-made, tar-stream and GNU tar archives (ustar, PAX, GNU long names and links,
 * base-256 sizes, header-only types), every chunk split of a small archive, and malformed input
 * giving "unknown" (never a throw). Every known answer is also checked against `readTar` (what
 * `countBlobContentSize` uses), so a recorded size equals a computed one.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ContentSizeCounter } from '../src/layer-size.js';
import { ContentSizeScanner, headerNumber } from '../src/layer-size-scan.js';
import { readTar } from '../src/tar.js';
import { makeTar, tempDir } from './archive-fixtures.js';

// ---- hand-made archives ----

interface RawHeader {
  name?: string;
  type: string;
  size?: number;
  linkname?: string;
  /** Replaces the 12-byte size field (e.g. base-256). */
  sizeField?: Buffer;
  /** Replaces the 8-byte mode field. */
  modeField?: string;
  /** Adds this to the checksum (to break it). */
  checksumDelta?: number;
}

/** One ustar header block, with a correct checksum unless asked otherwise. */
function header(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name ?? 'x', 0, 100, 'utf8');
  b.write(h.modeField ?? '0000644\0', 100, 8, 'latin1');
  b.write('0000000\0', 108, 8, 'ascii');
  b.write('0000000\0', 116, 8, 'ascii');
  if (h.sizeField) h.sizeField.copy(b, 124);
  else b.write(`${(h.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
  b.write('00000000000\0', 136, 12, 'ascii');
  b.write(h.type, 156, 1, 'latin1');
  if (h.linkname !== undefined) b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 8, 'ascii');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  sum += h.checksumDelta ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return b;
}

/** Data padded to whole blocks. */
function body(data: Buffer | string): Buffer {
  const d = Buffer.from(data);
  return Buffer.concat([d, Buffer.alloc((512 - (d.length % 512)) % 512)]);
}

/** A PAX body with correct record lengths. */
function paxBody(records: Array<[string, string]>): Buffer {
  return Buffer.concat(
    records.map(([k, v]) => {
      const rest = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(rest) + 1;
      while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
      return Buffer.from(`${len}${rest}`);
    }),
  );
}

function entry(h: RawHeader, data: Buffer | string = ''): Buffer {
  const d = Buffer.from(data);
  return Buffer.concat([header({ ...h, size: h.size ?? d.length }), body(d)]);
}

function pax(type: 'x' | 'g', records: Array<[string, string]>): Buffer {
  return entry({ name: 'PaxHeaders/x', type }, paxBody(records));
}

const END = Buffer.alloc(1024);

/** GNU base-256 encoding of `n` in a 12-byte field. */
function base256(n: number): Buffer {
  const f = Buffer.alloc(12);
  f[0] = 0x80;
  for (let i = 11, v = n; i > 0; i--, v = Math.floor(v / 256)) f[i] = v % 256;
  return f;
}

const long = (c: string, n: number): string => c.repeat(n);

/** [name, archive bytes, expected content size (worked out by hand from what the archive holds)]. */
const knownRows: Array<[string, Buffer, number]> = [
  ['an empty archive', END, 0],
  ['one regular file', Buffer.concat([entry({ name: 'a', type: '0' }, 'hello'), END]), 5],
  ['a NUL typeflag and a contiguous file (7) count as files', Buffer.concat([entry({ name: 'a', type: '\0' }, 'abc'), entry({ name: 'b', type: '7' }, 'defg'), END]), 7],
  ['files of 0, 511, 512 and 513 bytes', Buffer.concat([0, 511, 512, 513].map((n, i) => entry({ name: `f${i}`, type: '0' }, Buffer.alloc(n, 1))).concat(END)), 1536],
  ['a symlink counts its target', Buffer.concat([entry({ name: 'l', type: '2', linkname: '/bin/busybox' }), END]), 12],
  ['a symlink target in UTF-8 bytes', Buffer.concat([entry({ name: 'l', type: '2', linkname: 'sub/ünï' }), END]), 9],
  ['a hard link counts nothing', Buffer.concat([entry({ name: 'a', type: '0' }, 'hello'), entry({ name: 'h', type: '1', linkname: 'a' }), END]), 5],
  ['directories, devices and fifos count nothing', Buffer.concat([entry({ name: 'd/', type: '5' }), entry({ name: 'c', type: '3' }), entry({ name: 'b', type: '4' }), entry({ name: 'p', type: '6' }), END]), 0],
  // As Go's archive/tar and readTar: header-only types carry no data, whatever their size field says.
  ['a directory whose size field is not 0 has no data', Buffer.concat([header({ name: 'd/', type: '5', size: 4096 }), entry({ name: 'a', type: '0' }, 'xy'), END]), 2],
  ['an unknown typeflag is skipped by its size and counts nothing', Buffer.concat([entry({ name: 'v', type: 'V' }, Buffer.alloc(700, 9)), entry({ name: 'a', type: '0' }, 'abc'), END]), 3],
  ['a PAX size overrides the header size', Buffer.concat([pax('x', [['size', '1000']]), header({ name: 'a', type: '0', size: 0 }), body(Buffer.alloc(1000, 2)), END]), 1000],
  ['a PAX linkpath is the symlink target', Buffer.concat([pax('x', [['linkpath', long('t', 150)]]), entry({ name: 'l', type: '2', linkname: long('t', 100) }), END]), 150],
  ['PAX records apply to the next entry only', Buffer.concat([pax('x', [['linkpath', long('t', 150)]]), entry({ name: 'l', type: '2', linkname: 'short' }), entry({ name: 'm', type: '2', linkname: 'abc' }), END]), 153],
  ['two PAX headers merge, the later record wins', Buffer.concat([pax('x', [['size', '5']]), pax('x', [['size', '600'], ['path', long('p', 300)]]), header({ name: 'a', type: '0', size: 5 }), body(Buffer.alloc(600, 3)), END]), 600],
  ['a global PAX size applies to every later file without its own', Buffer.concat([pax('g', [['size', '10']]), header({ name: 'a', type: '0', size: 0 }), body(Buffer.alloc(10)), pax('x', [['size', '20']]), header({ name: 'b', type: '0', size: 0 }), body(Buffer.alloc(20)), header({ name: 'c', type: '0', size: 0 }), body(Buffer.alloc(10)), END]), 40],
  ['PAX xattrs and a long path change nothing', Buffer.concat([pax('x', [['path', long('n', 200)], ['SCHILY.xattr.user.k', 'v'.repeat(3000)]]), entry({ name: 'a', type: '0' }, 'abcd'), END]), 4],
  ['a GNU long name (L) is skipped', Buffer.concat([entry({ name: '././@LongLink', type: 'L' }, `${long('n', 700)}\0`), entry({ name: 'short', type: '0' }, 'abc'), END]), 3],
  ['a GNU long link name (K) is the symlink target (trailing NULs dropped)', Buffer.concat([entry({ name: '././@LongLink', type: 'K' }, `${long('k', 130)}\0`), entry({ name: 'l', type: '2', linkname: long('k', 100) }), END]), 130],
  ['a PAX linkpath wins over a GNU long link', Buffer.concat([entry({ name: '././@LongLink', type: 'K' }, `${long('k', 130)}\0`), pax('x', [['linkpath', 'abc']]), entry({ name: 'l', type: '2', linkname: 'zz' }), END]), 3],
  ['a GNU base-256 size', Buffer.concat([header({ name: 'a', type: '0', sizeField: base256(1234) }), body(Buffer.alloc(1234, 5)), END]), 1234],
  ['one zero block ends the archive (as readTar); what follows is ignored', Buffer.concat([entry({ name: 'a', type: '0' }, 'abc'), Buffer.alloc(512), entry({ name: 'b', type: '0' }, 'defgh'), Buffer.from('garbage')]), 3],
  ['trailing bytes after the end blocks are ignored', Buffer.concat([entry({ name: 'a', type: '0' }, 'abc'), END, Buffer.from('not a tar at all')]), 3],
  ['a mode field with spaces and no NUL', Buffer.concat([entry({ name: 'a', type: '0', modeField: ' 000644 ' }, 'ab'), END]), 2],
];

/** [name, archive bytes]: not a whole well-formed tar, so the size is unknown. */
const unknownRows: Array<[string, Buffer]> = [
  ['no bytes at all', Buffer.alloc(0)],
  ['no end-of-archive block', entry({ name: 'a', type: '0' }, 'abc')],
  ['cut inside a header', Buffer.concat([entry({ name: 'a', type: '0' }, 'abc'), header({ name: 'b', type: '0' }).subarray(0, 300)])],
  ['cut inside data', Buffer.concat([header({ name: 'a', type: '0', size: 2000 }), Buffer.alloc(1000)])],
  ['a bad header checksum', Buffer.concat([entry({ name: 'a', type: '0', checksumDelta: 1 }, 'abc'), END])],
  ['garbage instead of a header', Buffer.concat([entry({ name: 'a', type: '0' }, 'abc'), Buffer.alloc(512, 0x41), END])],
  ['a mode field that is not octal', Buffer.concat([entry({ name: 'a', type: '0', modeField: '00006x4\0' }, 'abc'), END])],
  ['a size field that is not octal', Buffer.concat([header({ name: 'a', type: '0', sizeField: Buffer.from('0000000009z\0') }), END])],
  ['a PAX record with a wrong length', Buffer.concat([entry({ name: 'p', type: 'x' }, '99 size=3\n'), entry({ name: 'a', type: '0' }, 'abc'), END])],
  ['a PAX record without =', Buffer.concat([entry({ name: 'p', type: 'x' }, '9 size3\n\n'), entry({ name: 'a', type: '0' }, 'abc'), END])],
  ['a PAX size that is not a number', Buffer.concat([pax('x', [['size', 'lots']]), header({ name: 'a', type: '0' }), END])],
  ['a PAX header larger than 16 MiB', Buffer.concat([header({ name: 'p', type: 'x', size: 17 * 1024 * 1024 }), END])],
  ['a GNU long name larger than 16 MiB', Buffer.concat([header({ name: 'p', type: 'L', size: 17 * 1024 * 1024 }), END])],
];

function scan(bytes: Buffer, chunks: number[] = []): number | undefined {
  const s = new ContentSizeScanner();
  let pos = 0;
  for (const c of chunks) {
    s.update(bytes.subarray(pos, pos + c));
    pos += c;
  }
  s.update(bytes.subarray(pos));
  return s.size;
}

function scanBytewise(bytes: Buffer): number | undefined {
  const s = new ContentSizeScanner();
  for (let i = 0; i < bytes.length; i++) s.update(bytes.subarray(i, i + 1));
  return s.size;
}

/** What countBlobContentSize computes: readTar's headers summed. */
async function readTarSize(bytes: Buffer): Promise<number> {
  const counter = new ContentSizeCounter();
  for await (const e of readTar(Readable.from([bytes]))) counter.add(e.header);
  return counter.total;
}

for (const [name, bytes, expected] of knownRows) {
  test(`ContentSizeScanner: ${name}`, async (t) => {
    t.is(scan(bytes), expected);
    t.is(scanBytewise(bytes), expected);
    t.is(await readTarSize(bytes), expected, 'readTar agrees');
  });
}

for (const [name, bytes] of unknownRows) {
  test(`ContentSizeScanner: unknown for ${name}`, async (t) => {
    t.is(scan(bytes), undefined);
    t.is(scanBytewise(bytes), undefined);
    // readTar refuses it too (or, for a PAX size that is no number, counts NaN)
    const computed = await readTarSize(bytes).catch(() => undefined);
    t.false(Number.isSafeInteger(computed), `readTar made ${computed} of it`);
  });
}

test('ContentSizeScanner: every split of a small archive into two chunks gives the same size', (t) => {
  const bytes = Buffer.concat([
    pax('g', [['comment', 'x']]),
    entry({ name: '././@LongLink', type: 'L' }, `${long('n', 120)}\0`),
    entry({ name: 'n', type: '0' }, 'hello'),
    entry({ name: '././@LongLink', type: 'K' }, `${long('k', 110)}\0`),
    entry({ name: 'l', type: '2', linkname: 'k' }),
    pax('x', [['size', '700'], ['linkpath', 'ignored for a file']]),
    header({ name: 'big', type: '0', size: 0 }),
    body(Buffer.alloc(700, 4)),
    entry({ name: 'h', type: '1', linkname: 'n' }),
    entry({ name: 's', type: '2', linkname: 'abc' }),
    entry({ name: 'empty-pax', type: 'x' }, ''),
    entry({ name: 'e', type: '0' }, ''),
    END,
  ]);
  const expected = 5 + 110 + 700 + 3;
  t.is(scan(bytes), expected);
  const wrong: number[] = [];
  for (let i = 0; i <= bytes.length; i++) if (scan(bytes, [i]) !== expected) wrong.push(i);
  t.deepEqual(wrong, []);
  t.is(scanBytewise(bytes), expected);
  // and every split of the same archive cut short is unknown
  const cut = bytes.subarray(0, bytes.length - 1024);
  const known: number[] = [];
  for (let i = 0; i <= cut.length; i += 7) if (scan(cut, [i]) !== undefined) known.push(i);
  t.deepEqual(known, []);
});

test('headerNumber reads octal, base-256 and padded fields as readTar does', (t) => {
  const f = (s: string | Buffer): number => {
    const b = Buffer.alloc(12);
    Buffer.from(s).copy(b);
    return headerNumber(b, 0, 12);
  };
  t.is(f('00000001750\0'), 1000);
  t.is(f('  1750  \0'), 1000);
  t.is(f('1750\0garbage'), 1000);
  t.is(f(''), 0);
  t.is(f(base256(2 ** 40 + 5)), 2 ** 40 + 5);
  t.is(f('17a0\0'), -1);
  t.is(f('-1\0'), -1);
});

// ---- archives from real tools ----

/** A tree with long names, long link targets, hard links, non-ASCII names, empty files and a fifo; its content size by hand. */
async function toolTree(t: ExecutionContext): Promise<{ dir: string; expected: number }> {
  const dir = join(await tempDir(t, 'ls-scan-'), 'tree');
  const deep = join(dir, long('d', 120), long('e', 90));
  await mkdir(deep, { recursive: true });
  let expected = 0;
  const file = async (p: string, n: number): Promise<void> => {
    await writeFile(p, Buffer.alloc(n, 120));
    expected += n;
  };
  await file(join(dir, 'a'), 5);
  await file(join(deep, long('f', 150)), 70_000);
  await file(join(dir, 'exact-512'), 512);
  await file(join(dir, 'empty'), 0);
  await file(join(dir, 'ünïcödé'), 33);
  await link(join(dir, 'a'), join(dir, 'hard')); // a link entry: counts nothing
  await link(join(deep, long('f', 150)), join(dir, long('h', 130))); // a long hard link
  for (const target of ['/bin/busybox', long('t', 180), 'ünï/ø', join(long('d', 120), long('e', 90), long('f', 150))]) {
    await symlink(target, join(dir, `link-${expected}`));
    expected += Buffer.byteLength(target);
  }
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  return { dir, expected };
}

for (const format of ['gnu', 'pax', 'posix', 'oldgnu']) {
  test(`ContentSizeScanner: GNU tar --format=${format} archive, whole, bytewise and in odd chunks`, async (t) => {
    const { dir, expected } = await toolTree(t);
    const bytes = execFileSync('tar', [`--format=${format}`, '--numeric-owner', '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
    t.is(scan(bytes), expected);
    t.is(await readTarSize(bytes), expected);
    t.is(scanBytewise(bytes), expected);
    t.is(scan(bytes, [1, 511, 513, 1000, 4096, 3]), expected);
  });
}

test('ContentSizeScanner: a tar-stream archive with a long name, symlinks and a hard link', async (t) => {
  const bytes = await makeTar([
    { name: 'dir/', type: 'directory' },
    { name: `dir/${long('x', 200)}`, data: Buffer.alloc(3000, 1) },
    { name: 'dir/s', type: 'symlink', linkname: long('y', 160) },
    { name: 'dir/h', type: 'link', linkname: 'dir/s' },
    { name: 'f', data: 'abc' },
  ]);
  t.is(scan(bytes), 3000 + 160 + 3);
  t.is(await readTarSize(bytes), 3000 + 160 + 3);
  t.is(scanBytewise(bytes), 3000 + 160 + 3);
});
