import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { hashing, importRootfs, load, save, type Index, type Manifest } from '../src/index.js';
import { collector, importBusybox, makeTar, sha256hex, tempDir, tempStore } from './archive-fixtures.js';

async function saved(store: Parameters<typeof save>[0], refs: string[], format: 'docker' | 'oci' = 'docker'): Promise<Buffer> {
  const out = collector();
  await save(store, refs, out, { format });
  return out.bytes();
}

async function listTar(bytes: Buffer, dir: string): Promise<string[]> {
  const f = join(dir, 'a.tar');
  await writeFile(f, bytes);
  return execFileSync('tar', ['-tf', f], { encoding: 'utf8' }).trim().split('\n');
}

test('save then load round-trips images, tags and image IDs', async (t) => {
  const src = await tempStore(t);
  const a = await importBusybox(t, src, 'lsexp/a:1');
  const b = await importBusybox(t, src, 'lsexp/b:1', ['CMD ["echo","b"]', 'ENV X=1']);
  await src.tag('lsexp/a:2', (await src.resolveImage('lsexp/a:1')).manifestDescriptor);
  const bytes = await saved(src, ['lsexp/a:1', 'lsexp/a:2', 'lsexp/b:1']);
  const dst = await tempStore(t);
  const loaded = await load(dst, Readable.from([bytes]));
  t.deepEqual(
    loaded.map((l) => [l.id, l.tags]),
    [
      [a.id, ['docker.io/lsexp/a:1', 'docker.io/lsexp/a:2']],
      [b.id, ['docker.io/lsexp/b:1']],
    ],
  );
  for (const ref of ['lsexp/a:1', 'lsexp/a:2', 'lsexp/b:1']) {
    const s = await src.resolveImage(ref);
    const d = await dst.resolveImage(ref);
    t.is(d.id, s.id);
    t.is(d.manifestDescriptor.digest, s.manifestDescriptor.digest, 'the manifest is rebuilt byte for byte');
    t.deepEqual(d.config, s.config);
  }
});

test('save writes the Docker 25 layout, sorted, with fixed times, and the same bytes every time', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:det');
  const one = await saved(store, ['lsexp:det']);
  const two = await saved(store, ['lsexp:det']);
  t.is(sha256hex(one), sha256hex(two));
  const names = await listTar(one, await tempDir(t));
  const img = await store.resolveImage('lsexp:det');
  const blobs = [img.manifestDescriptor.digest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)].map((d) => `blobs/sha256/${d.slice(7)}`).sort();
  t.deepEqual(names, ['blobs/', 'blobs/sha256/', ...blobs, 'index.json', 'manifest.json', 'oci-layout', 'repositories']);
  const dir = await tempDir(t);
  await writeFile(join(dir, 'x.tar'), one);
  const verbose = execFileSync('tar', ['-tvf', join(dir, 'x.tar')], { encoding: 'utf8' });
  t.true(verbose.split('\n').filter(Boolean).every((l) => l.includes('1970-01-01 00:00') && l.includes('0/0')));
  const manifestJSON = JSON.parse(execFileSync('tar', ['-xOf', join(dir, 'x.tar'), 'manifest.json'], { encoding: 'utf8' })) as unknown;
  t.deepEqual(manifestJSON, [{ Config: `blobs/sha256/${id.slice(7)}`, RepoTags: ['lsexp:det'], Layers: img.manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) }]);
  const index = JSON.parse(execFileSync('tar', ['-xOf', join(dir, 'x.tar'), 'index.json'], { encoding: 'utf8' })) as Index;
  t.deepEqual(index.manifests[0]!.annotations, {
    'io.containerd.image.name': 'docker.io/library/lsexp:det',
    'org.opencontainers.image.ref.name': 'docker.io/library/lsexp:det',
  });
});

test('save of an image larger than its 1 MiB write buffers: a consumer that keeps the chunks gets the same bytes as a file', async (t) => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  // 3 MiB of random bytes: the layer gzips to more than the writer's 1 MiB chunk, three times
  const tarFile = join(dir, 'big.tar');
  await writeFile(join(dir, 'blob'), randomBytes(3 << 20));
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', tarFile, 'blob']);
  await importRootfs(store, createReadStream(tarFile), { ref: 'lsexp:big', sourceDateEpoch: 0 });
  const kept = collector(); // keeps each chunk it is handed, as a PassThrough would
  await save(store, ['lsexp:big'], kept);
  const file = join(dir, 'out.tar');
  await save(store, ['lsexp:big'], createWriteStream(file));
  const onDisk = await readFile(file);
  t.true(onDisk.length > 3 << 20);
  t.is(sha256hex(kept.bytes()), sha256hex(onDisk));
  const [img] = await load(await tempStore(t), Readable.from([onDisk]));
  t.is(img!.id, (await store.resolveImage('lsexp:big')).id);
});

