/**
 * Names the reference parser now refuses but an older version stored (Docker can always remove
 * what it lists), new invalid names (dockerd's messages), and images named by digest only (dangling
 * for Docker 20.10's `image prune` and `images -f dangling=true`; checked against dockerd with a
 * pull by digest from a local docker-registry).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, runMain as run, tempDir } from './helpers.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

interface IndexJSON {
  manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
}

/** A store with one busybox image tagged `ref`; returns the store root and the image ID. */
async function withImage(t: ExecutionContext, ref: string, cmd = 'CMD ["sh"]'): Promise<{ root: string; id: string }> {
  const dir = await tempDir(t);
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  const tar = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 1 << 28 });
  const root = join(dir, 'store');
  const r = await run(root, ['import', '-c', cmd, '-', ref], { stdin: tar, env: { SOURCE_DATE_EPOCH: '0' } });
  t.is(r.code, 0, r.stderr);
  return { root, id: r.stdout.trim() };
}

/** Rewrites index.json: `edit` gets the entries and returns the new ones. */
async function editIndex(root: string, edit: (m: IndexJSON['manifests']) => IndexJSON['manifests']): Promise<void> {
  const file = join(root, 'index.json');
  const index = JSON.parse(await readFile(file, 'utf8')) as IndexJSON;
  await writeFile(file, JSON.stringify({ ...index, manifests: edit(index.manifests) }));
}

