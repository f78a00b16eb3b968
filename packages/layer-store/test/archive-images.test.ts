import test from 'ava';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyChanges,
  collectGarbage,
  imageHistory,
  inspectImage,
  listImages,
  prune,
  removeImage,
  systemDf,
  tagImage,
  type ContainerConfig,
  type ResolvedImage,
  type Store,
} from '../src/index.js';
import { prepareSnapshots } from '../src/snapshots.js';
import { importBusybox, tempStore } from './archive-fixtures.js';

async function prepareSnapshotsForTest(store: Store, img: ResolvedImage): Promise<void> {
  await prepareSnapshots(store, img.manifest.layers.map((l, i) => ({ digest: l.digest, diffID: img.config.rootfs.diff_ids[i]! })));
}

// ---- --change lines (table) ----

const changeRows: Array<[string[], ContainerConfig]> = [
  [['CMD ["sh", "-c", "x"]'], { Cmd: ['sh', '-c', 'x'] }],
  [['CMD echo hi'], { Cmd: ['/bin/sh', '-c', 'echo hi'] }],
  [['ENTRYPOINT ["/bin/app"]'], { Entrypoint: ['/bin/app'] }],
  [['CMD ["a"]', 'ENTRYPOINT ["b"]'], { Cmd: ['a'], Entrypoint: ['b'] }],
  [['ENV A=1 B="two words" C=\'q\''], { Env: ['A=1', 'B=two words', 'C=q'] }],
  [['ENV A 1 2'], { Env: ['A=1 2'] }],
  [['ENV A=1', 'ENV A=2'], { Env: ['A=2'] }],
  [['EXPOSE 80 53/udp 8000-8001'], { ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} } }],
  [['LABEL a=b "c d"=e'], { Labels: { a: 'b', 'c d': 'e' } }],
  [['VOLUME /a /b'], { Volumes: { '/a': {}, '/b': {} } }],
  [['VOLUME ["/c"]'], { Volumes: { '/c': {} } }],
  [['USER app:staff'], { User: 'app:staff' }],
  [['WORKDIR /a', 'WORKDIR b/../c'], { WorkingDir: '/a/c' }],
  [['ONBUILD RUN make'], { OnBuild: ['RUN make'] }],
  [['cmd ["lower"]'], { Cmd: ['lower'] }],
];

for (const [lines, expected] of changeRows) {
  test(`--change ${JSON.stringify(lines)}`, (t) => {
    t.deepEqual(applyChanges({}, lines), expected);
  });
}

const badChanges: Array<[string, RegExp]> = [
  ['RUN echo', /RUN is not a valid change command/],
  ['STOPSIGNAL SIGINT', /STOPSIGNAL is not a valid change command/],
  ['CMD', /requires at least one argument/],
  ['EXPOSE eighty', /invalid port/],
  ['ENV A', /ENV must have two arguments/],
  ['LABEL =x', /not of the form key=value/],
  ['ONBUILD ONBUILD RUN x', /chaining ONBUILD/],
];
for (const [line, message] of badChanges) {
  test(`--change refuses ${JSON.stringify(line)}`, (t) => {
    const err = t.throws(() => applyChanges({}, [line]));
    t.is((err as { code?: string }).code, 'E_CHANGE');
    t.regex(err!.message, message);
  });
}

// ---- images, inspect, history, tag, rmi ----

test('images lists one row per tag, untagged images as <none>', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp/list:1');
  await tagImage(store, 'lsexp/list:1', 'localhost:5000/other:2');
  const rows = await listImages(store);
  t.deepEqual(rows.map((r) => [r.repository, r.tag, r.id]).sort(), [
    ['localhost:5000/other', '2', id],
    ['lsexp/list', '1', id],
  ]);
  // Re-importing under the same tag leaves the first image dangling.
  await removeImage(store, 'localhost:5000/other:2');
  await importBusybox(t, store, 'lsexp/list:1', ['CMD ["other"]']);
  const after = await listImages(store);
  t.deepEqual(after.filter((r) => r.repository === '<none>').map((r) => r.id), [id]);
});

