/**
 * The `tsbuild` command users run (package.json `bin`: packages/cli/bin/tsbuild.cjs), which loads
 * the bundled CLI (dist/tsbuild.cjs) with a V8 code cache: the same results as the unbundled
 * entry, and the loader's choice between the bundle and the unbundled modules.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const rootPkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const bin = path.join(repoRoot, rootPkg.bin.tsbuild as string);
const unbundled = path.join(repoRoot, 'packages/cli/dist/src/main.js');
const bundle = path.join(repoRoot, 'packages/cli/dist/tsbuild.cjs');

/** Like `npm run build`: bundles again when a package was compiled after the bundle was made. */
test.before(() => {
  const built = (() => {
    try {
      return statSync(bundle).mtimeMs;
    } catch {
      return -1;
    }
  })();
  const stale = ['parser', 'layer-store', 'executor', 'cli'].some((p) => statSync(path.join(repoRoot, 'packages', p, 'dist/.tsbuildinfo')).mtimeMs > built);
  if (stale) execFileSync(process.execPath, [path.join(repoRoot, 'scripts/bundle-cli.mjs')], { stdio: 'inherit' });
});

function run(entry: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8', input: '' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function tempDir(t: { teardown(fn: () => Promise<void>): void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function context(dir: string): Promise<string> {
  const ctx = path.join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nENV APP=/app\nCOPY a.txt /app/a.txt\nLABEL x=1\nCMD ["/app/run"]\n');
  await writeFile(path.join(ctx, 'a.txt'), 'hello\n');
  return ctx;
}

test('bin is the bundle loader, and the bundle exists after the build', async (t) => {
  t.is(path.relative(repoRoot, bin), 'packages/cli/bin/tsbuild.cjs');
  t.true((await stat(bundle)).isFile());
});

test('bin: build, a no-change rebuild (every step cached, same ID), save and images, as the unbundled entry does', async (t) => {
  const dir = await tempDir(t, 'tsbuild-startup-');
  const ctx = await context(dir);
  const root = path.join(dir, 'store');
  const first = run(bin, ['--root', root, 'build', '--source-date-epoch', '1000', '-t', 'app:1', ctx]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /Successfully tagged app:1/);
  t.notRegex(first.stdout, /Using cache/);
  const again = run(bin, ['--root', root, 'build', '--source-date-epoch', '1000', '-t', 'app:1', ctx]);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout.match(/ ---> Using cache/g)?.length, 4, again.stdout);
  const id = /Successfully built ([0-9a-f]{12})/.exec(first.stdout)?.[1];
  t.truthy(id);
  t.regex(again.stdout, new RegExp(`Successfully built ${id}`));
  // the unbundled modules build the same image (a fresh store: nothing cached)
  const other = run(unbundled, ['--root', path.join(dir, 'store2'), 'build', '-q', '--source-date-epoch', '1000', ctx]);
  t.is(other.code, 0, other.stderr);
  t.true(other.stdout.startsWith(`sha256:${id}`), other.stdout);

  const tar = path.join(dir, 'app.tar');
  const saved = run(bin, ['--root', root, 'save', '-o', tar, 'app:1']);
  t.is(saved.code, 0, saved.stderr);
  const names = execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }).split('\n');
  t.true(names.includes('manifest.json') && names.includes('index.json') && names.includes('oci-layout'), names.join(' '));
  const images = run(bin, ['--root', root, 'images']);
  t.is(images.code, 0, images.stderr);
  t.regex(images.stdout, new RegExp(`app\\s+1\\s+${id}`));
  t.is(run(bin, ['--root', root, 'images']).stdout, run(unbundled, ['--root', root, 'images']).stdout);
});

test('bin: errors and usage keep their exit codes through the bundle', async (t) => {
  const dir = await tempDir(t, 'tsbuild-startup-err-');
  const bad = run(bin, ['--root', dir, 'nosuch']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /'nosuch' is not a tsbuild command/);
  const missing = run(bin, ['--root', dir, 'save', '-o', path.join(dir, 'x.tar'), 'no-such-image']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^error: .*no-such-image/m);
  t.is(run(bin, ['--help']).code, 0);
});

