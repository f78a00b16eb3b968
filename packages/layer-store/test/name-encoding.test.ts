import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreError, writeLayer } from '../src/index.js';
import { mergedTarStream } from '../src/layer-tar.js';
import { tempDir, tempStore } from './archive-fixtures.js';

// A name with bytes that are not UTF-8 (a RUN step can make one): Node's readdir decodes it with
// U+FFFD, so the decoded name names nothing. Both walks fail saying which file, not with ENOENT.
test('a file name that is not valid UTF-8 fails the layer writer and the merged walk with E_NAME_ENCODING', async (t) => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sub'));
  await writeFile(Buffer.concat([Buffer.from(join(dir, 'sub/bad')), Buffer.from([0xff, 0xfe]), Buffer.from('name')]), 'x');
  const err = await t.throwsAsync(writeLayer(store, dir, { kind: 'upper' }), { instanceOf: StoreError });
  t.is((err as StoreError).code, 'E_NAME_ENCODING');
  t.regex(err!.message, /^file name is not valid UTF-8: sub\/bad\ufffd\ufffdname$/);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const merged = await t.throwsAsync(pipeline(mergedTarStream([dir]), sink));
  t.is((merged as StoreError).code, 'E_NAME_ENCODING');
});
