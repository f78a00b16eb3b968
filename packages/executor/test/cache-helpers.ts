/** Private helpers of the cache, mounts and reproducibility tests: a busybox store and a context. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importRootfs, Store } from '@tsbuild/layer-store';
import type { ExecutionContext } from 'ava';
import { build, type BuildEvent, type BuildOptions, type BuildResult } from '../src/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** A temp dir removed when the test ends. */
export async function testDir(t: ExecutionContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `tsbuild-${prefix}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A store at `<dir>/store` with the busybox rootfs imported as `busybox:latest`. */
export async function busyboxStore(dir: string): Promise<Store> {
  const rootfs = path.join(dir, 'bb-rootfs');
  execFileSync('bash', [path.join(repoRoot, 'scripts/make-busybox-rootfs.sh'), rootfs], { stdio: 'ignore' });
  const store = await Store.open(path.join(dir, 'store'));
  const tar = spawn('tar', ['-C', rootfs, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await importRootfs(store, tar.stdout, { ref: 'busybox:latest', sourceDateEpoch: 0, changes: ['CMD ["sh"]'] });
  return store;
}

/** Writes files (path → content) under `dir`. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
}

/** A build with its events collected. */
export async function buildCollect(opts: BuildOptions): Promise<{ result: BuildResult; events: BuildEvent[]; misses: Map<number, string> }> {
  const events: BuildEvent[] = [];
  const result = await build({ now: () => new Date(0), ...opts, onEvent: (e) => events.push(e) });
  const misses = new Map<number, string>();
  for (const e of events) if (e.type === 'step-cache-miss') misses.set(e.index, e.reason);
  return { result, events, misses };
}