test('bin: --version, -v and version print the version of packages/cli/package.json', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(repoRoot, 'packages/cli/package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v', 'version']) {
    const r = run(bin, [flag]);
    t.is(r.code, 0, flag);
    t.is(r.stdout, `tsbuild version ${pkg.version}\n`, flag);
  }
});

/**
 * The loader in a copy of the package layout, with entries that say which one ran: the bundle when
 * it is newer than every package's last compile, the unbundled main.js when it is older or missing.
 */
test('bin: runs the bundle only while it is newer than every compiled package', async (t) => {
  const dir = await tempDir(t, 'tsbuild-startup-loader-');
  const pkgs = path.join(dir, 'packages');
  await mkdir(path.join(pkgs, 'cli/bin'), { recursive: true });
  await mkdir(path.join(pkgs, 'cli/dist/src'), { recursive: true });
  for (const p of ['parser', 'layer-store', 'executor']) await mkdir(path.join(pkgs, p, 'dist'), { recursive: true });
  const loader = path.join(pkgs, 'cli/bin/tsbuild.cjs');
  await copyFile(bin, loader);
  await writeFile(path.join(pkgs, 'cli/package.json'), '{"type":"module"}');
  await writeFile(path.join(pkgs, 'cli/dist/src/main.js'), 'export function runCli() { console.log("unbundled " + process.argv.slice(2).join(" ")); }\n');
  const fakeBundle = path.join(pkgs, 'cli/dist/tsbuild.cjs');
  await writeFile(fakeBundle, 'console.log("bundled " + process.argv.slice(2).join(" ") + " " + typeof require + " " + __dirname);\n');
  const infos = ['parser', 'layer-store', 'executor', 'cli'].map((p) => path.join(pkgs, p, 'dist/.tsbuildinfo'));
  for (const f of infos) await writeFile(f, '{}');
  const at = async (file: string, seconds: number): Promise<void> => utimes(file, seconds, seconds);
  for (const f of infos) await at(f, 1000);
  await at(fakeBundle, 2000);
  const fresh = run(loader, ['a', 'b']);
  t.is(fresh.code, 0, fresh.stderr);
  t.is(fresh.stdout, `bundled a b function ${path.join(pkgs, 'cli/dist')}\n`);
  // its code cache is written by the first run and used by the next, one cache per command
  t.true((await stat(`${fakeBundle}.other.cache`)).size > 0);
  t.is(run(loader, ['c']).stdout, `bundled c function ${path.join(pkgs, 'cli/dist')}\n`);
  t.is(run(loader, ['--root', '/x', 'save', 'y']).code, 0);
  t.true((await stat(`${fakeBundle}.save.cache`)).size > 0);
  t.is(run(loader, ['-t', 'y', '.']).code, 0);
  t.true((await stat(`${fakeBundle}.build.cache`)).size > 0);

  await at(infos[2] as string, 3000);
  t.is(run(loader, ['a']).stdout, 'unbundled a\n');
  await rm(fakeBundle);
  await at(infos[2] as string, 1000);
  t.is(run(loader, ['a']).stdout, 'unbundled a\n');
});

test('bin: output larger than a pipe holds reaches a slow reader whole (the process exits only after stdout drained)', async (t) => {
  const dir = await tempDir(t, 'tsbuild-startup-pipe-');
  const ctx = await context(dir);
  const root = path.join(dir, 'store');
  t.is(run(bin, ['--root', root, 'build', '-q', '-t', 'pipe:1', ctx]).code, 0);
  const args = ['--root', root, 'inspect', ...Array.from({ length: 60 }, () => 'pipe:1')];
  const whole = run(bin, args).stdout;
  t.true(whole.length > 128 * 1024, `inspect printed ${whole.length} bytes, more than a pipe buffer`);
  // the reader starts only after a second, long after the writer filled the pipe
  const quoted = [process.execPath, bin, ...args].map((a) => `'${a}'`).join(' ');
  const slow = execFileSync('sh', ['-c', `${quoted} | (sleep 1; wc -c)`], { encoding: 'utf8' });
  t.is(Number(slow.trim()), Buffer.byteLength(whole));
});
