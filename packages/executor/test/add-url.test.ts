import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { contentDispositionFilename } from '../src/context/add.js';
import { addInto } from '../src/context/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'add-url-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Serves `routes[path]` (body and extra headers) on the loopback. */
async function serve(t: ExecutionContext, routes: Record<string, { body: string; headers?: OutgoingHttpHeaders }>): Promise<string> {
  const srv = createServer((req, res) => {
    const r = routes[req.url ?? ''];
    if (r === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'text/plain', ...r.headers });
    res.end(r.body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

// Checked against dockerd 20.10 (ADD of these URLs from a loopback python http.server): the file
// names and the hashes its history shows ('ADD dd9f75… in /u1/', no 'file:' prefix).
test('ADD URL: file name from the URL path, else Content-Disposition; history hash is dockerd\'s tarsum of the download', async (t) => {
  const dir = await tempDir(t);
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(rootfs);
  const cd = { 'Content-Disposition': 'attachment; filename="fromcd.txt"' };
  const base = await serve(t, {
    '/file.txt': { body: 'hello\n' },
    '/file.txt?q=1': { body: 'hello\n' },
    '/cd/': { body: 'cd\n', headers: cd },
    '/cd/x': { body: 'cd\n', headers: cd },
    '/nolm/': { body: 'nolm\n' },
  });
  const add = async (url: string, dest: string): Promise<string[]> => (await addInto({ rootfs, sources: [], urls: [`${base}${url}`], dest, tmpDir: dir })).urlHashes;
  t.deepEqual(await add('/file.txt', '/u1/'), ['dd9f75b559eb856e8f39d9ab650170430a211c4ecb76fa541e990568ebf535ad']);
  t.deepEqual(await add('/file.txt?q=1', '/u7/'), ['dd9f75b559eb856e8f39d9ab650170430a211c4ecb76fa541e990568ebf535ad']);
  t.deepEqual(await readdir(path.join(rootfs, 'u7')), ['file.txt']);
  // the path's last element wins over the header
  t.deepEqual(await add('/cd/x', '/u4/'), ['d01f911da1e03caa06b9f6ae0b97ddb0ef36f5276d69ba58f3129a8649971ceb']);
  t.deepEqual(await readdir(path.join(rootfs, 'u4')), ['x']);
  // a path ending in "/": the header's name (we failed 'cannot determine filename')
  await add('/cd/', '/u9/');
  t.deepEqual(await readdir(path.join(rootfs, 'u9')), ['fromcd.txt']);
  t.is(await readFile(path.join(rootfs, 'u9/fromcd.txt'), 'utf8'), 'cd\n');
  // no name at all: a file destination is fine, hashed as Docker's '__unnamed__'
  t.deepEqual(await add('/nolm/', '/u5'), ['3b75f8896e9c3f16d37bd2c039ca3a8bb60a71c08546fce6048a3cd433a90d1a']);
  t.is(await readFile(path.join(rootfs, 'u5'), 'utf8'), 'nolm\n');
  // into an existing directory (no trailing "/"): dockerd names it '__unnamed__' (h2/u4)
  await mkdir(path.join(rootfs, 'ed2'));
  await add('/nolm/', '/ed2');
  t.deepEqual(await readdir(path.join(rootfs, 'ed2')), ['__unnamed__']);
});

test('contentDispositionFilename parses as Go mime.ParseMediaType', (t) => {
  const rows: Array<[string, string | undefined]> = [
    ['attachment; filename="a b.txt"', 'a b.txt'],
    ['attachment; filename=plain.bin', 'plain.bin'],
    ['attachment;filename="q\\"uote"', 'q"uote'],
    ['ATTACHMENT; FILENAME=up.txt', 'up.txt'],
    ["attachment; filename*=UTF-8''na%C3%AFve.txt", 'naïve.txt'],
    ['attachment; filename="x"; filename="y"', undefined], // duplicate parameter
    ['attachment; filename', undefined], // no value
    ['inline', undefined],
    ['attachment; filename="dir/base.txt"', 'dir/base.txt'], // the caller takes its base
    ['', undefined],
  ];
  for (const [value, want] of rows) t.is(contentDispositionFilename(value), want, value);
});

// Checked against dockerd 20.10 (h2/ue1, ue2): remotecontext.GetWithStatusError's words.
test('ADD URL errors as dockerd words them: an error status with the body, a refused connection', async (t) => {
  const dir = await tempDir(t);
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(rootfs);
  const srv = createServer((_req, res) => res.writeHead(404, 'File not found', { 'Content-Type': 'text/html' }).end('\n  <html>gone</html>\n'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/missing.txt`;
  await t.throwsAsync(addInto({ rootfs, sources: [], urls: [url], dest: '/m', tmpDir: dir }), {
    code: 'E_ADD_URL',
    message: `ADD failed: failed to GET ${url} with status 404 File not found: <html>gone</html>`,
  } as never);
  await new Promise<void>((r) => srv.close(() => r()));
  // the port is free now: nothing listens there
  await t.throwsAsync(addInto({ rootfs, sources: [], urls: [url], dest: '/m', tmpDir: dir }), {
    code: 'E_ADD_URL',
    message: `ADD failed: Get "${url}": dial tcp 127.0.0.1:${port}: connect: connection refused`,
  } as never);
});

// Checked against dockerd 20.10 (h2/u1, u3): the history hash of ADD with URL and context sources
// hashes them in the order written (we put the URLs last).
test('ADD history: a URL source alone and among context files hashes as dockerd', async (t) => {
  const dir = await tempDir(t);
  const { busyboxStore, writeFiles } = await import('./cache-helpers.js');
  const { build } = await import('../src/index.js');
  const store = await busyboxStore(path.join(dir, 'store'));
  const ctx = path.join(dir, 'ctx');
  await mkdir(ctx);
  await writeFiles(ctx, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
  const base = await serve(t, { '/file.txt': { body: 'hello\n' } });
  const text = `FROM busybox\nADD ${base}/file.txt /u1/\nADD ${base}/file.txt a.txt /m1/\nADD a.txt ${base}/file.txt b.txt /m2/\n`;
  await build({ store, contextDir: ctx, dockerfile: { text }, tags: ['add-url-hist:1'], sourceDateEpoch: 0 });
  const img = await store.resolveImage('add-url-hist:1');
  t.deepEqual(
    img.config.history?.slice(-3).map((h) => h.created_by),
    [
      '/bin/sh -c #(nop) ADD dd9f75b559eb856e8f39d9ab650170430a211c4ecb76fa541e990568ebf535ad in /u1/ ',
      '/bin/sh -c #(nop) ADD multi:affa19e0d5021ebbd845d13990382f5814c7a74e4a990d849a4204c549aaaab7 in /m1/ ',
      '/bin/sh -c #(nop) ADD multi:580ef2bdad85518f548364263924179ffffab31e924e3286a4762733d637f9e7 in /m2/ ',
    ],
  );
});
