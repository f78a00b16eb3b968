/** COPY keeps no xattrs of its sources (Docker 20.10's classic builder drops them, file capabilities included). */
import test from 'ava';
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import { setAttribute } from 'fs-xattr';
import tar from 'tar-stream';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

test("COPY drops the sources' xattrs (security.capability, user.*), as Docker 20.10 does", async (t) => {
  const dir = await testDir(t, 'copy-xattrs');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: 'FROM busybox\nCOPY . /c/\n', cap: 'x\n', a: 'a\n' });
  // cap_net_raw+ep, as setcap writes it (VFS_CAP_REVISION_2)
  await setAttribute(path.join(ctxDir, 'cap'), 'security.capability', Buffer.from('AQAAAgAgAAAAAAAAAAAAAAAAAAA=', 'base64'));
  await setAttribute(path.join(ctxDir, 'a'), 'user.foo', Buffer.from('bar'));
  const store = await busyboxStore(dir);
  const { result } = await buildCollect({ store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } });
  const image = await store.resolveImage(result.id);
  const extract = tar.extract();
  const seen: Array<[string, string[]]> = [];
  extract.on('entry', (h, stream, next) => {
    if (h.name === 'c/cap' || h.name === 'c/a') seen.push([h.name, Object.keys(h.pax ?? {}).filter((k) => k.startsWith('SCHILY.xattr.'))]);
    stream.resume();
    stream.on('end', next);
  });
  const done = new Promise<void>((resolve, reject) => extract.on('finish', () => resolve()).on('error', reject));
  createReadStream(store.blobPath(image.manifest.layers.at(-1)!.digest)).pipe(createGunzip()).pipe(extract);
  await done;
  t.deepEqual(seen.sort(), [
    ['c/a', []],
    ['c/cap', []],
  ]);
});
