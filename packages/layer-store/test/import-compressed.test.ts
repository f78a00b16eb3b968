/** import takes the compressions Docker's import takes (archive.DecompressStream): gzip, bzip2, xz, and zstd. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importRootfs, inspectImage } from '../src/index.js';
import { busyboxRootfs, tempDir, tempStore } from './archive-fixtures.js';

const compressors: Array<[string, string[]]> = [
  ['gzip', ['gzip', '-c']],
  ['bzip2', ['bzip2', '-c']],
  ['xz', ['xz', '-c']],
  ['zstd', ['zstd', '-q', '-c']],
];

for (const [name, cmd] of compressors) {
  test(`import of a ${name} tarball gives the image of the plain tarball`, async (t) => {
    const { tarFile } = await busyboxRootfs(t);
    const packed = join(await tempDir(t), `rootfs.tar.${name}`);
    await writeFile(packed, execFileSync(cmd[0]!, [...cmd.slice(1), tarFile], { maxBuffer: 1 << 28 }));
    const store = await tempStore(t);
    const plain = await importRootfs(store, createReadStream(tarFile), { ref: 'lsexp:plain', sourceDateEpoch: 0 });
    const compressed = await importRootfs(store, createReadStream(packed), { ref: `lsexp:${name}`, sourceDateEpoch: 0 });
    t.is(compressed.id, plain.id);
    t.is((await inspectImage(store, `lsexp:${name}`)).Size, (await inspectImage(store, 'lsexp:plain')).Size);
  });
}