test('inspect has docker image inspect\'s shape', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:inspect', ['CMD ["sh"]', 'LABEL a=b']);
  const info = await inspectImage(store, 'lsexp:inspect');
  t.is(info.Id, id);
  t.deepEqual(info.RepoTags, ['lsexp:inspect']);
  t.is(info.Comment, 'Imported from -');
  t.is(info.Created, '1970-01-01T00:00:00Z');
  t.deepEqual(info.Config, {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: null,
    Cmd: ['sh'],
    Image: '',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: { a: 'b' },
  });
  t.deepEqual(info.ContainerConfig, { ...info.Config, Cmd: null, Labels: null }, 'no build container: the empty config, as for docker import');
  t.is(info.Container, '');
  t.is(info.VirtualSize, info.Size);
  t.is(info.Metadata.LastTagTime, '0001-01-01T00:00:00Z');
  t.is(info.Os, 'linux');
  t.is(info.RootFS.Layers.length, 1);
  t.true(info.Size > 500_000);
});

test('history is newest first, one row per history entry, the image ID on top', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:hist');
  const rows = await imageHistory(store, 'lsexp:hist');
  t.is(rows.length, 1);
  t.is(rows[0]!.id, id);
  t.is(rows[0]!.comment, 'Imported from -');
  t.true(rows[0]!.size > 0);
});

test('rmi: a tag goes alone while others remain; by ID needs force with several tags', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:rm1');
  await tagImage(store, 'lsexp:rm1', 'lsexp:rm2');
  await tagImage(store, 'lsexp:rm1', 'lsexp:rm3');
  t.deepEqual(await removeImage(store, 'lsexp:rm1'), { untagged: ['lsexp:rm1'], deleted: undefined, layers: [] });
  const err = await t.throwsAsync(removeImage(store, id.slice(7, 19)));
  t.is((err as { code?: string }).code, 'E_IMAGE_CONFLICT');
  // as dockerd's rmi: the layers the image released, by chain ID (one layer: its diffID)
  const [diffID] = (await store.resolveImage(id)).config.rootfs.diff_ids;
  t.deepEqual(await removeImage(store, id, { force: true }), { untagged: ['lsexp:rm2', 'lsexp:rm3'], deleted: id, layers: [diffID] });
  t.deepEqual((await store.readIndex()).manifests, []);
  const report = await collectGarbage(store);
  t.is(report.blobsDeleted.length, 3, 'manifest, config and layer');
  t.deepEqual(await readdir(store.blobsDir), []);
});

test('collectGarbage keeps what images, cache records and snapshots of kept images need', async (t) => {
  const store = await tempStore(t);
  await importBusybox(t, store, 'lsexp:keep');
  const gone = await importBusybox(t, store, 'lsexp:gone', ['CMD ["x"]', 'ENV X=1']);
  const cached = await importBusybox(t, store, 'lsexp:cached', ['CMD ["y"]']);
  const keep = await store.resolveImage('lsexp:keep');
  const cachedImg = await store.resolveImage('lsexp:cached');
  await prepareSnapshotsForTest(store, keep);
  await writeFile(join(store.cacheDir, 'step.json'), JSON.stringify({ blobs: [cachedImg.manifest.config.digest] }));
  await removeImage(store, 'lsexp:gone');
  await removeImage(store, 'lsexp:cached');
  await mkdir(join(store.snapshotsDir, 'f'.repeat(64)));
  await writeFile(join(store.snapshotsDir, 'f'.repeat(64), 'file'), 'abc');
  const report = await collectGarbage(store);
  t.true(report.blobsDeleted.includes(gone.id));
  t.false(report.blobsDeleted.includes(cached.id), 'a cache record keeps its blobs');
  t.deepEqual(report.snapshotsDeleted, [`sha256:${'f'.repeat(64)}`]);
  t.true(report.reclaimed >= 3);
  t.true(await store.hasBlob(keep.manifest.layers[0]!.digest), 'shared layer kept');
  t.true(await store.hasBlob(cached.id));
  t.is((await readdir(store.snapshotsDir)).length, 1);
  t.deepEqual((await inspectImage(store, 'lsexp:keep')).Id, keep.id);
});

test('prune removes dangling images and reports bytes; system df counts', async (t) => {
  const store = await tempStore(t);
  const first = await importBusybox(t, store, 'lsexp:pr', ['CMD ["1"]']);
  await importBusybox(t, store, 'lsexp:pr', ['CMD ["2"]']);
  const df = await systemDf(store);
  const images = df.find((r) => r.type === 'Images')!;
  t.is(images.total, 2);
  t.is(images.active, 1);
  t.true(images.reclaimable > 0 && images.reclaimable < images.size);
  const report = await prune(store);
  t.deepEqual(report.imagesDeleted, [first.id]);
  t.true(report.blobsDeleted.includes(first.id));
  t.is(report.reclaimed, images.reclaimable);
  const after = (await systemDf(store)).find((r) => r.type === 'Images')!;
  t.is(after.total, 1);
  t.is(after.reclaimable, 0);
});
