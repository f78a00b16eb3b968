/**
 * import as Docker 20.10's `docker import` (checked against dockerd: import, create, export):
 * duplicate paths are refused (tar-split: "duplicates of file paths not supported"), a hard link
 * entry's owner and mode go to the inode it shares with its target, and names are cleaned at the
 * image root. A refused tarball leaves the store as it was.
 */
import test from 'ava';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { exportImage, importRootfs } from '../src/index.js';
import { collector, makeTar, storeState, tempStore, type TarSpec } from './archive-fixtures.js';
import { tarOf, type Entry } from './helpers.js';

/** name, type, mode, uid:gid and link target of each entry of a tar. */
async function listing(bytes: Buffer): Promise<string[]> {
  const extract = tar.extract();
  const out: string[] = [];
  const done = (async () => {
    for await (const e of extract) {
      const h = e.header;
      out.push(`${h.name} ${h.type} ${(h.mode ?? 0).toString(8)} ${h.uid}:${h.gid}${h.linkname ? ` -> ${h.linkname}` : ''}`);
      e.resume();
    }
  })();
  extract.end(bytes);
  await done;
  return out;
}

const duplicates: Array<[string, TarSpec[], string]> = [
  ['a file twice', [{ name: 'f', data: 'a' }, { name: 'f', data: 'b' }], 'f'],
  ['./f and f', [{ name: './f', data: 'a' }, { name: 'f', data: 'b' }], 'f'],
  ['a directory as d/ and d', [{ name: 'd/', type: 'directory' }, { name: 'd', type: 'directory' }], 'd'],
];
for (const [what, entries, name] of duplicates) {
  test(`import refuses ${what}, as dockerd, and leaves the store as it was`, async (t) => {
    const store = await tempStore(t);
    const before = await storeState(store);
    const err = await t.throwsAsync(importRootfs(store, Readable.from([await makeTar(entries)]), { ref: 'lsimp:dup', sourceDateEpoch: 0 }));
    t.is((err as { code?: string }).code, 'E_CORRUPT_LAYER');
    t.regex(err!.message, new RegExp(`"\\.?/?${name}/?" twice: duplicates of file paths are not supported`));
    t.regex((err as { hint?: string }).hint ?? '', /duplicate/);
    t.deepEqual(await storeState(store), before);
  });
}

test('import gives a hard link entry\'s owner and mode to the inode it shares, as dockerd', async (t) => {
  const store = await tempStore(t);
  const entries: Entry[] = [
    { name: 't', content: 'x', mode: 0o600, uid: 0, gid: 0 },
    { name: 'h', type: 'link', linkname: 't', mode: 0o755, uid: 5, gid: 6 },
    { name: 'a/', type: 'directory', mode: 0o755 },
    { name: 'a/../b', content: 'b', mode: 0o644 },
  ];
  await importRootfs(store, Readable.from([await tarOf(entries)]), { ref: 'lsimp:link', sourceDateEpoch: 0 });
  const out = collector();
  await exportImage(store, 'lsimp:link', out);
  t.deepEqual((await listing(out.bytes())).sort(), ['a/ directory 755 0:0', 'b file 644 0:0', 'h file 755 5:6', 't link 755 5:6 -> h']);
});

test('import of a tar whose hard link comes before its target fails naming both, with a hint for a tarball', async (t) => {
  const store = await tempStore(t);
  const err = await t.throwsAsync(importRootfs(store, Readable.from([await makeTar([{ name: 'h', type: 'link', linkname: 't' }, { name: 't', data: 'x' }])])));
  t.is((err as { code?: string }).code, 'E_CORRUPT_LAYER');
  t.regex(err!.message, /"h" is a hard link to missing "t"/);
  t.regex((err as { hint?: string }).hint ?? '', /tarball/);
});

test('import takes an empty input and a tar without its end-of-archive blocks, as dockerd (Go\'s tar reader); a tar cut inside an entry is refused', async (t) => {
  const store = await tempStore(t);
  await importRootfs(store, Readable.from([Buffer.alloc(0)]), { ref: 'lsimp:empty', sourceDateEpoch: 0 });
  const empty = collector();
  await exportImage(store, 'lsimp:empty', empty);
  t.deepEqual(await listing(empty.bytes()), []);
  const whole = await makeTar([{ name: 'f', data: 'hi\n' }]);
  const noTrailer = whole.subarray(0, 1024); // header + one data block, no zero blocks
  await importRootfs(store, Readable.from([noTrailer]), { ref: 'lsimp:notrailer', sourceDateEpoch: 0 });
  const out = collector();
  await exportImage(store, 'lsimp:notrailer', out);
  t.deepEqual(await listing(out.bytes()), ['f file 644 0:0']);
  const before = await storeState(store);
  const err = await t.throwsAsync(importRootfs(store, Readable.from([whole.subarray(0, 700)]), { ref: 'lsimp:cut' }));
  t.is((err as { code?: string }).code, 'E_CORRUPT_LAYER');
  t.deepEqual(await storeState(store), before);
});
