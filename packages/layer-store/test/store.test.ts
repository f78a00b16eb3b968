import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { MediaTypes, Store, sha256Of, writeLayer, type ImageConfig } from '../src/index.js';
import { sh, tempDir } from './helpers.js';

const indexModule = fileURLToPath(new URL('../src/index.js', import.meta.url));

function config(diffIDs: string[] = [], extra: Partial<ImageConfig> = {}): ImageConfig {
  return {
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIDs as never },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'test' }],
    ...extra,
  };
}

test('open creates an OCI layout that reopens', async (t) => {
  const root = join(await tempDir(t), 'store');
  await Store.open(root);
  t.deepEqual(JSON.parse(await readFile(join(root, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  t.deepEqual(JSON.parse(await readFile(join(root, 'index.json'), 'utf8')).manifests, []);
  t.deepEqual((await readdir(root)).sort(), ['blobs', 'cache', 'index.json', 'oci-layout', 'snapshots', 'tmp', 'tsbuild.lock'].sort());
  const again = await Store.open(root);
  t.deepEqual((await again.readIndex()).manifests, []);
});

test('writeBlob stores by sha256, reads back, leaves no temp files', async (t) => {
  const store = await Store.open(await tempDir(t));
  const data = Buffer.from('some blob bytes');
  const { digest, size } = await store.writeBlob(Readable.from([data]));
  t.is(digest, sha256Of(data));
  t.is(size, data.length);
  t.true(await store.hasBlob(digest));
  t.is(await store.blobSize(digest), data.length);
  const chunks: Buffer[] = [];
  for await (const c of store.openBlob(digest)) chunks.push(c as Buffer);
  t.deepEqual(Buffer.concat(chunks), data);
  t.deepEqual(await readdir(store.tmpDir), []);
});

test('writeBlob with a wrong expected digest throws DigestMismatchError and stores nothing', async (t) => {
  const store = await Store.open(await tempDir(t));
  const wrong = sha256Of('other');
  await t.throwsAsync(store.writeBlob(Readable.from([Buffer.from('data')]), { expected: wrong }), { code: 'E_DIGEST_MISMATCH' } as never);
  t.false(await store.hasBlob(wrong));
  t.false(await store.hasBlob(sha256Of('data')));
  t.deepEqual(await readdir(store.tmpDir), []);
});

test('writeBlob of a present blob verifies the bytes', async (t) => {
  const store = await Store.open(await tempDir(t));
  const d = sha256Of('x');
  await store.writeBlob(Readable.from([Buffer.from('x')]), { expected: d });
  t.deepEqual(await store.writeBlob(Readable.from([Buffer.from('x')]), { expected: d }), { digest: d, size: 1 });
  await t.throwsAsync(store.writeBlob(Readable.from([Buffer.from('y')]), { expected: d }), { code: 'E_DIGEST_MISMATCH' } as never);
  await t.throwsAsync(store.writeBlob(Readable.from([Buffer.from('x')]), { expected: d, expectedSize: 2 }), { code: 'E_DIGEST_MISMATCH' } as never);
});

test('openBlob of a missing blob errors with E_BLOB_NOT_FOUND', async (t) => {
  const store = await Store.open(await tempDir(t));
  const s = store.openBlob(sha256Of('missing'));
  await t.throwsAsync(async () => {
    for await (const _ of s) void _;
  }, { code: 'E_BLOB_NOT_FOUND' } as never);
});

test('readJSONBlob verifies the digest of the bytes on disk', async (t) => {
  const store = await Store.open(await tempDir(t));
  const desc = await store.writeJSONBlob({ b: 1, a: '<x>' }, 'application/json');
  t.deepEqual(await store.readJSONBlob(desc.digest), { a: '<x>', b: 1 });
  t.is(await readFile(store.blobPath(desc.digest), 'utf8'), '{"a":"\\u003cx\\u003e","b":1}');
  await writeFile(store.blobPath(desc.digest), '{"a":1}');
  await t.throwsAsync(store.readJSONBlob(desc.digest), { code: 'E_DIGEST_MISMATCH' } as never);
});

test('commitImage: tags, list, resolve by ref, id, id prefix, manifest digest', async (t) => {
  const store = await Store.open(await tempDir(t));
  const { id, manifest } = await store.commitImage({ config: config(), layers: [], tags: ['hello', 'user/app:1'] });
  t.is(id, sha256Of(await readFile(store.blobPath(id))));
  const images = await store.listImages();
  t.is(images.length, 1);
  t.deepEqual(images[0]!.refs, ['docker.io/library/hello:latest', 'docker.io/user/app:1']);
  for (const q of ['hello', 'hello:latest', 'docker.io/library/hello', 'user/app:1', id, id.slice(7, 19), `sha256:${id.slice(7, 15)}`, manifest.digest, `hello@${manifest.digest}`]) {
    const r = await store.resolveImage(q);
    t.is(r.id, id, q);
    t.is(r.manifestDescriptor.digest, manifest.digest);
  }
  const r = await store.resolveImage('hello');
  t.is(r.manifest.mediaType, MediaTypes.ociManifest);
  t.is(r.config.os, 'linux');
  await t.throwsAsync(store.resolveImage('nope'), { code: 'E_IMAGE_NOT_FOUND', message: /nope/ } as never);
  await t.throwsAsync(store.resolveImage('hello:2'), { code: 'E_IMAGE_NOT_FOUND' } as never);
});

test('a moved tag leaves the old image untagged (dangling); untag removes; untagged commit stays listed', async (t) => {
  const store = await Store.open(await tempDir(t));
  const a = await store.commitImage({ config: config([], { author: 'a' }), layers: [], tags: ['x'] });
  const b = await store.commitImage({ config: config([], { author: 'b' }), layers: [], tags: ['x'] });
  t.not(a.id, b.id);
  const list = await store.listImages();
  t.deepEqual(list.map((i) => [i.id, i.refs]), [[a.id, []], [b.id, ['docker.io/library/x:latest']]]);
  t.is((await store.resolveImage('x')).id, b.id);
  const c = await store.commitImage({ config: config([], { author: 'c' }), layers: [], tags: [] });
  t.true((await store.listImages()).some((i) => i.id === c.id && i.refs.length === 0));
  await store.tag('y:1', c.manifest);
  t.deepEqual((await store.resolveImage(c.id)).refs, ['docker.io/library/y:1']);
  t.is((await store.readIndex()).manifests.filter((m) => m.digest === c.manifest.digest).length, 1);
  const u = await store.untag('y:1');
  t.false(u.stillReferenced);
  await t.throwsAsync(store.untag('y:1'), { code: 'E_IMAGE_NOT_FOUND' } as never);
});

test('ambiguous id prefix is refused', async (t) => {
  const store = await Store.open(await tempDir(t));
  const ids = new Set<string>();
  // Make images until two ids share a first hex digit (at most 17 needed).
  for (let i = 0; i < 17; i++) {
    const { id } = await store.commitImage({ config: config([], { author: String(i) }), layers: [], tags: [] });
    const p = id.slice(7, 8);
    if (ids.has(p)) {
      await t.throwsAsync(store.resolveImage(p), { code: 'E_IMAGE_AMBIGUOUS' } as never);
      return;
    }
    ids.add(p);
  }
  t.fail('no shared prefix');
});

test('two processes tagging at once: no tag is lost', async (t) => {
  const store = await Store.open(await tempDir(t));
  const { manifest } = await store.commitImage({ config: config(), layers: [], tags: [] });
  const N = 15;
  const script = `
    const { Store } = await import(${JSON.stringify(indexModule)});
    const s = await Store.open(process.argv[1]);
    const m = JSON.parse(process.argv[2]);
    for (let i = 0; i < ${N}; i++) await s.tag(process.argv[3] + ':' + i, m);
  `;
  const run = (prefix: string) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script, store.root, JSON.stringify(manifest), prefix], { stdio: 'inherit' });
    return once(c, 'exit').then(([code]) => code);
  };
  t.deepEqual(await Promise.all([run('a'), run('b')]), [0, 0]);
  const refs = (await store.listImages())[0]!.refs.sort();
  t.is(refs.length, 2 * N);
  for (const p of ['a', 'b']) for (let i = 0; i < N; i++) t.true(refs.includes(`docker.io/library/${p}:${i}`));
});

test('skopeo and umoci read an image committed with commitImage', async (t) => {
  const dir = await tempDir(t);
  const store = await Store.open(join(dir, 'store'));
  const src = join(dir, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc', 'hello.txt'), 'hi\n');
  const layer = await writeLayer(store, src, { kind: 'rootfs', sourceDateEpoch: 0 });
  const { id } = await store.commitImage({
    config: config([layer.diffID], { config: { Labels: { b: '2', a: '1' }, Cmd: ['/bin/sh'] } }),
    layers: [layer],
    tags: ['hello:1'],
  });
  const info = JSON.parse(await sh('skopeo', ['inspect', `oci:${store.root}:docker.io/library/hello:1`]));
  t.deepEqual(info.Layers, [layer.digest]);
  t.deepEqual(info.Labels, { a: '1', b: '2' });
  const cfg = JSON.parse(await sh('skopeo', ['inspect', '--config', `oci:${store.root}:docker.io/library/hello:1`]));
  t.deepEqual(cfg.rootfs.diff_ids, [layer.diffID]);
  t.is(sha256Of(await sh('skopeo', ['inspect', '--raw', '--config', `oci:${store.root}:docker.io/library/hello:1`])), id);
  const bundle = join(dir, 'bundle');
  await sh('umoci', ['unpack', '--image', `${store.root}:docker.io/library/hello:1`, bundle]);
  t.is(await readFile(join(bundle, 'rootfs', 'etc', 'hello.txt'), 'utf8'), 'hi\n');
});
