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
