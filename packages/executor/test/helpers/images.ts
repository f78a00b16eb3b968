/**
 * Test helpers for build tests: a store with a busybox base image, and image summaries
 * (config + history + flattened file list) comparable between our images and Docker's.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyLayer, exportImage, importRootfs, Store } from '@tsbuild/layer-store';
import type { ImageConfig } from '@tsbuild/layer-store';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../..');
export const fixturesDir = path.join(repoRoot, 'fixtures/images');

/** A fresh temp dir under the OS temp dir. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `tsbuild-${prefix}-`));
}

/** Writes the busybox rootfs of `scripts/make-busybox-rootfs.sh` into `dir`. */
export function makeBusyboxRootfs(dir: string): void {
  execFileSync('bash', [path.join(repoRoot, 'scripts/make-busybox-rootfs.sh'), dir], { stdio: 'ignore' });
}

/**
 * The busybox rootfs, made once per machine and reused read-only by every test file: the script
 * forks `ln` per applet (~10 s here), and ava runs files in parallel processes. Keyed by the
 * script's and busybox's content, so a change to either makes a new one; written to a temp dir
 * and renamed into place, so concurrent files never see a half-made rootfs.
 */
export async function sharedBusyboxRootfs(): Promise<string> {
  const bb = execFileSync('sh', ['-c', 'command -v busybox || echo /bin/busybox'], { encoding: 'utf8' }).trim();
  const key = createHash('sha256')
    .update(await readFile(path.join(repoRoot, 'scripts/make-busybox-rootfs.sh')))
    .update(await readFile(bb))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(tmpdir(), `tsbuild-test-busybox-rootfs-${key}`);
  try {
    await lstat(path.join(dir, 'bin/busybox'));
    return dir;
  } catch {
    const partial = await tempDir('bbrootfs');
    makeBusyboxRootfs(path.join(partial, 'rootfs'));
    try {
      await rename(path.join(partial, 'rootfs'), dir);
    } catch (err) {
      // another test file won the race: use its rootfs
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await rm(partial, { recursive: true, force: true });
    return dir;
  }
}

/** A tar stream of `dir` (numeric owners), as `tar -C dir -c .`. */
function tarOf(dir: string): NodeJS.ReadableStream & import('node:stream').Readable {
  const child = spawn('tar', ['-C', dir, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return child.stdout;
}

/** A store with `busybox:latest` imported, in its own temp dir. */
export interface BusyboxStore {
  store: Store;
  root: string;
  /** the busybox rootfs the image was imported from (shared, read-only; for Docker's `docker import`) */
  rootfs: string;
  /** removes everything */
  remove(): Promise<void>;
}

/** Makes a store under a new temp dir and imports the busybox rootfs as `busybox:latest`. */
export async function makeBusyboxStore(): Promise<BusyboxStore> {
  const dir = await tempDir('bbstore');
  const rootfs = await sharedBusyboxRootfs();
  const root = path.join(dir, 'store');
  const store = await Store.open(root);
  await importRootfs(store, tarOf(rootfs), { ref: 'busybox:latest', sourceDateEpoch: 0, changes: ['CMD ["sh"]'] });
  return { store, root, rootfs, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * One busybox store per test file (ava runs each file in its own process): made on first use,
 * removed by the `after.always` hook the caller registers with `removeSharedStore`.
 */
export function sharedBusyboxStore(): { get(): Promise<BusyboxStore>; remove(): Promise<void> } {
  let p: Promise<BusyboxStore> | undefined;
  return {
    get: () => (p ??= makeBusyboxStore()),
    remove: async () => {
      if (p) await (await p).remove();
    },
  };
}

/** The config keys a summary shows, in this order. */
const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'Shell', 'Healthcheck', 'StopSignal', 'OnBuild'] as const;

/** Sorted-key JSON. */
function sortedJSON(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : val,
  );
}

/** `Key: json` lines of the summarised config keys (empty values omitted, as Docker's omitempty). */
export function configLines(config: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of CONFIG_KEYS) {
    const v = config[k];
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0)) continue;
    out.push(`${k}: ${sortedJSON(v)}`);
  }
  return out;
}

