/**
 * pull's references and platforms against docker-registry on 127.0.0.1, with what dockerd 20.10
 * does for the same pulls (checked by hand against the same registry).
 */
import test, { type ExecutionContext } from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { inspectImage, listImages, MediaTypes, pull, push, RegistryError, sha256Of, type Digest, type Index, type RegistryEvent, type Store } from '../src/index.js';
import { importBusybox, makeTar, startRegistry, tempStore } from './archive-fixtures.js';

/** A registry holding busybox as `hreg/bb:1`; returns its host and the manifest digest. */
async function registryWithBusybox(t: ExecutionContext): Promise<{ host: string; digest: Digest; id: Digest; src: Store }> {
  const host = await startRegistry(t);
  const src = await tempStore(t);
  const { id } = await importBusybox(t, src, `${host}/hreg/bb:1`);
  const pushed = await push(src, `${host}/hreg/bb:1`);
  return { host, digest: pushed.digest, id, src };
}

test('an index without the platform: dockerd\'s "no matching manifest" message, nothing stored', async (t) => {
  const { host, src } = await registryWithBusybox(t);
  const m = (await src.resolveImage(`${host}/hreg/bb:1`)).manifestDescriptor;
  const entry = (architecture: string, variant?: string) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { architecture, os: 'linux', ...(variant ? { variant } : {}) } });
  const index: Index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [entry('arm64', 'v8'), entry('s390x')] };
  const res = await fetch(`http://${host}/v2/hreg/bb/manifests/noamd`, { method: 'PUT', headers: { 'Content-Type': MediaTypes.ociIndex }, body: Buffer.from(JSON.stringify(index)) });
  t.is(res.status, 201);
  const dst = await tempStore(t);
  const before = await readFile(join(dst.root, 'index.json'), 'utf8');
  const err = await t.throwsAsync(pull(dst, `${host}/hreg/bb:noamd`, { platform: { os: 'linux', architecture: 'amd64' } }), { instanceOf: RegistryError });
  t.is(err!.message, 'no matching manifest for linux/amd64 in the manifest list entries');
  t.is(err!.hint, `${host}/hreg/bb:noamd is not built for this platform; --platform picks another`);
  t.is(await readFile(join(dst.root, 'index.json'), 'utf8'), before);
  // the platform that is there
  t.is((await pull(dst, `${host}/hreg/bb:noamd`, { platform: { os: 'linux', architecture: 's390x' } })).manifest.digest, m.digest);
});

test('pull name:tag@digest pulls by the digest and stores no tag, as dockerd', async (t) => {
  const { host, digest, id } = await registryWithBusybox(t);
  const dst = await tempStore(t);
  const canonical = `${host}/hreg/bb@${digest}`;
  const pulled = await pull(dst, `${host}/hreg/bb:other@${digest}`);
  t.is(pulled.ref, canonical);
  t.is(pulled.id, id);
  t.true(pulled.updated);
  const ins = await inspectImage(dst, canonical);
  t.deepEqual([ins.RepoTags, ins.RepoDigests], [[], [canonical]]);
  t.deepEqual((await listImages(dst)).map((r) => [r.repository, r.tag, r.digest]), [[`${host}/hreg/bb`, '<none>', digest]]);
  t.false((await readFile(join(dst.root, 'index.json'), 'utf8')).includes(':other'));
});

test('pull by digest after a pull by tag: "up to date" (dockerd keeps repo@digest from the tag pull), index unchanged', async (t) => {
  const { host, digest, id } = await registryWithBusybox(t);
  const dst = await tempStore(t);
  t.true((await pull(dst, `${host}/hreg/bb:1`)).updated);
  const index = await readFile(join(dst.root, 'index.json'), 'utf8');
  const canonical = `${host}/hreg/bb@${digest}`;
  const again = await pull(dst, canonical);
  t.false(again.updated);
  t.is(again.id, id);
  t.is(await readFile(join(dst.root, 'index.json'), 'utf8'), index);
  t.deepEqual((await listImages(dst)).map((r) => [r.repository, r.tag, r.digest]), [[`${host}/hreg/bb`, '1', digest]]);
  // and a tag pulled for an image there by digest only: a new tag, so "Downloaded newer image"
  const other = await tempStore(t);
  t.true((await pull(other, canonical)).updated);
  t.false((await pull(other, canonical)).updated);
  t.true((await pull(other, `${host}/hreg/bb:1`)).updated);
  t.false((await pull(other, `${host}/hreg/bb:1`)).updated);
});

