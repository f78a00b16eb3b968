/**
 * import's REPOSITORY[:TAG] and save's missing names in dockerd 20.10's words (checked against
 * dockerd): import of 'Bad:Name' fails 'invalid reference format: repository name must be
 * lowercase' and of 'x@sha256:…' 'cannot import digest reference', before anything is imported (we
 * stored a digest reference naming a manifest the image does not have); save of a missing tag or
 * digest reference says 'reference does not exist', of a bare name or ID prefix 'No such image:
 * NAME' (we said 'image not found: NAME').
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { importRootfs, Store } from '@tsbuild/layer-store';
import { runMain as run, tempDir } from './helpers.js';

const DIGEST_REF = `x@sha256:${'0'.repeat(64)}`;

test('import refuses a bad or digest reference before importing anything', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const empty = Buffer.alloc(0);
  const cases: Array<[string, string]> = [
    ['Bad:Name', 'error: invalid reference format: repository name must be lowercase'],
    ['a:b:c', 'error: invalid reference format'],
    [DIGEST_REF, 'error: cannot import digest reference'],
  ];
  for (const [ref, message] of cases) {
    const r = await run(root, ['import', '-', ref], { stdin: empty });
    t.is(r.code, 1, ref);
    t.is(r.stdout, '');
    t.is(r.stderr.split('\n')[0], message);
  }
  t.is((await run(root, ['images', '-a', '-q'])).stdout, '', 'nothing was imported');
  // the library refuses a digest reference too
  const store = await Store.open(join(dir, 'lib'));
  await t.throwsAsync(importRootfs(store, Readable.from([]), { ref: DIGEST_REF }), { code: 'E_REFERENCE', message: /cannot import digest reference/ });
  t.deepEqual((await store.readIndex()).manifests, []);
});

test('save of a name that names nothing: dockerd\'s message by the kind of name', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  t.is((await run(root, ['import', '-', 'here:1'], { stdin: Buffer.alloc(0) })).code, 0);
  const cases: Array<[string, string]> = [
    ['nosuch:1', 'error: reference does not exist'],
    ['here:2', 'error: reference does not exist'],
    [DIGEST_REF, 'error: reference does not exist'],
    ['nosuch', 'error: No such image: nosuch'],
    ['0000000', 'error: No such image: 0000000'],
  ];
  for (const [name, message] of cases) {
    const r = await run(root, ['save', '-o', join(dir, 'x.tar'), 'here:1', name]);
    t.is(r.code, 1, name);
    t.is(r.stderr.split('\n')[0], message, name);
    t.regex(r.stderr, new RegExp(`hint: no image is named ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')};`));
  }
});
