/**
 * Hostile and broken input for load and import: each must fail with a typed error that names the
 * problem, leave the store's index.json, blobs/ and tmp/ as they were, and write nothing outside.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { exportImage, importRootfs, load, save, Store } from '../src/index.js';
import { collector, makeTar, sha256hex, storeState, tempDir, tempStore, treeListing, type TarSpec } from './archive-fixtures.js';

/** The saved archive of a busybox image, made once for the file. */
let victimArchive: Buffer;
test.before(async () => {
  const store = await Store.open(join(await mkdtemp(join(tmpdir(), 'ls-hostile-')), 'store'));
  try {
    await importRootfs(store, Readable.from([await makeTar([{ name: 'bin/', type: 'directory' }, { name: 'bin/sh', data: Buffer.alloc(200_000, 7) }, { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' }])]), { ref: 'lsexp:victim', sourceDateEpoch: 0 });
    const out = collector();
    await save(store, ['lsexp:victim'], out);
    victimArchive = out.bytes();
  } finally {
    await rm(dirname(store.root), { recursive: true, force: true });
  }
});

/** A store holding one image (loaded from the archive), the archive, and a sandbox dir outside. */
async function setup(t: ExecutionContext): Promise<{ store: Store; archive: Buffer; outside: string }> {
  const store = await tempStore(t);
  await load(store, Readable.from([victimArchive]));
  const outside = await tempDir(t, 'ls-outside-');
  await writeFile(join(outside, 'marker'), 'untouched');
  return { store, archive: victimArchive, outside };
}

/** Members of a valid single-image docker archive made from a saved one, to mutate. */
async function members(archive: Buffer): Promise<TarSpec[]> {
  const { default: tar } = await import('tar-stream');
  const extract = tar.extract();
  const out: TarSpec[] = [];
  const done = (async () => {
    for await (const e of extract) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      out.push({ name: e.header.name, type: e.header.type === 'directory' ? 'directory' : 'file', data: Buffer.concat(chunks) });
    }
  })();
  extract.end(archive);
  await done;
  return out;
}

async function expectLoadFails(t: ExecutionContext, store: Store, outside: string, input: Buffer, code: string, message: RegExp, opts: { maxBytes?: number } = {}): Promise<void> {
  const before = await storeState(store);
  const outsideBefore = await treeListing(outside);
  const err = await t.throwsAsync(load(store, Readable.from([input]), opts));
  t.is((err as { code?: string }).code, code, err?.message);
  t.regex(err!.message, message);
  t.truthy((err as { hint?: string }).hint);
  t.deepEqual(await storeState(store), before, 'index.json, blobs/ and tmp/ unchanged');
  t.deepEqual(await treeListing(outside), outsideBefore);
  t.is(await readFile(join(outside, 'marker'), 'utf8'), 'untouched');
}

const layerName = (ms: TarSpec[]): string => {
  const manifest = JSON.parse(String(ms.find((m) => m.name === 'manifest.json')!.data)) as Array<{ Layers: string[] }>;
  return manifest[0]!.Layers[0]!;
};

const cases: Array<[string, (ms: TarSpec[], outside: string) => TarSpec[] | Buffer, string, RegExp]> = [
  ['member name with ..', (ms) => [{ name: '../escape', data: 'x' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /"\.\.\/escape"/],
  ['absolute member name', (ms, outside) => [{ name: join(outside, 'abs'), data: 'x' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /absolute member name/],
  ['symlink member pointing out', (ms) => [{ name: 'blobs/evil', type: 'symlink', linkname: '../../etc/passwd' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /outside the archive.*blobs\/evil/],
  ['hard link member pointing out', (ms) => [{ name: 'evil', type: 'link', linkname: '../outside' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /"evil"/],
  [
    'blob whose bytes do not match its name',
    (ms) => ms.map((m) => (m.name === layerName(ms) ? { ...m, data: Buffer.concat([m.data as Buffer, Buffer.from('x')]) } : m)),
    'E_DIGEST_MISMATCH',
    /archive member blobs\/sha256\//,
  ],
  [
    'missing layer',
    (ms) => ms.filter((m) => m.name !== layerName(ms)),
    'E_ARCHIVE_MISSING_MEMBER',
    /layer 1.*blobs\/sha256\//,
  ],
  ['bad JSON in manifest.json', (ms) => ms.map((m) => (m.name === 'manifest.json' ? { ...m, data: '[{"Config": ' } : m)), 'E_ARCHIVE_BAD_JSON', /manifest\.json/],
  [
    'layer whose diffID is not the config\'s',
    (ms) => {
      const manifest = JSON.parse(String(ms.find((m) => m.name === 'manifest.json')!.data)) as Array<{ Config: string; Layers: string[]; RepoTags: string[] }>;
      const configMember = ms.find((m) => m.name === manifest[0]!.Config)!;
      const config = JSON.parse(String(configMember.data)) as { rootfs: { diff_ids: string[] } };
      config.rootfs.diff_ids = [`sha256:${'0'.repeat(64)}`];
      const bytes = Buffer.from(JSON.stringify(config));
      const name = `blobs/sha256/${sha256hex(bytes)}`;
      manifest[0]!.Config = name;
      return [...ms.filter((m) => m.name !== 'manifest.json'), { name, data: bytes }, { name: 'manifest.json', data: JSON.stringify(manifest) }];
    },
    'E_DIGEST_MISMATCH',
    /layer diffID/,
  ],
  ['not an image archive', () => [{ name: 'hello.txt', data: 'hi' }], 'E_ARCHIVE', /neither manifest\.json/],
];

for (const [name, mutate, code, message] of cases) {
  test(`load refuses: ${name}`, async (t) => {
    const { store, archive, outside } = await setup(t);
    const mutated = mutate(await members(archive), outside);
    await expectLoadFails(t, store, outside, Buffer.isBuffer(mutated) ? mutated : await makeTar(mutated), code, message);
  });
}

test('load refuses a truncated tar', async (t) => {
  const { store, archive, outside } = await setup(t);
  await expectLoadFails(t, store, outside, archive.subarray(0, Math.floor(archive.length / 2)), 'E_ARCHIVE_TRUNCATED', /truncated/);
});

test('load refuses a truncated gzip archive', async (t) => {
  const { store, archive, outside } = await setup(t);
  const gz = gzipSync(archive);
  await expectLoadFails(t, store, outside, gz.subarray(0, gz.length - 100), 'E_ARCHIVE_TRUNCATED', /truncated/);
});

test('load refuses a corrupt gzip archive', async (t) => {
  const { store, archive, outside } = await setup(t);
  const gz = gzipSync(archive);
  gz[2] = 0; // compression method: not deflate
  await expectLoadFails(t, store, outside, gz, 'E_ARCHIVE', /compressed data is corrupt/);
  // Damage inside the deflate stream shows as bad gzip data or as bytes that fail their digest.
  const gz2 = gzipSync(archive);
  for (let i = Math.floor(gz2.length / 3); i < Math.floor(gz2.length / 2); i++) gz2[i] = gz2[i]! ^ 0xff;
  const err = await t.throwsAsync(load(store, Readable.from([gz2])));
  t.regex((err as { code?: string }).code ?? '', /^E_(ARCHIVE|DIGEST_MISMATCH)/);
  t.deepEqual((await storeState(store)).tmp, []);
});

test('load stops a gzip bomb at maxBytes', async (t) => {
  const { store, outside } = await setup(t);
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  await expectLoadFails(t, store, outside, bomb, 'E_ARCHIVE_TOO_LARGE', /more than 1048576 bytes/, { maxBytes: 1024 * 1024 });
});

test('load stops a gzip-bomb layer inside the archive at maxBytes', async (t) => {
  const { store, archive, outside } = await setup(t);
  const ms = await members(archive);
  const bombLayer = gzipSync(Buffer.alloc(32 * 1024 * 1024));
  const name = `blobs/sha256/${sha256hex(bombLayer)}`;
  const manifest = JSON.parse(String(ms.find((m) => m.name === 'manifest.json')!.data)) as Array<{ Layers: string[] }>;
  manifest[0]!.Layers = [name];
  const mutated = [...ms.filter((m) => m.name !== 'manifest.json'), { name, data: bombLayer }, { name: 'manifest.json', data: JSON.stringify(manifest) }];
  await expectLoadFails(t, store, outside, await makeTar(mutated), 'E_ARCHIVE_TOO_LARGE', /layer blobs\/sha256/, { maxBytes: 4 * 1024 * 1024 });
});

// ---- import ----

async function expectImportFails(t: ExecutionContext, entries: TarSpec[], code: string, message: RegExp): Promise<void> {
  const { store, outside } = await setup(t);
  const before = await storeState(store);
  const outsideBefore = await treeListing(outside);
  const err = await t.throwsAsync(importRootfs(store, Readable.from([await makeTar(entries)]), { ref: 'lsexp:hostile', sourceDateEpoch: 0 }));
  t.is((err as { code?: string }).code, code, err?.message);
  t.regex(err!.message, message);
  t.deepEqual(await storeState(store), before);
  t.deepEqual(await treeListing(outside), outsideBefore);
}

// Docker 20.10's import untars chrooted into the layer's directory: '..' stops at its root
// (checked against dockerd: a/../../escape is /escape, ../.wh.marker is applied at the root, a hard
// link to ../../../etc/passwd fails as the image has no /etc/passwd)
test('import puts tar-slip (..) at the image root, nothing written outside', async (t) => {
  const { store, outside } = await setup(t);
  await importRootfs(store, Readable.from([await makeTar([{ name: 'a/../../escape', data: 'x' }, { name: '../.wh.marker', data: '' }])]), { ref: 'lsexp:slip', sourceDateEpoch: 0 });
  t.deepEqual(await treeListing(outside), ['marker']);
  const exported = collector();
  await exportImage(store, 'lsexp:slip', exported);
  t.deepEqual((await members(exported.bytes())).map((m) => m.name), ['escape']);
});

test('import refuses a hard link that points out', async (t) => {
  await expectImportFails(t, [{ name: 'evil', type: 'link', linkname: '../../../etc/passwd' }], 'E_CORRUPT_LAYER', /evil/);
});

test('import refuses a truncated tarball', async (t) => {
  const { store, outside } = await setup(t);
  const tarball = await makeTar([{ name: 'big', data: Buffer.alloc(100_000, 1) }]);
  const before = await storeState(store);
  const err = await t.throwsAsync(importRootfs(store, Readable.from([tarball.subarray(0, 50_000)]), { sourceDateEpoch: 0 }));
  t.is((err as { code?: string }).code, 'E_CORRUPT_LAYER');
  t.deepEqual(await storeState(store), before);
  t.deepEqual(await treeListing(outside), ['marker']);
});

test('import keeps absolute names and symlinks inside the image (as Docker does), nothing written outside', async (t) => {
  const { store, outside } = await setup(t);
  const entries: TarSpec[] = [
    { name: 'etc/', type: 'directory' },
    { name: 'evil', type: 'symlink', linkname: outside },
    { name: join(outside, 'abs'), data: 'y' },
  ];
  // a file through the absolute symlink: dockerd's chrooted open fails (the image has no such dir)
  await expectImportFails(t, [...entries.slice(0, 2), { name: 'evil/planted', data: 'x' }], 'E_CORRUPT_LAYER', /evil\/planted/);
  await importRootfs(store, Readable.from([await makeTar(entries)]), { ref: 'lsexp:contained', sourceDateEpoch: 0 });
  t.deepEqual(await treeListing(outside), ['marker']);
  const exported = collector();
  await exportImage(store, 'lsexp:contained', exported);
  const names = (await members(exported.bytes())).map((m) => m.name);
  t.true(names.includes(`${outside.slice(1)}/abs`), names.join(' '));
});