/** Paths Docker's `export` adds for the container's mounts (and its init layer's /etc/mtab link), and its marker file. */
export function isDockerArtefact(p: string): boolean {
  return ['.dockerenv', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'etc/mtab', 'dev', 'proc', 'sys'].some((a) => p === a || p.startsWith(`${a}/`));
}

/**
 * One line per entry below `dir`, sorted by path: `path type mode uid:gid [size sha256] [-> target]`,
 * with `hardlink=<first path>` for later names of a multiply linked file. No mtimes.
 */
export async function fileLines(dir: string): Promise<string[]> {
  const rows: string[] = [];
  const seen = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const host = path.join(dir, r);
      const st = await lstat(host);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      const own = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        rows.push(`${r} dir ${mode} ${own}`);
        await walk(r);
      } else if (st.isSymbolicLink()) {
        rows.push(`${r} symlink ${mode} ${own} -> ${await readlink(host)}`);
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          rows.push(`${r} hardlink=${first}`);
          continue;
        }
        if (st.nlink > 1) seen.set(key, r);
        const sha = createHash('sha256').update(await readFile(host)).digest('hex');
        rows.push(`${r} file ${mode} ${own} ${st.size} ${sha.slice(0, 16)}`);
      } else {
        rows.push(`${r} other ${mode} ${own}`);
      }
    }
  };
  await walk('');
  return rows;
}

/** Unpacks the tar file `tarFile` into a new dir below `under` with the store's safe applier. */
export async function unpackTar(tarFile: string, under: string): Promise<string> {
  const dir = path.join(under, `unpacked-${path.basename(tarFile)}`);
  await mkdir(dir);
  await chmod(dir, 0o755);
  await applyLayer(createReadStream(tarFile), dir, { format: 'plain' });
  return dir;
}

/** Flattens image `ref` of `store` into a new dir below `under` (export, then the safe applier). */
export async function flattenImage(store: Store, ref: string, under: string): Promise<string> {
  const tarFile = path.join(under, `export-${createHash('sha256').update(ref).digest('hex').slice(0, 8)}.tar`);
  await exportImage(store, ref, createWriteStream(tarFile));
  return unpackTar(tarFile, under);
}

/** History lines: `created_by [empty]`. */
export function historyLines(history: ImageConfig['history']): string[] {
  return (history ?? []).map((h) => `${h.created_by ?? ''}${h.empty_layer ? ' (empty)' : ''}`);
}

/**
 * File lines of `lines` relative to the base image's `base`: lines not in the base (new or
 * changed entries), then `deleted <path>` for base paths that are gone. Keeps goldens to what the
 * build did, not the hundreds of busybox applet links.
 */
export function filesAgainstBase(lines: readonly string[], base: readonly string[]): string[] {
  const baseSet = new Set(base);
  const paths = new Set(lines.map((l) => l.split(' ')[0]));
  const out = lines.filter((l) => !baseSet.has(l));
  for (const b of base) {
    const p = b.split(' ')[0] as string;
    if (!paths.has(p)) out.push(`deleted ${p}`);
  }
  return out;
}

/** The summary text: config, history (masked hashes optional), files against the base. */
export function summaryText(config: Record<string, unknown>, history: readonly string[], files: readonly string[]): string {
  return ['# config', ...configLines(config), '# history', ...history, '# files', ...files, ''].join('\n');
}

/**
 * The golden summary of image `ref`: config, history from `fromHistory` on (the base image's
 * entries are left out), and the flattened file list against `base` (see {@link filesAgainstBase}).
 */
export async function imageSummary(store: Store, ref: string, under: string, base: readonly string[], fromHistory = 0): Promise<string> {
  const img = await store.resolveImage(ref);
  const dir = await flattenImage(store, ref, under);
  return summaryText((img.config.config ?? {}) as Record<string, unknown>, historyLines((img.config.history ?? []).slice(fromHistory)), filesAgainstBase(await fileLines(dir), base));
}
