/**
 * loadFile: an uncompressed archive file is read in place (headers listed, only the members the
 * images use read, layers a few at once); a compressed one is streamed. Same results and the same
 * refusals as load from a stream: a refused archive leaves index.json, blobs/ and tmp/ as they were.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { indexArchive } from '../src/archive-tar.js';
import { load, loadFile, MediaTypes, save, type Manifest, type Store } from '../src/index.js';
import { collector, makeTar, sha256hex, storeState, tempDir, tempStore, type TarSpec } from './archive-fixtures.js';

/** Layer tars with distinct contents (one file each, sizes around zlib and read chunk boundaries). */
async function layerTars(sizes: number[]): Promise<Buffer[]> {
  return Promise.all(sizes.map((n, i) => makeTar([{ name: `f${i}`, data: Buffer.alloc(n, 97 + i) }])));
}

/**
 * An OCI-layout archive (Docker 25 form, with manifest.json) of one image made of gzip'd `tars`.
 * `diffIDs` overrides the config's rootfs (to make it lie).
 */
async function ociArchive(tars: Buffer[], opts: { diffIDs?: string[]; tag?: string } = {}): Promise<{ archive: Buffer; members: TarSpec[]; configHex: string; layerHexes: string[] }> {
  const layers = tars.map((b) => gzipSync(b));
  const layerHexes = layers.map((l) => sha256hex(l));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: opts.diffIDs ?? tars.map((b) => `sha256:${sha256hex(b)}`) } }));
  const configHex = sha256hex(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: `sha256:${configHex}`, size: config.length },
    layers: layers.map((l, i) => ({ mediaType: MediaTypes.ociLayerGzip, digest: `sha256:${layerHexes[i]}`, size: l.length })),
  }));
  const tag = opts.tag ?? 'docker.io/library/lsfile:1';
  const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ mediaType: MediaTypes.ociManifest, digest: `sha256:${sha256hex(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  const members: TarSpec[] = [
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    ...layers.map((l, i) => ({ name: `blobs/sha256/${layerHexes[i]}`, data: l })),
    { name: `blobs/sha256/${configHex}`, data: config },
    { name: `blobs/sha256/${sha256hex(manifest)}`, data: manifest },
    { name: 'index.json', data: JSON.stringify(index) },
    { name: 'manifest.json', data: JSON.stringify([{ Config: `blobs/sha256/${configHex}`, RepoTags: [tag], Layers: layerHexes.map((h) => `blobs/sha256/${h}`) }]) },
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
  ];
  return { archive: await makeTar(members), members, configHex, layerHexes };
}

async function archiveFile(t: ExecutionContext, bytes: Buffer, name = 'archive.tar'): Promise<string> {
  const file = join(await tempDir(t, 'ls-loadfile-'), name);
  await writeFile(file, bytes);
  return file;
}

/** The diffIDs of an image's layer blobs in `store`, by gunzipping them. */
async function storedDiffIDs(store: Store, manifestDigest: string): Promise<string[]> {
  const manifest = await store.readJSONBlob<Manifest>(manifestDigest as Manifest['config']['digest']);
  return Promise.all(manifest.layers.map(async (l) => `sha256:${sha256hex(gunzipSync(await readFile(store.blobPath(l.digest))))}`));
}

test('loadFile reads a multi-layer archive in place: same images, blobs and diffIDs as load from a stream, tmp/ empty', async (t) => {
  const tars = await layerTars([10, 3 * 1024 * 1024 + 7, 200_000, 0]);
  const { archive, configHex } = await ociArchive(tars);
  const viaFile = await tempStore(t);
  const viaStream = await tempStore(t);
  const fromFile = await loadFile(viaFile, await archiveFile(t, archive));
  const fromStream = await load(viaStream, Readable.from([archive]));
  t.deepEqual(fromFile, fromStream);
  t.is(fromFile[0]!.id as string, `sha256:${configHex}`);
  t.deepEqual(fromFile[0]!.tags, ['docker.io/library/lsfile:1']);
  const a = await storeState(viaFile);
  const b = await storeState(viaStream);
  t.deepEqual(a.blobs, b.blobs);
  t.deepEqual(a.tmp, []);
  t.deepEqual(await storedDiffIDs(viaFile, fromFile[0]!.manifest.digest), tars.map((x) => `sha256:${sha256hex(x)}`));
});

test('loadFile of a saved archive loads it back with the same image ID and tag', async (t) => {
  const src = await tempStore(t);
  const { archive } = await ociArchive(await layerTars([5000]), { tag: 'docker.io/library/lsfile:saved' });
  const [img] = await load(src, Readable.from([archive]));
  const out = collector();
  await save(src, ['lsfile:saved'], out);
  const dst = await tempStore(t);
  const [back] = await loadFile(dst, await archiveFile(t, out.bytes()));
  t.is(back!.id, img!.id);
  t.deepEqual(back!.tags, ['docker.io/library/lsfile:saved']);
  t.deepEqual((await dst.resolveImage('lsfile:saved')).config.rootfs, (await src.resolveImage('lsfile:saved')).config.rootfs);
});

test('loadFile streams a gzip-compressed archive file', async (t) => {
  const tars = await layerTars([70_000]);
  const { archive, configHex } = await ociArchive(tars);
  const store = await tempStore(t);
  const [img] = await loadFile(store, await archiveFile(t, gzipSync(archive), 'archive.tar.gz'));
  t.is(img!.id as string, `sha256:${configHex}`);
  t.deepEqual((await storeState(store)).tmp, []);
});

test('loadFile of a classic docker-archive gzips the layer.tar members and keeps their diffIDs', async (t) => {
  const [layerTar] = await layerTars([2 * 1024 * 1024 + 1]);
  const diffID = `sha256:${sha256hex(layerTar!)}`;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID, diffID] } }));
  const configHex = sha256hex(config);
  const archive = await makeTar([
    { name: 'aaaa/layer.tar', data: layerTar },
    { name: 'bbbb/layer.tar', type: 'symlink', linkname: '../aaaa/layer.tar' },
    { name: `${configHex}.json`, data: config },
    { name: 'manifest.json', data: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['lsfile:classic'], Layers: ['aaaa/layer.tar', 'bbbb/layer.tar'] }]) },
  ]);
  const store = await tempStore(t);
  const [img] = await loadFile(store, await archiveFile(t, archive));
  t.is(img!.id as string, `sha256:${configHex}`);
  const manifest = await store.readJSONBlob<Manifest>(img!.manifest.digest);
  t.is(manifest.layers[0]!.mediaType, MediaTypes.ociLayerGzip);
  t.deepEqual(await storedDiffIDs(store, img!.manifest.digest), [diffID, diffID]);
});

test('loadFile of an archive whose blobs are already stored does not rewrite them', async (t) => {
  const { archive, layerHexes } = await ociArchive(await layerTars([100_000]));
  const store = await tempStore(t);
  const file = await archiveFile(t, archive);
  const [first] = await loadFile(store, file);
  const blob = join(store.blobsDir, layerHexes[0]!);
  const before = await stat(blob);
  const [second] = await loadFile(store, file);
  t.deepEqual(second, first);
  const after = await stat(blob);
  t.is(after.ino, before.ino);
  t.is(after.mtimeMs, before.mtimeMs);
  t.deepEqual((await storeState(store)).tmp, []);
});

// ---- refusals ----

async function expectLoadFileFails(t: ExecutionContext, store: Store, archive: Buffer, code: string, message: RegExp, opts: { maxBytes?: number } = {}): Promise<void> {
  const file = await archiveFile(t, archive);
  const before = await storeState(store);
  const err = await t.throwsAsync(loadFile(store, file, opts));
  t.is((err as { code?: string }).code, code, err?.message);
  t.regex(err!.message, message);
  t.truthy((err as { hint?: string }).hint);
  t.deepEqual(await storeState(store), before, 'index.json, blobs/ and tmp/ unchanged');
}

const lie = `sha256:${'0'.repeat(64)}`;

test('loadFile refuses a lying diffID of a later layer, even when the layers are already stored', async (t) => {
  const tars = await layerTars([10_000, 3 * 1024 * 1024, 20_000]);
  const store = await tempStore(t);
  await loadFile(store, await archiveFile(t, (await ociArchive(tars)).archive));
  const diffIDs = tars.map((x) => `sha256:${sha256hex(x)}`);
  diffIDs[1] = lie;
  const { archive, layerHexes } = await ociArchive(tars, { diffIDs, tag: 'docker.io/library/lsfile:lying' });
  await expectLoadFileFails(t, store, archive, 'E_DIGEST_MISMATCH', new RegExp(`layer diffID.*blobs/sha256/${layerHexes[1]}`));
  // And into an empty store: nothing of it is kept.
  await expectLoadFileFails(t, await tempStore(t), archive, 'E_DIGEST_MISMATCH', /layer diffID/);
});

const refusals: Array<[string, (members: TarSpec[], layerHex: string) => TarSpec[] | Buffer, string, RegExp, { maxBytes?: number }?]> = [
  ['a blob whose bytes do not match its name', (ms, hex) => ms.map((m) => (m.name === `blobs/sha256/${hex}` ? { ...m, data: Buffer.concat([m.data as Buffer, Buffer.from('x')]) } : m)), 'E_DIGEST_MISMATCH', /archive member blobs\/sha256\//],
  ['a missing layer', (ms, hex) => ms.filter((m) => m.name !== `blobs/sha256/${hex}`), 'E_ARCHIVE_MISSING_MEMBER', /layer 1/],
  ['a member name with ..', (ms) => [{ name: '../escape', data: 'x' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /"\.\.\/escape"/],
  ['an absolute member name', (ms) => [{ name: '/abs', data: 'x' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /absolute member name/],
  ['a symlink member pointing out', (ms) => [{ name: 'blobs/evil', type: 'symlink', linkname: '../../etc/passwd' }, ...ms], 'E_ARCHIVE_UNSAFE_PATH', /outside the archive/],
  ['bad JSON in manifest.json', (ms) => ms.map((m) => (m.name === 'manifest.json' ? { ...m, data: '[{"Config": ' } : m)), 'E_ARCHIVE_BAD_JSON', /manifest\.json/],
  ['not an image archive', () => [{ name: 'hello.txt', data: 'hi' }], 'E_ARCHIVE', /neither manifest\.json/],
  ['bytes that are not a tar', () => Buffer.alloc(4096, 0x41), 'E_ARCHIVE', /not a tar archive/],
  ['an archive larger than maxBytes', (ms) => ms, 'E_ARCHIVE_TOO_LARGE', /the archive expands to more than 1000 bytes/, { maxBytes: 1000 }],
];

for (const [name, mutate, code, message, opts] of refusals) {
  test(`loadFile refuses ${name}`, async (t) => {
    const { members, layerHexes } = await ociArchive(await layerTars([300_000]));
    const mutated = mutate(members, layerHexes[0]!);
    await expectLoadFileFails(t, await tempStore(t), Buffer.isBuffer(mutated) ? mutated : await makeTar(mutated), code, message, opts);
  });
}

test('loadFile refuses a truncated archive file, cut inside a member or at a header', async (t) => {
  const { archive } = await ociArchive(await layerTars([300_000]));
  const store = await tempStore(t);
  await expectLoadFileFails(t, store, archive.subarray(0, Math.floor(archive.length / 2)), 'E_ARCHIVE_TRUNCATED', /truncated/);
  await expectLoadFileFails(t, store, archive.subarray(0, 700), 'E_ARCHIVE_TRUNCATED', /truncated/);
});

test('loadFile stops a gzip-bomb layer at maxBytes', async (t) => {
  const bomb = Buffer.alloc(32 * 1024 * 1024);
  const { members } = await ociArchive([bomb]);
  await expectLoadFileFails(t, await tempStore(t), await makeTar(members), 'E_ARCHIVE_TOO_LARGE', /layer blobs\/sha256\/.* more than 4194304 bytes/, { maxBytes: 4 * 1024 * 1024 });
});

// ---- listing an archive in place ----

test('indexArchive lists members of GNU, PAX and ustar archives with long names, links and offsets', async (t) => {
  const dir = await tempDir(t, 'ls-index-');
  const src = join(dir, 'src');
  const deep = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
  const long = `${deep}/${'f'.repeat(120)}`; // needs a GNU or PAX long name
  const mid = `${deep}/m`; // fits ustar's prefix + name
  await mkdir(join(src, deep), { recursive: true });
  await writeFile(join(src, long), Buffer.alloc(1500, 7));
  await writeFile(join(src, mid), Buffer.alloc(513, 8));
  await writeFile(join(src, 'short'), 'hello');
  execFileSync('ln', ['-s', long, join(src, 'link')]);
  const sizes: Record<string, number> = { short: 5, link: 0, [long]: 1500, [mid]: 513 };
  for (const format of ['gnu', 'pax', 'ustar']) {
    const file = join(dir, `${format}.tar`);
    const names = format === 'ustar' ? ['short', mid] : ['short', 'link', long, mid];
    execFileSync('tar', ['-C', src, `--format=${format}`, '-cf', file, ...names]);
    const fd = openSync(file, 'r');
    try {
      const bytes = await readFile(file);
      const listed = indexArchive(fd, bytes.length);
      t.deepEqual(listed.map((m) => [m.name, m.type, m.size]), names.map((n) => [n, n === 'link' ? 'symlink' : 'file', sizes[n]]), format);
      if (format !== 'ustar') t.is(listed.find((m) => m.name === 'link')!.linkname, long, format);
      for (const m of listed.filter((x) => x.type === 'file')) {
        const expected = m.name === 'short' ? Buffer.from('hello') : Buffer.alloc(m.size, m.name === mid ? 8 : 7);
        t.deepEqual(bytes.subarray(m.offset, m.offset + m.size), expected, `${format} ${m.name}`);
      }
    } finally {
      closeSync(fd);
    }
  }
});
