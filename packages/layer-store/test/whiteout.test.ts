import test from 'ava';
import { upperToLayerEntries, whiteoutMeaning } from '../src/whiteout.js';
import type { TarHeader } from '../src/tar.js';

const base = { mode: 0o755, uid: 1, gid: 2, size: 0, mtime: 100 };
const h = (x: Partial<TarHeader> & { name: string; type: TarHeader['type'] }): TarHeader => ({ ...base, ...x });

const table: Array<[string, TarHeader, Array<Partial<TarHeader>>]> = [
  ['0/0 char device → .wh.<name>', h({ name: 'a/b', type: 'char', devmajor: 0, devminor: 0 }), [{ name: 'a/.wh.b', type: 'file', mode: 0o600, size: 0, uid: 1, gid: 2 }]],
  ['top-level whiteout', h({ name: 'x', type: 'char', devmajor: 0, devminor: 0 }), [{ name: '.wh.x', type: 'file' }]],
  [
    'empty file with trusted.overlay.whiteout (kernel ≥ 6.7 form) → .wh.<name>',
    h({ name: 'a/b', type: 'file', size: 0, xattrs: new Map([['trusted.overlay.whiteout', Buffer.from('')]]) }),
    [{ name: 'a/.wh.b', type: 'file', mode: 0o600, size: 0 }],
  ],
  ['real char device stays', h({ name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 }), [{ name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 }]],
  [
    'opaque dir → dir + .wh..wh..opq, overlay xattr dropped',
    h({ name: 'etc/d', type: 'directory', xattrs: new Map([['trusted.overlay.opaque', Buffer.from('y')], ['user.k', Buffer.from('v')]]) }),
    [
      { name: 'etc/d', type: 'directory', xattrs: new Map([['user.k', Buffer.from('v')]]) },
      { name: 'etc/d/.wh..wh..opq', type: 'file', size: 0 },
    ],
  ],
  ['opaque "x" is not opaque', h({ name: 'd', type: 'directory', xattrs: new Map([['trusted.overlay.opaque', Buffer.from('x')]]) }), [{ name: 'd', type: 'directory', xattrs: new Map() }]],
  ['plain file unchanged', h({ name: 'f', type: 'file', size: 3 }), [{ name: 'f', type: 'file', size: 3 }]],
];

for (const [name, input, expected] of table) {
  test(`upperToLayerEntries: ${name}`, (t) => {
    const out = upperToLayerEntries(input);
    t.is(out.length, expected.length);
    expected.forEach((e, i) => t.like(out[i]!, e as never));
    if (expected[0]?.xattrs) t.deepEqual(out[0]!.xattrs, expected[0].xattrs);
  });
}

const meanings: Array<[string, ReturnType<typeof whiteoutMeaning>]> = [
  ['a/.wh.b', { kind: 'whiteout', target: 'a/b' }],
  ['.wh.b', { kind: 'whiteout', target: 'b' }],
  ['a/.wh..wh..opq', { kind: 'opaque', dir: 'a' }],
  ['.wh..wh..opq', { kind: 'opaque', dir: '' }],
  ['a/b.wh.c', { kind: 'none' }],
  ['a/b', { kind: 'none' }],
];
for (const [name, expected] of meanings) {
  test(`whiteoutMeaning ${name}`, (t) => t.deepEqual(whiteoutMeaning(name), expected));
}
