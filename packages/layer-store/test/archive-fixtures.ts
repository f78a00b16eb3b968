/** Fixtures for the archive and client tests: temp stores, a busybox image, hand-made tarballs. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import tar from 'tar-stream';
import { importRootfs, Store, type Digest } from '../src/index.js';

/** The repository root (this file runs from packages/layer-store/dist/test). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** A fresh temp directory, removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'ls-archive-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A new empty store in its own temp dir. */
export async function tempStore(t: ExecutionContext): Promise<Store> {
  return Store.open(join(await tempDir(t, 'ls-store-'), 'store'));
}

/** Writes a busybox rootfs into a temp dir and returns the dir and a tar of it. */
export async function busyboxRootfs(t: ExecutionContext): Promise<{ dir: string; tarFile: string }> {
  const base = await tempDir(t, 'ls-bb-');
  const dir = join(base, 'rootfs');
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [dir]);
  const tarFile = join(base, 'rootfs.tar');
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', tarFile, '.']);
  return { dir, tarFile };
}

/** Imports a busybox rootfs into `store` as `ref` (reproducibly: SOURCE_DATE_EPOCH 0). */
export async function importBusybox(t: ExecutionContext, store: Store, ref: string, changes: string[] = ['CMD ["sh"]']): Promise<{ id: Digest; tarFile: string }> {
  const { tarFile } = await busyboxRootfs(t);
  const { id } = await importRootfs(store, createReadStream(tarFile), { ref, changes, sourceDateEpoch: 0 });
  return { id, tarFile };
}

/** A writable that collects bytes (test data only). */
export function collector(): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  }) as Writable & { bytes(): Buffer };
  w.bytes = () => Buffer.concat(chunks);
  return w;
}

export function sha256hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** One entry of a hand-made tarball. */
export interface TarSpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: Buffer | string;
  linkname?: string;
}

/** A tarball made of `entries` (names written as given, even hostile ones). */
export async function makeTar(entries: TarSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const out = collector();
  const done = new Promise<void>((res, rej) => {
    out.on('finish', () => res());
    out.on('error', rej);
  });
  pack.pipe(out);
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    await new Promise<void>((res, rej) =>
      pack.entry(
        { name: e.name, type: e.type ?? 'file', mode: e.type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) },
        e.type === 'file' || e.type === undefined ? data : Buffer.alloc(0),
        (err) => (err ? rej(err) : res()),
      ),
    );
  }
  pack.finalize();
  await done;
  return out.bytes();
}

/** What a test checks stays the same after a failed load or import. */
export async function storeState(store: Store): Promise<{ index: string; blobs: string[]; tmp: string[] }> {
  return {
    index: await readFile(join(store.root, 'index.json'), 'utf8'),
    blobs: (await readdir(store.blobsDir)).sort(),
    tmp: (await readdir(store.tmpDir)).sort(),
  };
}

/** Lists a directory tree (relative paths, sorted) to check nothing outside was written. */
export async function treeListing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) await walk(join(d, e.name), r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** True when `cmd` runs (`cmd args...` exits 0). */
export function works(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Starts docker-registry on a free 127.0.0.1 port (optionally with htpasswd auth); stopped at teardown. */
export async function startRegistry(t: ExecutionContext, user?: { name: string; password: string }): Promise<string> {
  const dir = await tempDir(t, 'ls-registry-');
  const args = [join(REPO, 'scripts/start-registry.sh'), dir];
  if (user) {
    const file = join(dir, 'htpasswd');
    await writeFile(file, execFileSync('htpasswd', ['-Bbn', user.name, user.password]));
    args.push(file);
  }
  const child = spawn('bash', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  return new Promise((resolve, reject) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      log += s;
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(log);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`docker-registry exited (${code}): ${log}`)));
  });
}

let dockerState: boolean | undefined;
/**
 * Whether dockerd answers; starts it once per process with scripts/start-dockerd.sh (scripts/test.sh
 * has started it already, so this is one `docker info`).
 */
export function dockerReady(): boolean {
  dockerState ??= spawnSync('bash', [join(REPO, 'scripts/start-dockerd.sh')], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 400_000 }).status === 0;
  return dockerState;
}

/**
 * A serial test against dockerd. It fails when dockerd cannot be started (CI has it: scripts/test.sh
 * installs and starts it); TSBUILD_TEST_NO_DOCKER=1 skips it where no Docker engine can run (README).
 */
export function dockerTest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (process.env.TSBUILD_TEST_NO_DOCKER === '1') {
    test.skip(title, fn);
    return;
  }
  test.serial(title, async (t) => {
    if (!dockerReady()) {
      t.fail('dockerd is not running and scripts/start-dockerd.sh could not start it (log: /var/log/tsbuild-dockerd.log); scripts/install-system-deps.sh installs docker.io, or set TSBUILD_TEST_NO_DOCKER=1 to skip the Docker round trips');
      return;
    }
    await fn(t);
  });
}
