/**
 * COPY/ADD history hashes as Docker 20.10's classic builder writes them (tarsum of the context the
 * CLI sends). Expected values are what dockerd 20.10 printed for this context (`docker history
 * --no-trunc`); the build-golden differential tests check the same against the live daemon.
 */
import test from 'ava';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { compileIgnore, dockerSourceHash, selectSources, StatIndex } from '../src/context/index.js';

async function context(t: { teardown(f: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-docker-hash-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'd/sub'), { recursive: true });
  await writeFile(path.join(dir, 'a.txt'), 'hello\n');
  await writeFile(path.join(dir, 'd/x'), 'x');
  await writeFile(path.join(dir, 'd/sub/y'), 'yy');
  await symlink('a.txt', path.join(dir, 'd/ln')); // dangling inside d/: its path stands in
  await chmod(path.join(dir, 'a.txt'), 0o644);
  await chmod(path.join(dir, 'd/x'), 0o755);
  await chmod(path.join(dir, 'd/sub/y'), 0o644);
  for (const d of ['d', 'd/sub']) await chmod(path.join(dir, d), 0o755);
  return dir;
}

const table: Array<[string, string[], string]> = [
  ['one file', ['a.txt'], 'file:679c43c79a56cffbb3b002bda3050542c152a2f09757a0f1a9578871f7cda00d'],
  ['a directory, with a dangling symlink', ['d'], 'dir:9e0edeafa1cfe04d3ef25ce7881c8343264c757237479e0652e51f235cd3eafc'],
  ['two files', ['a.txt', 'd/x'], 'multi:dfec81aefd9f34b1ab4e6ddca5618bbabb7e7b4495658dc7ba5a09c59ca36aa1'],
];

for (const [name, patterns, expected] of table) {
  test(`dockerSourceHash: ${name}`, async (t) => {
    const root = await context(t);
    const sources = await selectSources(root, patterns, { ignore: compileIgnore([]) });
    const index = StatIndex.inMemory();
    t.is(await dockerSourceHash(sources, { root, index }), expected);
    // a second time from the recorded tarsums, without reading the files
    t.is(await dockerSourceHash(sources, { root, index }), expected);
  });
}

test('dockerSourceHash: ownership and mtimes do not count for a context (the CLI sends 0:0), content and mode do', async (t) => {
  const root = await context(t);
  const hash = async (): Promise<string> => dockerSourceHash(await selectSources(root, ['a.txt'], { ignore: compileIgnore([]) }), { root, index: StatIndex.inMemory() });
  const before = await hash();
  const { chown, utimes } = await import('node:fs/promises');
  await chown(path.join(root, 'a.txt'), 1000, 1000);
  await utimes(path.join(root, 'a.txt'), 1, 1);
  t.is(await hash(), before);
  await chmod(path.join(root, 'a.txt'), 0o600);
  t.not(await hash(), before);
});

// A file with several links is a link entry in the CLI's context tar after its first path in the
// CLI's walk (d/h1/q comes before d/h1.txt: Walk enters d/h1 before the name h1.txt), and the first
// path .dockerignore leaves out does not count. Values printed by dockerd 20.10 (oracle5/hl-test).
const linkTable: Array<[string, string[], string[], string]> = [
  ['a directory holding a second link', [], ['d'], 'dir:fe132b1265324ecd925d17727239025592931982b092c0091aa8aeef13252709'],
  ['a directory of links to files elsewhere', [], ['e'], 'dir:388ce998fcfd807b7f1ec65d73477c4c500edfdfadcdf455258f9e85680d922c'],
  ['a second link as a file source', [], ['d/h2/b'], 'file:26c0ed3260832141f3d9f618069199ba6d3e622ee2d403c0d87a7325200c13cd'],
  ['two links of one file, walk order', [], ['d/h1.txt', 'd/h1/q'], 'multi:37b2c027b8d54e626be6790b158114992cb85a568039da5362f65a1c1ad16a21'],
  ['the first link ignored: a directory', ['d/h1/a'], ['d'], 'dir:1e8025e057a8d6472d80bd5c6f43c26130704fb0535220eb7c73585600e2f4ee'],
  ['the first link ignored: the next one is a file', ['d/h1/a'], ['d/h2/b'], 'file:d4d3b7193301b4bcf512dc1d5dbf64bf9d95a0cd906d79ea902ac7cfb896530b'],
  ['the first link ignored: links elsewhere', ['d/h1/a'], ['e'], 'dir:d648f5cf0de11e33d37c434a6d6664bdde77395473ad88dc9ab4c8dc167ec103'],
];

for (const [name, ignored, patterns, expected] of linkTable) {
  test(`dockerSourceHash: hard links: ${name}`, async (t) => {
    const { link } = await import('node:fs/promises');
    const root = await mkdtemp(path.join(tmpdir(), 'tsbuild-docker-hash-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    for (const d of ['d', 'd/h1', 'd/h2', 'e']) await mkdir(path.join(root, d), { recursive: true });
    await writeFile(path.join(root, 'd/h1/a'), 'one');
    await writeFile(path.join(root, 'd/h1.txt'), 'three');
    await link(path.join(root, 'd/h1/a'), path.join(root, 'd/h2/b'));
    await link(path.join(root, 'd/h1/a'), path.join(root, 'e/c'));
    await link(path.join(root, 'd/h1.txt'), path.join(root, 'd/h1/q'));
    for (const f of ['d/h1/a', 'd/h1.txt']) await chmod(path.join(root, f), 0o644);
    for (const d of ['d', 'd/h1', 'd/h2', 'e']) await chmod(path.join(root, d), 0o755);
    const ignore = compileIgnore(ignored);
    const sources = await selectSources(root, patterns, { ignore });
    t.is(await dockerSourceHash(sources, { root, index: StatIndex.inMemory(), ignore }), expected);
  });
}

// Symlink loops below a directory source: dockerd's Hash fails for them (FollowSymlinkInScope:
// too many links) and walkSource skips them, so they add nothing; the COPY itself succeeds
// (value printed by dockerd 20.10, oracle5/loop-test; we failed the COPY with E_SYMLINK_LOOP).
test('dockerSourceHash: symlink loops in a directory add no sum', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'tsbuild-docker-hash-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'd'));
  await writeFile(path.join(root, 'd/f'), 'x');
  await chmod(path.join(root, 'd/f'), 0o644);
  await chmod(path.join(root, 'd'), 0o755);
  await symlink('loop1', path.join(root, 'd/loop2'));
  await symlink('loop2', path.join(root, 'd/loop1'));
  await symlink('self', path.join(root, 'd/self'));
  const sources = await selectSources(root, ['d'], { ignore: compileIgnore([]) });
  t.is(await dockerSourceHash(sources, { root, index: StatIndex.inMemory() }), 'dir:442e885a75af55904264f6ced24290afbdd251b9258404b3a66036a0a7bd9027');
});
