/**
 * COPY --from keeps file capabilities where Docker 20.10's classic builder does: below a directory
 * source without --chown (its TarUntar carries security.capability); not for a single-file source
 * (CopyFileWithTar) nor with --chown (the chown after the untar clears them). Checked against
 * dockerd on Debian (hreal/multi, probe1): `setcap` in a build stage, then `COPY --from`.
 */
import test from 'ava';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

/** cap_net_raw+ep as setcap writes it (VFS_CAP_REVISION_2); every byte below 0x80 */
const CAP = Buffer.from('AQAAAgAgAAAAAAAAAAAAAAAAAAA=', 'base64');

/** A tar with out/bin/t (with CAP) and out/plain, as ADD extracts it into the build stage. */
async function capTar(file: string): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => pack.on('end', () => resolve()).on('error', reject));
  pack.entry({ name: 'out/', type: 'directory', mode: 0o755, mtime: new Date(1e12) });
  pack.entry({ name: 'out/bin/', type: 'directory', mode: 0o755, mtime: new Date(1e12) });
  pack.entry({ name: 'out/bin/t', mode: 0o755, mtime: new Date(1e12), pax: { 'SCHILY.xattr.security.capability': CAP.toString('latin1') } }, 'bin\n');
  pack.entry({ name: 'out/plain', mode: 0o644, mtime: new Date(1e12) }, 'plain\n');
  pack.finalize();
  await done;
  await writeFile(file, Buffer.concat(chunks));
}

test('COPY --from of a directory keeps security.capability; a file source and --chown do not', async (t) => {
  const dir = await testDir(t, 'copy-from-caps');
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, {
    Dockerfile: [
      'FROM busybox AS build',
      'ADD caps.tar /',
      'FROM busybox',
      'COPY --from=build /out/ /usr/local/',
      'COPY --from=build /out /dir2',
      'COPY --from=build /out/bin/t /file-src',
      'COPY --from=build --chown=1000:1000 /out/ /chowned/',
      '',
    ].join('\n'),
  });
  await capTar(path.join(ctxDir, 'caps.tar'));
  const store = await busyboxStore(dir);
  const { result } = await buildCollect({ store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } });
  const image = await store.resolveImage(result.id);
  const caps = new Map<string, string>();
  for (const layer of image.manifest.layers.slice(-4)) {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      if (h.type === 'file') {
        const v = (h.pax as Record<string, string> | undefined)?.['SCHILY.xattr.security.capability'];
        caps.set(h.name, v === undefined ? '' : Buffer.from(v, 'latin1').toString('base64'));
      }
      stream.resume();
      stream.on('end', next);
    });
    const done = new Promise<void>((resolve, reject) => extract.on('finish', () => resolve()).on('error', reject));
    createReadStream(store.blobPath(layer.digest)).pipe(createGunzip()).pipe(extract);
    await done;
  }
  t.deepEqual(Object.fromEntries([...caps].sort()), {
    'chowned/bin/t': '',
    'chowned/plain': '',
    'dir2/bin/t': CAP.toString('base64'),
    'dir2/plain': '',
    'file-src': '',
    'usr/local/bin/t': CAP.toString('base64'),
    'usr/local/plain': '',
  });
});
