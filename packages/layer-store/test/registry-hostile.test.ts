/**
 * pull against hostile registries (a tiny node http server per test): every bad answer is a
 * clear RegistryError / DigestMismatchError, nothing is tagged, no temp file stays, and what was
 * fetched before the failure is garbage that `collectGarbage` removes.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import {
  collectGarbage,
  DigestMismatchError,
  importRootfs,
  listImages,
  MediaTypes,
  pull,
  RegistryError,
  sha256Of,
  type Store,
} from '../src/index.js';
import { makeTar, storeState, tempStore } from './archive-fixtures.js';

interface Image {
  manifest: Buffer;
  config: Buffer;
  layer: Buffer;
  diffID: string;
}

/** An OCI image of one layer holding `data` (random, so gzip cannot shrink it). */
async function makeImage(data: Buffer, layer?: (tar: Buffer) => Buffer): Promise<Image> {
  const tarBytes = await makeTar([{ name: 'f.bin', data }]);
  const diffID = sha256Of(tarBytes);
  const blob = layer ? layer(tarBytes) : gzipSync(tarBytes);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: sha256Of(config), size: config.length },
      layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: sha256Of(blob), size: blob.length }],
    }),
  );
  return { manifest, config, layer: blob, diffID };
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | void;

/**
 * Serves `image` as `hostile/x` (any tag; by digest too); `override` answers first and returns
 * true when it handled the request.
 */
async function serve(t: ExecutionContext, image: Image, override?: Handler, host = '127.0.0.1'): Promise<string> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (override?.(req, res, url)) return;
    if (url.pathname === '/v2/') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    if (url.pathname.startsWith('/v2/hostile/x/manifests/')) {
      return void res.writeHead(200, { 'Content-Type': MediaTypes.ociManifest, 'Docker-Content-Digest': sha256Of(image.manifest) }).end(image.manifest);
    }
    const blob = url.pathname.endsWith(sha256Of(image.config)) ? image.config : url.pathname.endsWith(sha256Of(image.layer)) ? image.layer : undefined;
    if (!blob) return void res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
    res.writeHead(200, { 'Content-Length': blob.length, 'Content-Type': 'application/octet-stream' }).end(blob);
  });
  server.listen(0, host);
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `${host}:${(server.address() as AddressInfo).port}`;
}

/** After a failed pull: nothing tagged, nothing in tmp, and gc leaves the store as it was. */
async function assertClean(t: ExecutionContext, store: Store, before: Awaited<ReturnType<typeof storeState>>): Promise<void> {
  const after = await storeState(store);
  t.is(after.index, before.index, 'index.json unchanged');
  t.deepEqual(after.tmp, [], 'no temp file left');
  t.deepEqual(await listImages(store), []);
  await collectGarbage(store);
  t.deepEqual((await readdir(store.blobsDir)).sort(), before.blobs, 'gc removes what was fetched');
}

