/**
 * load (from a stream and in place with loadFile) and pull record each layer's content size in the
 * pass that checks its diffID, so `images` need not decompress the layers again; the recorded size
 * is what `countBlobContentSize` computes from the blob. A layer whose tar is not whole still loads
 * (its diffID is what validates it), just without a recorded size. And `images` lists an index
 * entry whose tag `parseReference` now refuses instead of failing.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { listImages, load, loadFile, MediaTypes, pull, push, save, type Manifest, type Store, type DiffID } from '../src/index.js';
import { countBlobContentSize, recordedContentSize } from '../src/layer-size.js';
import { collector, importBusybox, makeTar, sha256hex, startRegistry, tempDir, tempStore, type TarSpec } from './archive-fixtures.js';

/** For every layer of the image `ref`: [recorded size, size computed from the blob]. */
async function sizes(store: Store, ref: string): Promise<Array<[number | undefined, number]>> {
  const img = await store.resolveImage(ref);
  return Promise.all(
    img.manifest.layers.map(async (l, i) => {
      const diffID = img.config.rootfs.diff_ids[i]! as DiffID;
      return [await recordedContentSize(store, diffID), await countBlobContentSize(store, l.digest)] as [number | undefined, number];
    }),
  );
}

/** Asserts every layer of `ref` has a recorded size equal to the computed one; returns the sizes. */
async function assertRecorded(t: ExecutionContext, store: Store, ref: string): Promise<number[]> {
  const s = await sizes(store, ref);
  t.true(s.length > 0);
  for (const [recorded, computed] of s) {
    t.not(recorded, undefined, 'a size is recorded');
    t.is(recorded, computed);
  }
  return s.map(([, c]) => c);
}

async function archiveFile(t: ExecutionContext, bytes: Buffer, name = 'archive.tar'): Promise<string> {
  const file = join(await tempDir(t, 'ls-sizeload-'), name);
  await writeFile(file, bytes);
  return file;
}

/** A saved busybox image (tsbuild save: gzip'd layer blobs) and the sizes its layers have. */
async function savedBusybox(t: ExecutionContext): Promise<Buffer> {
  const src = await tempStore(t);
  await importBusybox(t, src, 'lssize/bb:1');
  const out = collector();
  await save(src, ['lssize/bb:1'], out);
  return out.bytes();
}

test('load of a saved image records each layer\'s content size, equal to the one computed from the blob', async (t) => {
  const store = await tempStore(t);
  await load(store, Readable.from([await savedBusybox(t)]));
  const [size] = await assertRecorded(t, store, 'lssize/bb:1');
  t.true(size! > 1_000_000, 'busybox is counted, not an empty tar');
});

test('loadFile (in place) of a saved image records each layer\'s content size', async (t) => {
  const store = await tempStore(t);
  await loadFile(store, await archiveFile(t, await savedBusybox(t)));
  await assertRecorded(t, store, 'lssize/bb:1');
});

/** Layer tars whose files cross the read and zlib chunk sizes, a long name, and symlinks. */
async function layerTars(): Promise<Buffer[]> {
  return Promise.all([
    makeTar([
      { name: 'big', data: Buffer.alloc(3 * 1024 * 1024 + 7, 1) },
      { name: `${'d'.repeat(150)}/f`, data: Buffer.alloc(300_000, 2) },
      { name: 'l', type: 'symlink', linkname: 't'.repeat(180) },
    ]),
    makeTar([{ name: 'small', data: 'abc' }, { name: 'h', type: 'link', linkname: 'small' }]),
  ]);
}

/** A docker-archive of one image; `gzip` stores its layers gzip'd (blobs/sha256 form), else as classic `<n>/layer.tar`. */
function dockerArchive(tars: Buffer[], gzip: boolean, tag: string): Promise<Buffer> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: tars.map((b) => `sha256:${sha256hex(b)}`) } }));
  const configHex = sha256hex(config);
  const layers = gzip ? tars.map((b) => gzipSync(b)) : tars;
  const names = layers.map((l, i) => (gzip ? `blobs/sha256/${sha256hex(l)}` : `${i}/layer.tar`));
  const members: TarSpec[] = [
    ...layers.map((l, i) => ({ name: names[i]!, data: l })),
    { name: `${configHex}.json`, data: config },
    { name: 'manifest.json', data: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [tag], Layers: names }]) },
  ];
  return makeTar(members);
}

