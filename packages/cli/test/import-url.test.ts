/**
 * import of a URL and import's default message, as Docker 20.10 (checked against dockerd with a
 * loopback `python3 -m http.server`): `docker import http://h/root.tar name` prints
 * `Downloading from http://h/root.tar` then the ID on stdout, the image's comment is
 * `Imported from http://h/root.tar`; a 404 fails `failed to GET URL with status 404 File not
 * found: BODY`, a closed port `Get "URL": dial tcp 127.0.0.1:P: connect: connection refused`;
 * `-m ''` is the default message `Imported from -`. We took the URL for a file name.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runMain as run, tempDir } from './helpers.js';

async function listen(t: { teardown(fn: () => unknown): void }, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((res) => server.close(res)));
  return (server.address() as AddressInfo).port;
}

test('import URL downloads the tarball, says so, and names the URL in the comment', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  await mkdir(join(dir, 'rootfs/etc'), { recursive: true });
  await writeFile(join(dir, 'rootfs/etc/hello'), 'hi\n');
  const tarball = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.']);
  const server = createServer((req, res) => {
    if (req.url === '/root.tar') res.end(tarball);
    else if (req.url === '/root.tar.gz') res.end(gzipSync(tarball));
    else if (req.url === '/moved') res.writeHead(302, { location: '/root.tar' }).end();
    else res.writeHead(404, 'File not found').end('  nothing here\n');
  });
  const base = `http://127.0.0.1:${await listen(t, server)}`;

  const r = await run(root, ['import', `${base}/root.tar`, 'fromurl:1']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^Downloading from ${base}/root.tar\nsha256:[0-9a-f]{64}\n$`));
  const history = await run(root, ['history', '--format', '{{.Comment}}', 'fromurl:1']);
  t.is(history.stdout, `Imported from ${base}/root.tar\n`);
  const comment = await run(root, ['inspect', '-f', '{{.Comment}}', 'fromurl:1']);
  t.is(comment.stdout, `Imported from ${base}/root.tar\n`);

  // compressed, and through a redirect (Go's http.Get follows it): same files
  for (const path of ['/root.tar.gz', '/moved']) {
    const again = await run(root, ['import', '-m', 'mine', `${base}${path}`, 'fromurl:2']);
    t.is(again.code, 0, again.stderr);
    t.is((await run(root, ['history', '--format', '{{.Comment}}', 'fromurl:2'])).stdout, 'mine\n');
    const ids = await run(root, ['inspect', '-f', '{{json .RootFS.Layers}}', 'fromurl:1', 'fromurl:2']);
    const [a, b] = ids.stdout.trim().split('\n');
    t.is(a, b, path);
  }

  const missing = await run(root, ['import', `${base}/nope.tar`, 'fromurl:3']);
  t.is(missing.code, 1);
  t.is(missing.stdout, '');
  t.is(missing.stderr.split('\n')[0], `error: failed to GET ${base}/nope.tar with status 404 File not found: nothing here`);
  t.is((await run(root, ['inspect', 'fromurl:3'])).code, 1);
});

test('import of a URL nothing answers fails with Go\'s dial error, before anything is printed', async (t) => {
  const dir = await tempDir(t);
  const closed = createServer();
  const port = await listen({ teardown: () => undefined }, closed);
  await new Promise((res) => closed.close(res));
  const url = `http://127.0.0.1:${port}/x.tar`;
  const r = await run(join(dir, 'store'), ['import', url]);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr.split('\n')[0], `error: Get "${url}": dial tcp 127.0.0.1:${port}: connect: connection refused`);
});

test('import -m \'\' gives the default message, as dockerd', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  t.is((await run(root, ['import', '-m', '', '-', 'empty:1'], { stdin: Buffer.alloc(0) })).code, 0);
  t.is((await run(root, ['history', '--format', '{{.Comment}}', 'empty:1'])).stdout, 'Imported from -\n');
  t.is((await run(root, ['inspect', '-f', '{{.Comment}}', 'empty:1'])).stdout, 'Imported from -\n');
});