test('names an older version stored that the parser now refuses: images, inspect, history, tag and rmi take them as listed', async (t) => {
  const { root, id } = await withImage(t, 'lsleg:1');
  // what an older version wrote: an uppercase first path component, an uppercase official name
  await editIndex(root, (ms) => [...ms, ...['Foo/bar:1', 'docker.io/library/Up:2'].map((ref) => ({ ...ms[0]!, annotations: { [REF_NAME]: ref } }))]);
  const images = await run(root, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
  t.deepEqual(images.stdout.trim().split('\n').sort(), ['Foo/bar:1', 'Up:2', 'lsleg:1']);

  const byName = await run(root, ['inspect', '-f', '{{.Id}} {{json .RepoTags}}', 'Foo/bar:1']);
  t.is(byName.stdout, `${id} ["Foo/bar:1","Up:2","lsleg:1"]\n`, byName.stderr);
  t.is((await run(root, ['inspect', '-f', '{{.Id}}', 'docker.io/library/Up:2'])).stdout, `${id}\n`, 'by its stored text too');
  t.is((await run(root, ['inspect', '-f', '{{json .RepoTags}}', id])).stdout, '["Foo/bar:1","Up:2","lsleg:1"]\n', 'by ID: the legacy names are shown');
  t.is((await run(root, ['history', '-q', '--no-trunc', 'Up:2'])).stdout, `${id}\n`);
  t.is((await run(root, ['tag', 'Foo/bar:1', 'lower:1'])).code, 0);
  t.is((await run(root, ['inspect', '-f', '{{.Id}}', 'lower:1'])).stdout, `${id}\n`);

  // a valid tag of an image that also has legacy names
  t.deepEqual(await run(root, ['rmi', 'lsleg:1']), { code: 0, stdout: 'Untagged: lsleg:1\n', stderr: '' });
  t.deepEqual(await run(root, ['rmi', 'Foo/bar:1', 'docker.io/library/Up:2']), { code: 0, stdout: 'Untagged: Foo/bar:1\nUntagged: Up:2\n', stderr: '' });
  // and, as dockerd, the layer it released (by chain ID)
  const layer = (await run(root, ['inspect', '-f', '{{index .RootFS.Layers 0}}', 'lower:1'])).stdout.trim();
  t.deepEqual(await run(root, ['rmi', 'lower:1']), { code: 0, stdout: `Untagged: lower:1\nDeleted: ${id}\nDeleted: ${layer}\n`, stderr: '' });
  t.deepEqual(await readdir(join(root, 'blobs/sha256')), [], 'the last name took the image and its blobs');
});

test('a new uppercase name gets dockerd\'s error from rmi, inspect, tag and history', async (t) => {
  const { root } = await withImage(t, 'lsup:1');
  const lower = 'invalid reference format: repository name must be lowercase';
  t.deepEqual(await run(root, ['rmi', 'Foo/baz:1']), { code: 1, stdout: '', stderr: `Error response: ${lower}\n` });
  t.deepEqual(await run(root, ['inspect', 'Foo/baz']), { code: 1, stdout: '[]\n', stderr: `Error response: no such image: Foo/baz: ${lower}\n` });
  t.deepEqual(await run(root, ['tag', 'Foo/baz', 'x:1']), { code: 1, stdout: '', stderr: `Error parsing reference: "Foo/baz" is not a valid repository/tag: ${lower}\n` });
  const history = await run(root, ['history', 'Foo/baz:1']);
  t.not(history.code, 0);
  t.is(history.stderr, 'error: image not found: Foo/baz:1: repository name must be lowercase\nhint: try "foo/baz:1"\n');
  t.deepEqual(await run(root, ['rmi', 'nosuch']), { code: 1, stdout: '', stderr: 'Error: No such image: nosuch\n' }, 'a valid name not here: as before');
});

test('an image named by digest only is dangling: images -f dangling=true lists it, prune removes it with its reference', async (t) => {
  const { root, id } = await withImage(t, 'lsdig:1');
  // what a pull by digest leaves: the repository@digest reference, no tag
  let canonical = '';
  await editIndex(root, (ms) => {
    canonical = `127.0.0.1:5000/lsdig/pr@${ms[0]!.digest}`;
    return [{ ...ms[0]!, annotations: { [REF_NAME]: canonical } }];
  });
  const kept = await withImage(t, 'lsdig:kept', 'CMD ["true"]');
  // a second store's image, tagged and by digest, stays (as in Docker: it has a tag)
  await editIndex(kept.root, (ms) => [...ms, { ...ms[0]!, annotations: { [REF_NAME]: `127.0.0.1:5000/lsdig/k@${ms[0]!.digest}` } }]);

  const fmt = ['--format', '{{.Repository}} {{.Tag}} {{.ID}}'];
  const short = id.slice(7, 19);
  t.is((await run(root, ['images', '-f', 'dangling=true', ...fmt])).stdout, `127.0.0.1:5000/lsdig/pr <none> ${short}\n`);
  t.is((await run(root, ['images', '-f', 'dangling=false', ...fmt])).stdout, `127.0.0.1:5000/lsdig/pr <none> ${short}\n`, 'dockerd lists it with dangling=false too');
  t.is((await run(kept.root, ['images', '-f', 'dangling=true', ...fmt])).stdout, '');

  const pruned = await run(root, ['prune', '-f']);
  t.is(pruned.code, 0, pruned.stderr);
  // then the layers no other image has, by chain ID (one layer: its diffID), as dockerd; no other lines
  const layer = JSON.parse((await run(kept.root, ['inspect', '-f', '{{json .RootFS.Layers}}', 'lsdig:kept'])).stdout) as string[];
  t.regex(pruned.stdout, new RegExp(`^Deleted Images:\nuntagged: ${canonical}\ndeleted: ${id}\ndeleted: ${layer[0]}\n\nTotal reclaimed space: .*\n$`));
  t.is((await run(root, ['images', '-q'])).stdout, '');
  t.deepEqual(await readdir(join(root, 'blobs/sha256')), []);

  const keptPrune = await run(kept.root, ['prune', '-f']);
  t.false(keptPrune.stdout.includes('Deleted Images'), keptPrune.stdout);
  t.is((await run(kept.root, ['inspect', '-f', '{{json .RepoDigests}}', 'lsdig:kept'])).stdout.includes('lsdig/k@sha256:'), true);
});

test('an ID prefix several images have: rmi and inspect say "No such image" as dockerd and go on with the other names', async (t) => {
  const root = join(await tempDir(t), 'store');
  const tar = execFileSync('tar', ['-c', '-C', REPO, 'package.json']);
  // 17 images: two of them share the first hex digit of their IDs
  const seen = new Set<string>();
  let prefix: string | undefined;
  for (let i = 0; prefix === undefined; i++) {
    const r = await run(root, ['import', '-c', `CMD ["${i}"]`, '-', `lsamb:${i}`], { stdin: tar, env: { SOURCE_DATE_EPOCH: '0' } });
    const first = r.stdout.trim().slice(7, 8);
    if (seen.has(first)) prefix = first;
    seen.add(first);
  }
  const other = 'lsamb:0';
  const inspect = await run(root, ['inspect', '-f', '{{json .RepoTags}}', prefix, other]);
  t.deepEqual(inspect, { code: 1, stdout: `${JSON.stringify([other])}\n`, stderr: `Error: No such image: ${prefix}\n` });
  const rmi = await run(root, ['rmi', prefix, `sha256:${prefix}`]);
  t.deepEqual(rmi, { code: 1, stdout: '', stderr: `Error: No such image: ${prefix}\nError: No such image: sha256:${prefix}\n` });
});

test('images -q lists an image once per tag, as dockerd\'s CLI', async (t) => {
  const root = join(await tempDir(t), 'store');
  const tar = execFileSync('tar', ['-c', '-C', REPO, 'package.json']);
  const id = (await run(root, ['import', '-', 'lsq:1'], { stdin: tar, env: { SOURCE_DATE_EPOCH: '0' } })).stdout.trim();
  t.is((await run(root, ['tag', 'lsq:1', 'lsq:2'])).code, 0);
  t.is((await run(root, ['images', '-q'])).stdout, `${id.slice(7, 19)}\n${id.slice(7, 19)}\n`);
  t.is((await run(root, ['images', '-q', '--no-trunc', 'lsq:2'])).stdout, `${id}\n`);
});

test('tag checks the source\'s syntax before the target\'s, as docker tag', async (t) => {
  const { root } = await withImage(t, 'lstag:1');
  const lower = 'invalid reference format: repository name must be lowercase';
  t.deepEqual(await run(root, ['tag', 'Foo/x', 'Bar/y']), { code: 1, stdout: '', stderr: `Error parsing reference: "Foo/x" is not a valid repository/tag: ${lower}\n` });
  t.deepEqual(await run(root, ['tag', 'lstag:1', 'Bar/y']), { code: 1, stdout: '', stderr: `Error parsing reference: "Bar/y" is not a valid repository/tag: ${lower}\n` });
  t.deepEqual(await run(root, ['tag', 'nosuch:1', 'Bar/y']), { code: 1, stdout: '', stderr: `Error parsing reference: "Bar/y" is not a valid repository/tag: ${lower}\n` });
  t.deepEqual(await run(root, ['tag', 'nosuch:1', 'ok:1']), { code: 1, stdout: '', stderr: 'Error response: No such image: nosuch:1\n' });
});