test('a manifest whose bytes are not the digest pulled by: digest mismatch, nothing stored', async (t) => {
  const image = await makeImage(randomBytes(1000));
  const other = await makeImage(randomBytes(1000));
  const host = await serve(t, image, (_req, res, url) => {
    if (!url.pathname.includes('/manifests/')) return false;
    res.writeHead(200, { 'Content-Type': MediaTypes.ociManifest }).end(other.manifest);
    return true;
  });
  const store = await tempStore(t);
  const before = await storeState(store);
  const want = sha256Of(image.manifest);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x@${want}`), { instanceOf: DigestMismatchError });
  t.is(err!.expected, want);
  t.is(err!.actual, sha256Of(other.manifest));
  await assertClean(t, store, before);
});

test('a manifest whose Docker-Content-Digest header disagrees with its bytes: digest mismatch', async (t) => {
  const image = await makeImage(randomBytes(1000));
  const lie = sha256Of('something else');
  const host = await serve(t, image, (_req, res, url) => {
    if (!url.pathname.includes('/manifests/')) return false;
    res.writeHead(200, { 'Content-Type': MediaTypes.ociManifest, 'Docker-Content-Digest': lie }).end(image.manifest);
    return true;
  });
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: DigestMismatchError });
  t.is(err!.expected, lie);
  await assertClean(t, store, before);
});

test('a manifest with a huge Content-Length is refused before it is read', async (t) => {
  const image = await makeImage(randomBytes(1000));
  const host = await serve(t, image, (_req, res, url) => {
    if (!url.pathname.includes('/manifests/')) return false;
    res.writeHead(200, { 'Content-Type': MediaTypes.ociManifest, 'Content-Length': String(1 << 30) });
    res.write(image.manifest);
    return true;
  });
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: RegistryError });
  t.regex(err!.message, /too large \(1073741824 bytes/);
  await assertClean(t, store, before);
});

test('a blob with a Content-Length other than its descriptor size fails at once (no hang)', async (t) => {
  const image = await makeImage(randomBytes(1000));
  const layer = sha256Of(image.layer);
  const host = await serve(t, image, (_req, res, url) => {
    if (!url.pathname.endsWith(layer)) return false;
    // the right bytes, a lying length, and the connection left open
    res.writeHead(200, { 'Content-Length': String(1e12) });
    res.write(image.layer);
    return true;
  });
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: RegistryError });
  t.regex(err!.message, new RegExp(`fetching blob ${layer}.*: the registry sends 1000000000000 bytes, the manifest says ${image.layer.length}`));
  await assertClean(t, store, before);
});

test('a blob whose connection breaks midway: a clear network error, nothing stored', async (t) => {
  const image = await makeImage(randomBytes(200_000));
  const layer = sha256Of(image.layer);
  const host = await serve(t, image, (req, res, url) => {
    if (!url.pathname.endsWith(layer)) return false;
    res.writeHead(200, { 'Content-Length': image.layer.length });
    res.write(image.layer.subarray(0, 100_000), () => req.socket.destroy());
    return true;
  });
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: RegistryError });
  t.is(err!.message, `fetching blob ${layer} of ${host}/hostile/x: unexpected EOF`);
  t.false(await store.hasBlob(layer));
  await assertClean(t, store, before);
});

test('a blob answered with 500: the status in the error', async (t) => {
  const image = await makeImage(randomBytes(1000));
  const layer = sha256Of(image.layer);
  const host = await serve(t, image, (_req, res, url) => {
    if (!url.pathname.endsWith(layer)) return false;
    res.writeHead(500, { 'Content-Type': 'text/plain' }).end('boom');
    return true;
  });
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: RegistryError });
  t.is(err!.status, 500);
  t.regex(err!.message, /500 Internal Server Error/);
  await assertClean(t, store, before);
});

test('a truncated gzip layer (its digest matches the truncated bytes): a clear layer error, nothing tagged', async (t) => {
  const image = await makeImage(randomBytes(50_000), (tarBytes) => {
    const gz = gzipSync(tarBytes);
    return gz.subarray(0, gz.length >> 1);
  });
  const host = await serve(t, image);
  const store = await tempStore(t);
  const before = await storeState(store);
  const err = await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: RegistryError });
  t.regex(err!.message, new RegExp(`layer ${sha256Of(image.layer)} of ${host.replace(/\./g, '\\.')}/hostile/x:1 is damaged: unexpected end of file`));
  await assertClean(t, store, before);
});

test('a blob redirected to another host is followed (as Docker does), without our credentials', async (t) => {
  const image = await makeImage(randomBytes(1000));
  const layer = sha256Of(image.layer);
  const seen: Array<string | undefined> = [];
  const cdn = await serve(t, image, (req) => {
    seen.push(req.headers.authorization);
    return false;
  }, 'localhost');
  const auth = `Basic ${Buffer.from('u:p').toString('base64')}`;
  const host = await serve(t, image, (req, res, url) => {
    if (req.headers.authorization !== auth) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' }).end();
      return true;
    }
    if (!url.pathname.endsWith(layer)) return false;
    res.writeHead(307, { Location: `http://${cdn}/v2/hostile/x/blobs/${layer}` }).end();
    return true;
  });
  const store = await tempStore(t);
  const pulled = await pull(store, `${host}/hostile/x:1`, { auth: { username: 'u', password: 'p' } });
  t.is(pulled.id, sha256Of(image.config));
  t.deepEqual(seen, [undefined]);
  t.true(await store.hasBlob(layer));
});

test('a failed pull beside an image already there leaves that image and prune consistent', async (t) => {
  const store = await tempStore(t);
  const tarBytes = await makeTar([{ name: 'keep.txt', data: 'keep' }]);
  const { Readable } = await import('node:stream');
  await importRootfs(store, Readable.from([tarBytes]), { ref: 'hostile/keep:1', sourceDateEpoch: 0 });
  const image = await makeImage(randomBytes(1000));
  const lie = sha256Of('no');
  const host = await serve(t, image, (_req, res, url) => {
    if (!url.pathname.endsWith(sha256Of(image.layer))) return false;
    res.writeHead(200, { 'Content-Length': image.layer.length }).end(Buffer.concat([image.layer.subarray(1), Buffer.from(lie.slice(0, 1))]));
    return true;
  });
  const before = await storeState(store);
  await t.throwsAsync(pull(store, `${host}/hostile/x:1`), { instanceOf: DigestMismatchError });
  t.is((await storeState(store)).index, before.index);
  t.deepEqual((await listImages(store)).map((r) => `${r.repository}:${r.tag}`), ['hostile/keep:1']);
  await collectGarbage(store);
  t.deepEqual((await readdir(store.blobsDir)).sort(), before.blobs);
});
