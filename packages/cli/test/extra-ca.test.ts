/**
 * NODE_EXTRA_CA_CERTS under the `tsbuild` launcher (bin/tsbuild.cjs run as a program): Node starts
 * without it (it costs 40 ms of every start in Node 20) and TLS connections still trust the file's
 * certificates, as `node` with the variable would: an HTTPS import from a server whose certificate
 * only that file vouches for works with the variable and fails without it.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO, tempDir } from './helpers.js';

const bin = join(REPO, 'packages/cli/bin/tsbuild.cjs');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args` with `env` as its whole environment (plus PATH), without blocking this process's event loop. */
function run(file: string, args: string[], env: Record<string, string>): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

test('the launcher defers NODE_EXTRA_CA_CERTS to the first TLS connection, which trusts its certificates', async (t) => {
  const dir = await tempDir(t);
  // a self-signed certificate for 127.0.0.1: trusted only through the extra file
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  await mkdir(join(dir, 'rootfs/etc'), { recursive: true });
  await writeFile(join(dir, 'rootfs/etc/hello'), 'hi\n');
  const tarball = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.']);
  const server = createServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }, (req, res) => {
    if (req.url === '/root.tar') res.end(tarball);
    else res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((res) => server.close(() => res())));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/root.tar`;
  const root = join(dir, 'store');

  const trusted = await run(bin, ['--root', root, 'import', url, 'tls:1'], { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
  t.is(trusted.code, 0, trusted.stderr);
  t.regex(trusted.stdout, /^Downloading from .*\nsha256:[0-9a-f]{64}\n$/);
  t.is(trusted.stderr, '');

  const untrusted = await run(bin, ['--root', root, 'import', url, 'tls:2'], {});
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /self[- ]signed certificate/i);

  // Node itself warns at start about a file it cannot read; behind the launcher nothing is read
  // until a TLS connection is made, and then the warning is the same
  const missing = join(dir, 'missing.pem');
  const eager = await run(process.execPath, [bin, '--version'], { NODE_EXTRA_CA_CERTS: missing });
  t.regex(eager.stderr, new RegExp(`Ignoring extra certs from \`${missing}\``));
  const deferred = await run(bin, ['--version'], { NODE_EXTRA_CA_CERTS: missing });
  t.is(deferred.code, 0);
  t.is(deferred.stderr, '');
  const atConnect = await run(bin, ['--root', root, 'import', url, 'tls:3'], { NODE_EXTRA_CA_CERTS: missing });
  t.is(atConnect.code, 1);
  t.regex(atConnect.stderr, new RegExp(`^Warning: Ignoring extra certs from \`${missing}\`, load failed: .*\n`));
  t.regex(atConnect.stderr, /self[- ]signed certificate/i);
});