test('save of an image with a missing or cut-short blob fails with the blob named, and ends nothing as if complete', async (t) => {
  const store = await tempStore(t);
  await importBusybox(t, store, 'lsexp:broken');
  const layer = (await store.resolveImage('lsexp:broken')).manifest.layers[0]!;
  const path = store.blobPath(layer.digest);
  const bytes = await readFile(path);
  await writeFile(path, bytes.subarray(0, 1000));
  const cut = collector();
  const e1 = await t.throwsAsync(save(store, ['lsexp:broken'], cut));
  t.is((e1 as { code?: string }).code, 'E_CORRUPT_BLOB');
  t.regex(e1!.message, new RegExp(`${layer.digest.slice(7)} holds 1000 bytes where ${layer.size} were expected`));
  t.true(cut.destroyed, 'the output is destroyed, not ended');
  await rm(path);
  const e2 = await t.throwsAsync(save(store, ['lsexp:broken'], collector()));
  t.is((e2 as { code?: string }).code, 'E_BLOB_NOT_FOUND');
  t.regex(e2!.message, new RegExp(layer.digest));
});

test('save --format oci writes only the OCI layout, and it loads back', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:oci');
  const bytes = await saved(store, ['lsexp:oci'], 'oci');
  t.deepEqual((await listTar(bytes, await tempDir(t))).filter((n) => !n.startsWith('blobs/')), ['index.json', 'oci-layout']);
  const dst = await tempStore(t);
  const [img] = await load(dst, Readable.from([bytes]));
  t.is(img!.id, id);
  t.deepEqual(img!.tags, ['docker.io/library/lsexp:oci']);
});

test('an image saved by ID has no tag and loads untagged', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:byid');
  const bytes = await saved(store, [id.slice(7, 19)]);
  const dst = await tempStore(t);
  const [img] = await load(dst, Readable.from([bytes]));
  t.is(img!.id, id);
  t.deepEqual(img!.tags, []);
  const index = await dst.readIndex();
  t.is(index.manifests.length, 1);
  t.is(index.manifests[0]!.annotations, undefined);
});

for (const [name, compress] of [
  ['gzip', (b: Buffer) => gzipSync(b)],
  ['zstd', (b: Buffer) => execFileSync('zstd', ['-q', '-c'], { input: b, maxBuffer: 1 << 30 })],
] as const) {
  test(`load detects a ${name}-compressed archive by its magic`, async (t) => {
    const store = await tempStore(t);
    const { id } = await importBusybox(t, store, 'lsexp:z');
    const bytes = compress(await saved(store, ['lsexp:z']));
    const dst = await tempStore(t);
    const [img] = await load(dst, Readable.from([bytes]));
    t.is(img!.id, id);
  });
}

test('load of a classic docker-archive (<id>/layer.tar, symlinked duplicate) gzips layers and keeps diffIDs', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:classic');
  const img = await store.resolveImage('lsexp:classic');
  const layerTar = gunzipSync(await readFile(store.blobPath(img.manifest.layers[0]!.digest)));
  // Same layer twice: Docker writes the second as a symlink to the first.
  const config = { ...img.config, rootfs: { type: 'layers', diff_ids: [img.config.rootfs.diff_ids[0], img.config.rootfs.diff_ids[0]] } };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configHex = sha256hex(configBytes);
  const archive = await makeTar([
    { name: 'aaaa/', type: 'directory' },
    { name: 'aaaa/VERSION', data: '1.0' },
    { name: 'aaaa/layer.tar', data: layerTar },
    { name: 'bbbb/', type: 'directory' },
    { name: 'bbbb/layer.tar', type: 'symlink', linkname: '../aaaa/layer.tar' },
    { name: `${configHex}.json`, data: configBytes },
    { name: 'manifest.json', data: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['lsexp:classic2'], Layers: ['aaaa/layer.tar', 'bbbb/layer.tar'] }]) },
    { name: 'repositories', data: '{}' },
  ]);
  const dst = await tempStore(t);
  const [loaded] = await load(dst, Readable.from([archive]));
  t.is(loaded!.id as string, `sha256:${configHex}`, 'the config is kept byte for byte: same image ID as Docker');
  t.not(loaded!.id, id);
  const manifest = await dst.readJSONBlob<Manifest>(loaded!.manifest.digest);
  t.is(manifest.layers.length, 2);
  t.is(manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const diff = hashing();
  await new Promise<void>((res, rej) => dst.openBlob(manifest.layers[0]!.digest).pipe(createGunzip()).pipe(diff).on('finish', res).on('error', rej).resume());
  t.is(diff.digest() as string, img.config.rootfs.diff_ids[0]);
});

test('load of a saved file stream keeps nothing in tmp/', async (t) => {
  const store = await tempStore(t);
  await importBusybox(t, store, 'lsexp:tmp');
  const dir = await tempDir(t);
  await writeFile(join(dir, 'x.tar'), await saved(store, ['lsexp:tmp']));
  const dst = await tempStore(t);
  await load(dst, createReadStream(join(dir, 'x.tar')));
  t.deepEqual(execFileSync('ls', ['-A', dst.tmpDir], { encoding: 'utf8' }), '');
});
