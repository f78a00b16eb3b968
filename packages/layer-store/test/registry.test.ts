/**
 * pull / push against the CNCF distribution registry (Debian's docker-registry) on 127.0.0.1,
 * checked with skopeo; hostile and token-auth cases against a tiny fake registry.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  checkLogin,
  collectGarbage,
  inspectImage,
  listImages,
  prune,
  readRepoDigests,
  removeImage,
  tagImage,
  chainIDsOf,
  DigestMismatchError,
  exportImage,
  findCredentials,
  isLoopbackRegistry,
  MediaTypes,
  parseAuthChallenge,
  pull,
  push,
  registryKey,
  RegistryError,
  removeCredentials,
  save,
  saveCredentials,
  selectPlatformManifest,
  sha256Of,
  type Descriptor,
  type Digest,
  type Index,
  type Platform,
  type RegistryEvent,
  type Store,
} from '../src/index.js';
import { collector, importBusybox, startRegistry, tempDir, tempStore } from './archive-fixtures.js';


async function exportHash(store: Store, ref: string): Promise<string> {
  const out = collector();
  await exportImage(store, ref, out);
  return createHash('sha256').update(out.bytes()).digest('hex');
}

async function storeState(store: Store): Promise<{ index: string; blobs: string[] }> {
  return { index: await readFile(join(store.root, 'index.json'), 'utf8'), blobs: (await readdir(store.blobsDir)).sort() };
}

function skopeo(args: string[]): string {
  return execFileSync('skopeo', args, { encoding: 'utf8', maxBuffer: 1 << 26 });
}

test('push to docker-registry, pull into an empty store: same image ID, manifest digest and files', async (t) => {
  const host = await startRegistry(t);
  const src = await tempStore(t);
  const { id } = await importBusybox(t, src, 'lsreg/bb:1');
  const ref = `${host}/lsreg/bb:1`;
  await src.tag(ref, (await src.resolveImage('lsreg/bb:1')).manifestDescriptor);
  const events: RegistryEvent[] = [];
  const pushed = await push(src, ref, { onEvent: (e) => events.push(e) });
  const local = await src.resolveImage(ref);
  t.is(pushed.digest, local.manifestDescriptor.digest);
  t.is(pushed.size, local.manifestDescriptor.size);
  // the layers listed first (dockerd's 'Preparing'), top first, then each blob's result
  t.deepEqual(events[0], { type: 'preparing', ids: [...local.config.rootfs.diff_ids].reverse() });
  t.deepEqual(events.slice(1).map((e) => e.type === 'blob' && `${e.kind}:${e.status}`).sort(), ['config:done', 'layer:done']);

  // a second push finds everything there
  const again: RegistryEvent[] = [];
  t.is((await push(src, ref, { onEvent: (e) => again.push(e) })).digest, pushed.digest);
  t.true(again.every((e) => e.type === 'preparing' || (e.type === 'blob' && e.status === 'exists')));

  const dst = await tempStore(t);
  const pulled = await pull(dst, ref);
  t.is(pulled.id, id);
  t.is(pulled.manifest.digest, pushed.digest);
  t.is(pulled.ref, ref);
  t.true(pulled.updated);
  const img = await dst.resolveImage(ref);
  t.is(img.id, id);
  t.is(await exportHash(dst, ref), await exportHash(src, ref));

  // pulling again: nothing downloaded, nothing changed
  const second: RegistryEvent[] = [];
  const re = await pull(dst, ref, { onEvent: (e) => second.push(e) });
  t.false(re.updated);
  t.true(second.filter((e) => e.type === 'blob').every((e) => e.type === 'blob' && e.status === 'exists'));
});

test('skopeo sees what push sent: same digest, same manifest bytes, same layers', async (t) => {
  const host = await startRegistry(t);
  const store = await tempStore(t);
  await importBusybox(t, store, `${host}/lsreg/sk:v1`);
  const pushed = await push(store, `${host}/lsreg/sk:v1`);
  const info = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${host}/lsreg/sk:v1`])) as { Digest: string; Layers: string[] };
  const img = await store.resolveImage(`${host}/lsreg/sk:v1`);
  t.is(info.Digest, pushed.digest);
  t.deepEqual(info.Layers, img.manifest.layers.map((l) => l.digest));
  const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/lsreg/sk:v1`]);
  t.is(sha256Of(raw), pushed.digest);
  t.deepEqual(raw, await readFile(store.blobPath(pushed.digest)));
});

test('pull takes a Docker schema 2 image skopeo copied in, bytes and digest preserved; pull by digest', async (t) => {
  const host = await startRegistry(t);
  const src = await tempStore(t);
  const { id } = await importBusybox(t, src, 'lsreg/skc:1');
  const dir = await tempDir(t);
  const archive = join(dir, 'img.tar');
  const out = collector();
  await save(src, ['lsreg/skc:1'], out);
  await writeFile(archive, out.bytes());
  skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--format', 'v2s2', `oci-archive:${archive}:docker.io/lsreg/skc:1`, `docker://${host}/lsreg/skc:d`]);
  const remote = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${host}/lsreg/skc:d`])) as { Digest: string };

  const dst = await tempStore(t);
  const pulled = await pull(dst, `${host}/lsreg/skc:d`);
  t.is(pulled.manifest.digest as string, remote.Digest);
  t.is(pulled.manifest.mediaType, MediaTypes.dockerManifest);
  t.is(pulled.id, id);
  t.is(await exportHash(dst, `${host}/lsreg/skc:d`), await exportHash(src, 'lsreg/skc:1'));

  const byDigest = `${host}/lsreg/skc@${remote.Digest}`;
  const other = await tempStore(t);
  const p2 = await pull(other, byDigest);
  t.is(p2.ref, byDigest);
  t.is((await other.resolveImage(byDigest)).id, id);
});

test('pull of an index picks the host platform; no match is a clear error', async (t) => {
  const host = await startRegistry(t);
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, `${host}/lsreg/multi:single`);
  const pushed = await push(store, `${host}/lsreg/multi:single`);
  const m = (await store.resolveImage(`${host}/lsreg/multi:single`)).manifestDescriptor;
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: [
      { mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ],
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const res = await fetch(`http://${host}/v2/lsreg/multi/manifests/all`, { method: 'PUT', headers: { 'Content-Type': MediaTypes.ociIndex }, body: bytes });
  t.is(res.status, 201);

  const dst = await tempStore(t);
  const pulled = await pull(dst, `${host}/lsreg/multi:all`, { platform: { os: 'linux', architecture: 'amd64' } });
  t.is(pulled.digest, sha256Of(bytes));
  t.is(pulled.manifest.digest, pushed.digest);
  t.is(pulled.id, id);

  const before = await storeState(dst);
  const err = await t.throwsAsync(pull(dst, `${host}/lsreg/multi:all`, { platform: { os: 'linux', architecture: 's390x' } }), { instanceOf: RegistryError });
  t.regex(err!.message, /no matching manifest for linux\/s390x/);
  t.deepEqual((await storeState(dst)).index, before.index);
});

test('pull of a missing tag: not-found error, store unchanged', async (t) => {
  const host = await startRegistry(t);
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/lsreg/none:nope`), { instanceOf: RegistryError });
  t.is(err!.code, 'E_REGISTRY');
  t.is(err!.status, 404);
  t.regex(err!.message, /manifest for 127\.0\.0\.1:\d+\/lsreg\/none:nope not found: manifest unknown/);
  t.truthy(err!.hint);
  t.deepEqual(await storeState(store), before);
});

test('push of an image the store does not have is an image-not-found error', async (t) => {
  const host = await startRegistry(t);
  const store = await tempStore(t);
  const err = await t.throwsAsync(push(store, `${host}/lsreg/ghost:1`));
  t.is((err as { code?: string }).code, 'E_IMAGE_NOT_FOUND');
});

test('htpasswd registry: push without credentials is 401 with a login hint; with them it works', async (t) => {
  const user = { name: 'alice', password: 's3cret' };
  const host = await startRegistry(t, user);
  const store = await tempStore(t);
  await importBusybox(t, store, `${host}/lsreg/auth:1`);
  const anon = await t.throwsAsync(push(store, `${host}/lsreg/auth:1`), { instanceOf: RegistryError });
  t.is(anon!.status, 401);
  t.regex(anon!.message, /no basic auth credentials/);
  t.is(anon!.hint, `log in first: 'tsbuild login ${host}'`);

  const wrong = await t.throwsAsync(push(store, `${host}/lsreg/auth:1`, { auth: { username: 'alice', password: 'nope' } }), { instanceOf: RegistryError });
  t.is(wrong!.status, 401);
  t.regex(wrong!.hint ?? '', /refused the credentials/);
  await t.throwsAsync(checkLogin(host, { auth: { username: 'alice', password: 'nope' } }), { instanceOf: RegistryError });

  await checkLogin(host, { auth: { username: user.name, password: user.password } });
  const auth = { username: user.name, password: user.password };
  const pushed = await push(store, `${host}/lsreg/auth:1`, { auth });
  const dst = await tempStore(t);
  await t.throwsAsync(pull(dst, `${host}/lsreg/auth:1`), { instanceOf: RegistryError, message: /no basic auth credentials/ });
  t.is((await pull(dst, `${host}/lsreg/auth:1`, { auth })).manifest.digest, pushed.digest);
});

test('RepoDigests: push and pull record repository@digest; inspect, images, rmi and gc follow dockerd', async (t) => {
  const host = await startRegistry(t);
  const store = await tempStore(t);
  const ref = `${host}/lsreg/rd:1`;
  await importBusybox(t, store, ref);
  t.deepEqual((await inspectImage(store, ref)).RepoDigests, [], 'nothing before a push');
  const pushed = await push(store, ref);
  const canonical = `${host}/lsreg/rd@${pushed.digest}`;
  const id = (await inspectImage(store, ref)).Id;
  t.deepEqual((await inspectImage(store, ref)).RepoDigests, [canonical]);
  t.deepEqual(Object.fromEntries(await readRepoDigests(store)), { [canonical]: id });
  // a tag does not add a digest (as docker tag)
  await tagImage(store, ref, 'local/rd:2');
  t.deepEqual(
    (await listImages(store)).map((r) => [r.repository, r.tag, r.digest]),
    [[`${host}/lsreg/rd`, '1', pushed.digest], ['local/rd', '2', '<none>']],
  );

  const dst = await tempStore(t);
  await pull(dst, ref);
  t.deepEqual((await inspectImage(dst, ref)).RepoDigests, [canonical]);
  const before = await storeState(dst);
  t.false(before.index.includes('@sha256'), 'index.json gains nothing');
  // pull by digest: a digest reference, not a tag
  await pull(dst, canonical);
  const chains = chainIDsOf((await dst.resolveImage(ref)).config.rootfs.diff_ids).reverse();
  const untagged = await removeImage(dst, ref);
  t.deepEqual(untagged, { untagged: [ref, canonical], deleted: id, layers: chains });
  t.deepEqual(await listImages(dst), []);
  await collectGarbage(dst);
  t.deepEqual(Object.fromEntries(await readRepoDigests(dst)), {});

  // pulled by digest only: RepoTags empty, one `<none>` row with the digest
  const third = await tempStore(t);
  await pull(third, canonical);
  const ins = await inspectImage(third, canonical);
  t.deepEqual([ins.RepoTags, ins.RepoDigests], [[], [canonical]]);
  t.deepEqual((await listImages(third)).map((r) => [r.repository, r.tag, r.digest]), [[`${host}/lsreg/rd`, '<none>', pushed.digest]]);

  // an image that leaves the index (prune of the untagged) takes its digests with it
  await removeImage(store, 'local/rd:2');
  t.deepEqual((await inspectImage(store, ref)).RepoDigests, [canonical], 'another repository\'s tag went: the digest stays');
  await store.untag(ref);
  await prune(store);
  t.deepEqual(Object.fromEntries(await readRepoDigests(store)), {});
});

/** A fake registry: serves one image from memory, optionally behind a Bearer token server. */
async function fakeRegistry(
  t: ExecutionContext,
  image: { manifest: Buffer; blobs: Map<string, Buffer> },
  opts: { corrupt?: string; token?: { user: string; password: string } } = {},
): Promise<{ host: string; tokenRequests: URL[] }> {
  const tokenRequests: URL[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (url.pathname === '/token') {
      tokenRequests.push(url);
      const want = `Basic ${Buffer.from(`${opts.token!.user}:${opts.token!.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) return void res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ access_token: 'tok-123' }));
    }
    if (opts.token && req.headers.authorization !== 'Bearer tok-123') {
      const realm = `http://${req.headers.host}/token`;
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="fake",scope="repository:lsreg/x:pull"`, 'Content-Type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/lsreg\/x\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (m?.[1] === 'manifests') return void res.writeHead(200, { 'Content-Type': MediaTypes.ociManifest }).end(image.manifest);
    const blob = m?.[1] === 'blobs' ? image.blobs.get(m[2]!) : undefined;
    if (!blob) return void res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
    const body = m![2] === opts.corrupt ? Buffer.from(blob.toString('latin1').replace(/.$/s, (c) => (c === 'x' ? 'y' : 'x')), 'latin1') : blob;
    res.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, tokenRequests };
}

/** The manifest and blobs of a busybox image in `store`. */
async function imageBytes(store: Store, ref: string): Promise<{ manifest: Buffer; blobs: Map<string, Buffer>; layer: Digest; config: Digest }> {
  const img = await store.resolveImage(ref);
  const blobs = new Map<string, Buffer>();
  for (const d of [img.manifest.config, ...img.manifest.layers]) blobs.set(d.digest, await readFile(store.blobPath(d.digest)));
  return { manifest: await readFile(store.blobPath(img.manifestDescriptor.digest)), blobs, layer: img.manifest.layers[0]!.digest, config: img.manifest.config.digest };
}

test('a registry serving a layer with wrong bytes: digest mismatch, nothing tagged, no bad blob stored', async (t) => {
  const src = await tempStore(t);
  await importBusybox(t, src, 'lsreg/x:1');
  const image = await imageBytes(src, 'lsreg/x:1');
  const { host } = await fakeRegistry(t, image, { corrupt: image.layer });
  const dst = await tempStore(t);
  const before = await storeState(dst);
  const err = await t.throwsAsync(pull(dst, `${host}/lsreg/x:1`), { instanceOf: DigestMismatchError });
  t.is(err!.code, 'E_DIGEST_MISMATCH');
  t.is(err!.expected, image.layer);
  const after = await storeState(dst);
  t.is(after.index, before.index);
  t.false(await dst.hasBlob(image.layer));
  t.false(await dst.hasBlob(sha256Of(image.manifest)));
  t.deepEqual(await readdir(dst.tmpDir), []);
});

test('a config whose diffIDs do not match the layers: diffID mismatch, nothing tagged', async (t) => {
  const src = await tempStore(t);
  await importBusybox(t, src, 'lsreg/x:1');
  const image = await imageBytes(src, 'lsreg/x:1');
  const config = JSON.parse(image.blobs.get(image.config)!.toString('utf8')) as { rootfs: { diff_ids: string[] } };
  const lie = sha256Of('not the layer');
  config.rootfs.diff_ids[0] = lie;
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest = JSON.parse(image.manifest.toString('utf8')) as { config: { digest: string; size: number } };
  manifest.config = { ...manifest.config, digest: sha256Of(configBytes), size: configBytes.length };
  const blobs = new Map(image.blobs);
  blobs.set(sha256Of(configBytes), configBytes);
  const { host } = await fakeRegistry(t, { manifest: Buffer.from(JSON.stringify(manifest)), blobs });
  const dst = await tempStore(t);
  const before = await storeState(dst);
  const err = await t.throwsAsync(pull(dst, `${host}/lsreg/x:1`), { instanceOf: DigestMismatchError });
  t.is(err!.expected, lie);
  t.regex(err!.message, /diffID of layer/);
  t.is((await storeState(dst)).index, before.index);
});

test('Bearer token flow: token fetched with Basic credentials, service and scope; anonymous is refused', async (t) => {
  const src = await tempStore(t);
  const { id } = await importBusybox(t, src, 'lsreg/x:1');
  const image = await imageBytes(src, 'lsreg/x:1');
  const { host, tokenRequests } = await fakeRegistry(t, image, { token: { user: 'bob', password: 'pw' } });
  const dst = await tempStore(t);
  const pulled = await pull(dst, `${host}/lsreg/x:1`, { auth: { username: 'bob', password: 'pw' } });
  t.is(pulled.id, id);
  t.is(tokenRequests[0]!.searchParams.get('service'), 'fake');
  t.true(tokenRequests[0]!.searchParams.getAll('scope').includes('repository:lsreg/x:pull'));
  const anon = await t.throwsAsync(pull(await tempStore(t), `${host}/lsreg/x:1`), { instanceOf: RegistryError });
  t.is(anon!.status, 401);
  t.regex(anon!.hint ?? '', /tsbuild login 127\.0\.0\.1:\d+/);
});

test('pull aborted mid-blob: rejects, no temp file, nothing tagged', async (t) => {
  const src = await tempStore(t);
  await importBusybox(t, src, 'lsreg/x:1');
  const image = await imageBytes(src, 'lsreg/x:1');
  const controller = new AbortController();
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/v2/') return void res.writeHead(200).end('{}');
    if (path.includes('/manifests/')) return void res.writeHead(200, { 'Content-Type': MediaTypes.ociManifest }).end(image.manifest);
    const blob = image.blobs.get(path.slice(path.lastIndexOf('/') + 1))!;
    if (!path.endsWith(image.layer)) return void res.writeHead(200).end(blob);
    // half the layer, then the client gives up while the connection stays open
    res.writeHead(200, { 'Content-Length': blob.length });
    res.write(blob.subarray(0, blob.length >> 1), () => controller.abort(new Error('stop')));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const dst = await tempStore(t);
  const before = await storeState(dst);
  await t.throwsAsync(pull(dst, `127.0.0.1:${(server.address() as AddressInfo).port}/lsreg/x:1`, { signal: controller.signal }));
  server.closeAllConnections();
  t.is((await storeState(dst)).index, before.index);
  t.false(await dst.hasBlob(image.layer));
  t.deepEqual(await readdir(dst.tmpDir), []);
});

test('parseAuthChallenge', (t) => {
  const rows: Array<[string, ReturnType<typeof parseAuthChallenge>]> = [
    ['Basic realm="Registry Realm"', { scheme: 'basic', params: { realm: 'Registry Realm' } }],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ],
    ['Bearer realm="https://x/t", scope="repository:a:pull,push", error="insufficient_scope"', { scheme: 'bearer', params: { realm: 'https://x/t', scope: 'repository:a:pull,push', error: 'insufficient_scope' } }],
    ['Bearer realm=unquoted,service=s', { scheme: 'bearer', params: { realm: 'unquoted', service: 's' } }],
    ['Basic realm="a \\"quoted\\" realm"', { scheme: 'basic', params: { realm: 'a "quoted" realm' } }],
    ['', undefined],
  ];
  for (const [header, want] of rows) t.deepEqual(parseAuthChallenge(header), want, header);
});

test('isLoopbackRegistry: localhost, 127/8 and ::1 speak HTTP', (t) => {
  const rows: Array<[string, boolean]> = [
    ['localhost', true],
    ['localhost:5000', true],
    ['127.0.0.1:40000', true],
    ['127.1.2.3', true],
    ['[::1]:5000', true],
    ['docker.io', false],
    ['registry.example.com:5000', false],
    ['localhost.example.com', false],
    ['10.0.0.1:5000', false],
  ];
  for (const [host, want] of rows) t.is(isLoopbackRegistry(host), want, host);
});

test('selectPlatformManifest', (t) => {
  const d = (n: number, platform: Platform): Descriptor => ({ mediaType: MediaTypes.ociManifest, digest: sha256Of(String(n)), size: n, platform });
  const index: Index = {
    schemaVersion: 2,
    manifests: [
      d(1, { os: 'linux', architecture: 'arm', variant: 'v6' }),
      d(2, { os: 'linux', architecture: 'arm', variant: 'v7' }),
      d(3, { os: 'linux', architecture: 'arm64' }),
      d(4, { os: 'linux', architecture: 'amd64' }),
      d(5, { os: 'windows', architecture: 'amd64' }),
    ],
  };
  const rows: Array<[Platform, number | undefined]> = [
    [{ os: 'linux', architecture: 'amd64' }, 4],
    [{ os: 'linux', architecture: 'arm', variant: 'v7' }, 2],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, 3],
    [{ os: 'windows', architecture: 'amd64' }, 5],
    [{ os: 'linux', architecture: 's390x' }, undefined],
  ];
  for (const [p, want] of rows) t.is(selectPlatformManifest(index, p)?.size, want, JSON.stringify(p));
});

test('registryKey: scheme and path dropped, Docker Hub names unified', (t) => {
  const rows: Array<[string, string]> = [
    ['localhost:5000', 'localhost:5000'],
    ['http://localhost:5000/v2/', 'localhost:5000'],
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['Quay.IO', 'quay.io'],
  ];
  for (const [input, want] of rows) t.is(registryKey(input), want, input);
});

test('credentials: save (0600, other entries kept), find across files, remove', async (t) => {
  const dir = await tempDir(t);
  const ours = join(dir, 'cfg', 'tsbuild', 'auth.json');
  const dockerConfig = join(dir, 'docker-config.json');
  await writeFile(dockerConfig, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:hubpw').toString('base64') }, 'other:1': { auth: Buffer.from('o:p:q').toString('base64') } }, credsStore: 'x' }));
  await saveCredentials(ours, 'http://127.0.0.1:5000/', { username: 'alice', password: 'pw:with:colons' });
  await saveCredentials(ours, 'quay.io', { username: 'q', password: 'qq' });
  t.is((await stat(ours)).mode & 0o777, 0o600);
  const files = [ours, dockerConfig];
  t.deepEqual(await findCredentials(files, '127.0.0.1:5000'), { username: 'alice', password: 'pw:with:colons' });
  t.deepEqual(await findCredentials(files, 'docker.io'), { username: 'hub', password: 'hubpw' });
  t.deepEqual(await findCredentials(files, 'other:1'), { username: 'o', password: 'p:q' });
  t.is(await findCredentials(files, 'nowhere:1'), undefined);
  t.true(await removeCredentials(ours, '127.0.0.1:5000'));
  t.false(await removeCredentials(ours, '127.0.0.1:5000'));
  t.is(await findCredentials([ours], '127.0.0.1:5000'), undefined);
  t.deepEqual(await findCredentials([ours], 'quay.io'), { username: 'q', password: 'qq' });
  t.deepEqual(await findCredentials([join(dir, 'missing.json')], 'quay.io'), undefined);
  await writeFile(join(dir, 'bad.json'), '{not json');
  await t.throwsAsync(findCredentials([join(dir, 'bad.json')], 'quay.io'), { message: /not valid JSON/ });
});