for (const gzip of [true, false]) {
  const form = gzip ? 'gzip\'d layers' : 'uncompressed layer.tar members';
  test(`load and loadFile of an archive with ${form} record the content sizes`, async (t) => {
    const tars = await layerTars();
    const archive = await dockerArchive(tars, gzip, 'lssize/multi:1');
    const streamed = await tempStore(t);
    await load(streamed, Readable.from([archive]));
    const inPlace = await tempStore(t);
    await loadFile(inPlace, await archiveFile(t, archive));
    const expected = [3 * 1024 * 1024 + 7 + 300_000 + 180, 3];
    t.deepEqual(await assertRecorded(t, streamed, 'lssize/multi:1'), expected);
    t.deepEqual(await assertRecorded(t, inPlace, 'lssize/multi:1'), expected);
  });
}

test('a layer whose tar has no end-of-archive block still loads (its diffID checks out), without a recorded size', async (t) => {
  const whole = await makeTar([{ name: 'a', data: 'hello' }]);
  const cut = whole.subarray(0, 1024); // header + data block, no end blocks
  for (const gzip of [true, false]) {
    const archive = await dockerArchive([cut], gzip, 'lssize/cut:1');
    const store = await tempStore(t);
    const [img] = await loadFile(store, await archiveFile(t, archive));
    t.deepEqual(img!.tags, ['docker.io/lssize/cut:1']);
    const s = await sizes(store, 'lssize/cut:1').catch((err: unknown) => err);
    // countBlobContentSize refuses the cut tar; nothing was recorded for it
    t.true(s instanceof Error);
    const manifest = await store.readJSONBlob<Manifest>(img!.manifest.digest);
    t.is(manifest.layers[0]!.mediaType, MediaTypes.ociLayerGzip);
    const config = await store.readJSONBlob<{ rootfs: { diff_ids: DiffID[] } }>(manifest.config.digest);
    t.is(await recordedContentSize(store, config.rootfs.diff_ids[0]!), undefined);
  }
});


test('pull records each layer\'s content size, equal to the one computed from the blob', async (t) => {
  const host = await startRegistry(t);
  const src = await tempStore(t);
  await importBusybox(t, src, 'lssize/bb:1');
  const ref = `${host}/lssize/bb:1`;
  await src.tag(ref, (await src.resolveImage('lssize/bb:1')).manifestDescriptor);
  await push(src, ref);
  const dst = await tempStore(t);
  await pull(dst, ref);
  await assertRecorded(t, dst, ref);
});

test('images lists an index entry whose tag parseReference now refuses by its raw name, with the rest', async (t) => {
  const store = await tempStore(t);
  await importBusybox(t, store, 'lssize/ok:1');
  const desc = (await store.resolveImage('lssize/ok:1')).manifestDescriptor;
  // what an older version wrote: uppercase names it took for a registry, or kept as they were
  const legacy = ['Up/x:latest', 'docker.io/library/Up:2', 'localhost:5000/Up/y', `Up/z@sha256:${'a'.repeat(64)}`];
  await store.updateIndex((index) => ({
    ...index,
    manifests: [...index.manifests, ...legacy.map((ref) => ({ ...desc, annotations: { 'org.opencontainers.image.ref.name': ref } }))],
  }));
  const rows = await listImages(store);
  t.deepEqual(
    rows.map((r) => `${r.repository} ${r.tag} ${r.id === rows[0]!.id}`).sort(),
    ['Up 2 true', 'Up/x latest true', 'Up/z <none> true', 'localhost:5000/Up/y <none> true', 'lssize/ok 1 true'],
  );
  t.true(rows.every((r) => r.size > 1_000_000));
});
