/**
 * manifest.json as Docker 20.10's load reads it (checked against dockerd with hand-edited
 * `docker save` archives): RepoTags must be tags (`invalid tag "x"` for a bare name or a digest
 * reference, a JSON error for a non-string), member names are joined to the archive's root and
 * cleaned (`./a`, `x/../a`, `/a` name `a`; `../../etc/passwd` is refused), and a tag that named
 * another image is reported as moved. A refused archive leaves the store as it was.
 */
import test, { type ExecutionContext } from 'ava';
import { Readable } from 'node:stream';
import { load, type Store } from '../src/index.js';
import { makeTar, sha256hex, storeState, tempDir, tempStore, treeListing } from './archive-fixtures.js';

/** A one-layer docker-archive; `entry` edits its manifest.json entry; `file` is in the layer. */
async function archive(entry: (e: Record<string, unknown>) => Record<string, unknown>, file = 'hello'): Promise<Buffer> {
  const layer = await makeTar([{ name: 'hello.txt', data: file }]);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256hex(layer)}`] } }));
  const cfgName = `${sha256hex(config)}.json`;
  const manifest = [entry({ Config: cfgName, RepoTags: ['lsman/x:1'], Layers: ['l1/layer.tar'] })];
  return makeTar([
    { name: cfgName, data: config },
    { name: 'l1/', type: 'directory' },
    { name: 'l1/layer.tar', data: layer },
    { name: 'manifest.json', data: JSON.stringify(manifest) },
  ]);
}

async function refused(t: ExecutionContext, store: Store, input: Buffer, code: string, message: RegExp): Promise<void> {
  const before = await storeState(store);
  const err = await t.throwsAsync(load(store, Readable.from([input])));
  t.is((err as { code?: string }).code, code, err?.message);
  t.regex(err!.message, message);
  t.truthy((err as { hint?: string }).hint);
  t.deepEqual(await storeState(store), before, 'index.json, blobs/ and tmp/ unchanged');
}

const bad: Array<[string, unknown, RegExp]> = [
  ['a bare name', ['lsman/notag'], /invalid tag "lsman\/notag"/],
  ['a registry with a port and no tag', ['localhost:5000/lsman'], /invalid tag "localhost:5000\/lsman"/],
  ['a digest reference', [`lsman/d@sha256:${'a'.repeat(64)}`], /invalid tag "lsman\/d@sha256:a+"/],
  ['a number in the list', ['lsman/x:1', 5], /RepoTags is not a list of strings/],
  ['a string instead of a list', 'lsman/x:1', /RepoTags is not a list of strings/],
];
for (const [what, repoTags, message] of bad) {
  test(`load refuses RepoTags with ${what}, as dockerd`, async (t) => {
    await refused(t, await tempStore(t), await archive((e) => ({ ...e, RepoTags: repoTags })), 'E_ARCHIVE_BAD_JSON', message);
  });
}

test('load takes RepoTags null as untagged', async (t) => {
  const store = await tempStore(t);
  const [img] = await load(store, Readable.from([await archive((e) => ({ ...e, RepoTags: null }))]));
  t.deepEqual(img!.tags, []);
  t.is((await store.listImages()).length, 1);
});

test('load resolves manifest.json names inside the archive as dockerd: ./a, x/../a and /a name a', async (t) => {
  const store = await tempStore(t);
  const input = await archive((e) => ({ ...e, Config: `x/../${String(e.Config)}`, Layers: ['/l1/layer.tar'] }));
  const [img] = await load(store, Readable.from([input]));
  t.deepEqual(img!.tags, ['docker.io/lsman/x:1']);
  const again = await archive((e) => ({ ...e, Config: `./${String(e.Config)}`, Layers: ['./l1//layer.tar'] }));
  t.is((await load(store, Readable.from([again])))[0]!.id, img!.id);
});

test('load refuses manifest.json names outside the archive, writing nothing outside', async (t) => {
  const store = await tempStore(t);
  const outside = await tempDir(t, 'ls-outside-');
  for (const [field, value] of [['Config', '../../etc/passwd'], ['Layers', ['../l1/layer.tar']], ['Layers', ['/../../l1/layer.tar']]] as const) {
    await refused(t, store, await archive((e) => ({ ...e, [field]: value })), 'E_ARCHIVE_UNSAFE_PATH', /outside the archive/);
  }
  t.deepEqual(await treeListing(outside), []);
});

test('load reports a tag that named another image (dockerd: "renaming the old one")', async (t) => {
  const store = await tempStore(t);
  const [first] = await load(store, Readable.from([await archive((e) => e, 'one')]));
  t.deepEqual(first!.moved, []);
  const [second] = await load(store, Readable.from([await archive((e) => ({ ...e, RepoTags: ['lsman/x:1', 'lsman/x:2'] }), 'two')]));
  t.not(second!.id, first!.id);
  t.deepEqual(second!.moved, [{ tag: 'docker.io/lsman/x:1', oldId: first!.id }]);
  const [third] = await load(store, Readable.from([await archive((e) => ({ ...e, RepoTags: ['lsman/x:1', 'lsman/x:2'] }), 'two')]));
  t.deepEqual(third!.moved, [], 'the same image again moves nothing');
});

test('load takes xz- and bzip2-compressed archives, from a stream and from a file, as docker load does; a truncated one changes nothing', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { loadFile } = await import('../src/index.js');
  const plain = await archive((e) => e);
  const dir = await tempDir(t);
  for (const program of ['xz', 'bzip2']) {
    const packed = execFileSync(program, ['-c'], { input: plain });
    const store = await tempStore(t);
    t.deepEqual((await load(store, Readable.from([packed])))[0]!.tags, ['docker.io/lsman/x:1'], program);
    const file = join(dir, `a.${program}`);
    await writeFile(file, packed);
    const other = await tempStore(t);
    t.deepEqual((await loadFile(other, file))[0]!.tags, ['docker.io/lsman/x:1'], program);
    await refused(t, await tempStore(t), packed.subarray(0, packed.length - 40), 'E_ARCHIVE_TRUNCATED', /truncated/);
  }
});

test('load of an empty input says it is empty (not "truncated"), from a stream and a file', async (t) => {
  const { writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { loadFile } = await import('../src/index.js');
  const store = await tempStore(t);
  await refused(t, store, Buffer.alloc(0), 'E_ARCHIVE', /input is empty/);
  const file = join(await tempDir(t), 'empty.tar');
  await writeFile(file, '');
  const err = await t.throwsAsync(loadFile(store, file));
  t.is((err as { code?: string }).code, 'E_ARCHIVE');
  t.regex(err!.message, /input is empty/);
});
