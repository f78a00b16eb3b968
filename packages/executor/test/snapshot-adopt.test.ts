/**
 * A step's upper dir becomes its layer's snapshot by rename (never unpacked again). The invariant
 * that makes this safe: the adopted snapshot holds exactly what unpacking the layer would give.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { lstat, mkdir, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { getAttribute } from 'fs-xattr';
import { applyLayer, chainIDsOf } from '@tsbuild/layer-store';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

/** path, type, mode, owner, size, mtime (s), rdev and opaque marker of every entry: what a lower dir shows overlay. */
async function listing(dir: string): Promise<string[]> {
  const rows: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const r = path.join(rel, name);
      const st = await lstat(path.join(dir, r));
      if (st.isCharacterDevice() && st.rdev === 0) {
        rows.push(`${r} whiteout`); // overlay reads only "0/0 char device" of a whiteout
        continue;
      }
      let opaque = '';
      if (st.isDirectory()) opaque = await getAttribute(path.join(dir, r), 'trusted.overlay.opaque').then((v) => v.toString(), () => '');
      rows.push(`${r} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${Math.floor(st.mtimeMs / 1000)} ${st.rdev} ${opaque}`);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return rows;
}

test('adopted snapshots equal their unpacked layers (whiteouts, opaque dirs, modes, clamped mtimes)', async (t) => {
  const dir = await testDir(t, 'adopt');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: [
      'FROM busybox',
      'COPY app/ /app/',
      'RUN rm /etc/group && rm -rf /home/app && mkdir -p /home/app/new && echo n > /home/app/new/f && chmod 4755 /app/x.sh && ln /app/x.sh /app/hard',
      'RUN rm -rf /app && mkdir /app && echo again > /app/again && touch /etc/passwd',
      'WORKDIR /srv/data',
    ].join('\n'),
    'app/x.sh': 'echo x\n',
    'app/sub/y.txt': 'y\n',
  });
  const store = await busyboxStore(dir);
  const root = store.root;
  const epoch = 1700000000;
  const { result } = await buildCollect({ store: root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') }, sourceDateEpoch: epoch });
  const image = await store.resolveImage(result.id);
  const diffIDs = image.config.rootfs.diff_ids;
  const chains = chainIDsOf(diffIDs);
  t.true(diffIDs.length >= 5, 'busybox + COPY + 2 RUN + WORKDIR layers');
  // no later step used the top layer as a lower dir: its snapshot exists only if it was adopted
  await t.notThrowsAsync(lstat(store.snapshotDirFor(chains.at(-1)!)), 'the top layer was adopted, not unpacked');
  for (let i = 1; i < diffIDs.length; i++) {
    const adopted = store.snapshotDirFor(chains[i]!);
    const unpacked = path.join(dir, `unpacked-${i}`);
    await mkdir(unpacked);
    await applyLayer(store.openBlob(image.manifest.layers[i]!.digest), unpacked, { format: 'overlay' });
    t.deepEqual(await listing(adopted), await listing(unpacked), `layer ${i}`);
  }
});

// dockerd 20.10 (checked: COPY f /newdir/sub/f, COPY d /copied/, WORKDIR /wd/x, ADD a.tar /ext/,
// then RUN stat -c %y): the directories those steps made or changed show .000000000 in the next
// step, since its commit unpacks the layer tar; our adopted snapshots kept the sub-second "now"
test('directories COPY, ADD and WORKDIR make have whole-second mtimes in the adopted snapshot', async (t) => {
  const dir = await testDir(t, 'adopt-mtime');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: ['FROM busybox', 'COPY f /newdir/sub/f', 'COPY d /copied/', 'WORKDIR /wd/x', 'ADD a.tar /ext/'].join('\n'),
    f: 'f\n',
    'd/g': 'g\n',
    'tarsrc/td/t': 't\n',
  });
  execFileSync('tar', ['-C', path.join(ctxDir, 'tarsrc'), '-cf', path.join(ctxDir, 'a.tar'), 'td']);
  const store = await busyboxStore(dir);
  const { result } = await buildCollect({ store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } });
  const image = await store.resolveImage(result.id);
  const chains = chainIDsOf(image.config.rootfs.diff_ids);
  const expected: Array<[number, string[]]> = [
    [1, ['newdir', 'newdir/sub']],
    [2, ['copied']],
    [3, ['wd', 'wd/x']],
    [4, ['ext']],
  ];
  for (const [layer, paths] of expected) {
    for (const p of paths) {
      const st = lstatSync(path.join(store.snapshotDirFor(chains[layer]!), p), { bigint: true });
      t.is(st.mtimeNs % 1_000_000_000n, 0n, `${p} in layer ${layer}`);
    }
  }
});