test('htpasswd registry without credentials: push lists its layers, then dockerd\'s bare "no basic auth credentials"; pull names the request', async (t) => {
  const host = await startRegistry(t, { name: 'alice', password: 's3cret' });
  const store = await tempStore(t);
  const ref = `${host}/hreg/auth:1`;
  await importBusybox(t, store, ref);
  const events: string[] = [];
  const anon = await t.throwsAsync(push(store, ref, { onEvent: (e) => events.push(e.type) }), { instanceOf: RegistryError });
  t.is(anon!.message, 'no basic auth credentials');
  t.is(anon!.status, 401);
  t.is(anon!.hint, `log in first: 'tsbuild login ${host}'`);
  t.deepEqual(events, ['preparing']);
  const pullErr = await t.throwsAsync(pull(await tempStore(t), ref), { instanceOf: RegistryError });
  // dockerd: 'Head "http://H/v2/hreg/auth/manifests/1": no basic auth credentials' (its first request is a HEAD)
  t.is(pullErr!.message, `Get "http://${host}/v2/hreg/auth/manifests/1": no basic auth credentials`);
});

/** Tags `child` in `store`: the image `base` names plus one layer holding `file`. */
async function addLayer(store: Store, base: string, child: string, file: string): Promise<void> {
  const img = await store.resolveImage(base);
  const tarBytes = await makeTar([{ name: file, data: file }]);
  const layer = gzipSync(tarBytes);
  await store.writeBufferBlob(layer);
  const config = Buffer.from(JSON.stringify({ ...img.config, rootfs: { type: 'layers', diff_ids: [...img.config.rootfs.diff_ids, sha256Of(tarBytes)] } }));
  await store.writeBufferBlob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      ...img.manifest,
      config: { ...img.manifest.config, digest: sha256Of(config), size: config.length },
      layers: [...img.manifest.layers, { mediaType: MediaTypes.ociLayerGzip, digest: sha256Of(layer), size: layer.length }],
    }),
  );
  await store.writeBufferBlob(manifest);
  await store.tag(child, { mediaType: img.manifestDescriptor.mediaType, digest: sha256Of(manifest), size: manifest.length });
}

test('push of an image sharing its base layer with one pushed to another repository mounts that layer ("Mounted from"), as dockerd', async (t) => {
  const host = await startRegistry(t);
  const store = await tempStore(t);
  await importBusybox(t, store, `${host}/hreg/base:1`);
  await push(store, `${host}/hreg/base:1`);
  await addLayer(store, `${host}/hreg/base:1`, `${host}/hreg/child:1`, 'child.txt');
  const events: RegistryEvent[] = [];
  await push(store, `${host}/hreg/child:1`, { onEvent: (e) => events.push(e) });
  const img = await store.resolveImage(`${host}/hreg/child:1`);
  const layers = events.filter((e): e is Extract<RegistryEvent, { type: 'blob' }> => e.type === 'blob' && e.kind === 'layer');
  t.deepEqual(
    layers.map((e) => [e.digest, e.status, e.from]).sort(),
    [
      [img.manifest.layers[0]!.digest, 'mounted', 'hreg/base'],
      [img.manifest.layers[1]!.digest, 'done', undefined],
    ].sort(),
  );
  // the registry has the mounted layer in the new repository
  const head = await fetch(`http://${host}/v2/hreg/child/blobs/${img.manifest.layers[0]!.digest}`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is((await pull(await tempStore(t), `${host}/hreg/child:1`)).id, img.id);
});
