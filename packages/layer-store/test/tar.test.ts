import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { encodeHeader, encodeHeaderInto, padding, readTar, trailer, type TarHeader } from '../src/tar.js';
import { sh, tempDir } from './helpers.js';

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000 };

// Headers that need PAX records, and must come back unchanged (from our reader and GNU tar).
const table: Array<[string, TarHeader, RegExp]> = [
  ['plain short name (no PAX)', { ...base, name: 'etc/hosts', type: 'file' }, /-rw-r--r-- 0\/0 +0 .* etc\/hosts$/m],
  ['name over 100 bytes', { ...base, name: `${'n'.repeat(90)}/${'m'.repeat(90)}`, type: 'file' }, new RegExp(`${'m'.repeat(90)}$`, 'm')],
  ['non-ASCII name', { ...base, name: 'dir/ünï☃', type: 'file' }, /dir\/ünï☃$/m],
  ['long symlink target', { ...base, name: 'l', type: 'symlink', linkname: `/${'t'.repeat(200)}`, mode: 0o777 }, /l -> \/t{200}$/m],
  ['uid/gid beyond 7 octal digits', { ...base, name: 'big-ids', type: 'file', uid: 3_000_000, gid: 4_000_000 }, /3000000\/4000000 .* big-ids$/m],
  ['setuid+setgid+sticky', { ...base, name: 'bits', type: 'file', mode: 0o7755 }, /-rwsr-sr-t .* bits$/m],
  ['block device', { ...base, name: 'dev/sda', type: 'block', devmajor: 8, devminor: 1 }, /brw-r--r-- 0\/0 +8,1 .* dev\/sda$/m],
  ['fifo', { ...base, name: 'p', type: 'fifo' }, /prw-r--r-- .* p$/m],
  ['directory', { ...base, name: 'd', type: 'directory', mode: 0o755 }, /drwxr-xr-x .* d\/$/m],
  ['binary xattr', { ...base, name: 'cap', type: 'file', xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2, 0xff, 0x80, 0, 0])]]) }, /cap$/m],
];

for (const [name, header, listing] of table) {
  test(`tar codec: ${name}`, async (t) => {
    const bytes = Buffer.concat([encodeHeader(header), trailer()]);
    const out: TarHeader[] = [];
    for await (const e of readTar(Readable.from([bytes]))) out.push(e.header);
    t.is(out.length, 1);
    const { xattrs, linkname, devmajor, devminor, ...rest } = out[0]!;
    t.like(rest, { ...header, xattrs: undefined, linkname: undefined, devmajor: undefined, devminor: undefined } as never);
    t.is(linkname, header.linkname ?? '');
    t.deepEqual(xattrs, header.xattrs ?? new Map());
    if (header.devmajor !== undefined) t.deepEqual([devmajor, devminor], [header.devmajor, header.devminor]);
    const file = join(await tempDir(t), 'a.tar');
    await writeFile(file, bytes);
    t.regex(await sh('tar', ['--numeric-owner', '-tvf', file]), listing);
  });
}

test('tar codec: file content and padding round trip, several entries', async (t) => {
  const content = Buffer.alloc(1000, 0x61);
  const bytes = Buffer.concat([
    encodeHeader({ ...base, name: 'a', type: 'file', size: content.length }),
    content,
    padding(content.length),
    encodeHeader({ ...base, name: 'b', type: 'link', linkname: 'a' }),
    trailer(),
  ]);
  t.is(bytes.length % 512, 0);
  const got: Array<[string, string]> = [];
  // one byte per chunk: the reader must reassemble across chunk boundaries
  const chunks = [...bytes].map((b) => Buffer.from([b]));
  for await (const e of readTar(Readable.from(chunks))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    got.push([e.header.name, Buffer.concat(parts).toString()]);
  }
  t.deepEqual(got, [['a', content.toString()], ['b', '']]);
});

test('tar codec: a bad header checksum is a corrupt layer', async (t) => {
  const bytes = Buffer.concat([encodeHeader({ ...base, name: 'x', type: 'file' }), trailer()]);
  bytes[0] = 0x79;
  await t.throwsAsync(async () => {
    for await (const _ of readTar(Readable.from([bytes]))) void _;
  }, { code: 'E_CORRUPT_LAYER', message: /checksum/ } as never);
});

const intoBase: TarHeader = { name: 'usr/bin/x', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 1234, mtime: 1_700_000_000 };
const intoCases: Array<[string, TarHeader, boolean]> = [
  ['plain file', intoBase, true],
  ['directory', { ...intoBase, type: 'directory', name: 'usr/lib', size: 0 }, true],
  ['symlink', { ...intoBase, type: 'symlink', size: 0, linkname: '../lib/libc.so' }, true],
  ['char device', { ...intoBase, type: 'char', size: 0, devmajor: 1, devminor: 3 }, true],
  ['setuid, big ids within 7 octal digits', { ...intoBase, mode: 0o4755, uid: 0o7777777, gid: 1000 }, true],
  ['name of exactly 100 bytes', { ...intoBase, name: 'n'.repeat(100) }, true],
  ['directory name of 100 bytes (101 with the slash): PAX', { ...intoBase, type: 'directory', name: 'd'.repeat(100), size: 0 }, false],
  ['non-ASCII name: PAX', { ...intoBase, name: 'caf\u00e9' }, false],
  ['long linkname: PAX', { ...intoBase, type: 'symlink', size: 0, linkname: 'l'.repeat(101) }, false],
  ['uid beyond 7 octal digits: PAX', { ...intoBase, uid: 0o10000000 }, false],
  ['negative mtime: PAX', { ...intoBase, mtime: -1 }, false],
  ['xattrs: PAX', { ...intoBase, xattrs: new Map([['user.a', Buffer.from('b')]]) }, false],
  ['empty xattr map: no PAX', { ...intoBase, xattrs: new Map() }, true],
];
for (const [what, h, direct] of intoCases) {
  test(`encodeHeaderInto: ${what}`, (t) => {
    const buf = Buffer.alloc(2048, 0xee);
    const n = encodeHeaderInto(h, buf, 700);
    t.is(n, direct ? 512 : 0);
    if (direct) t.deepEqual(buf.subarray(700, 1212), encodeHeader(h));
    else t.true(buf.equals(Buffer.alloc(2048, 0xee)), 'nothing written when it falls back');
    t.is(buf[699], 0xee);
    t.is(buf[1212], 0xee);
  });
}

test('encodeHeaderInto: no room for a whole block means fall back, nothing written', (t) => {
  const buf = Buffer.alloc(1000, 0xee);
  t.is(encodeHeaderInto(intoBase, buf, 489), 0);
  t.true(buf.equals(Buffer.alloc(1000, 0xee)));
  t.is(encodeHeaderInto(intoBase, buf, 488), 512);
});
