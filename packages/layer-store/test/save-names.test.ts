/**
 * Which images and tags `save` writes for the names it is given, as Docker 20.10's `docker save`
 * (checked against dockerd: `docker save repo` saves every tag of the repository).
 */
import test from 'ava';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { importRootfs, save, type Store } from '../src/index.js';
import { collector, makeTar, tempStore } from './archive-fixtures.js';

async function image(store: Store, ref: string, content: string): Promise<string> {
  return (await importRootfs(store, Readable.from([await makeTar([{ name: 'f', data: content }])]), { ref, sourceDateEpoch: 0 })).id;
}

/** manifest.json of the archive `save` writes for `names`: each image's config hex and RepoTags. */
async function saved(store: Store, names: string[]): Promise<Array<[string, string[] | null]>> {
  const out = collector();
  await save(store, names, out);
  const extract = tar.extract();
  let manifest = '';
  const done = (async () => {
    for await (const e of extract) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      if (e.header.name === 'manifest.json') manifest = Buffer.concat(chunks).toString('utf8');
    }
  })();
  extract.end(out.bytes());
  await done;
  return (JSON.parse(manifest) as Array<{ Config: string; RepoTags: string[] | null }>).map((m) => [m.Config.slice(-64), m.RepoTags]);
}

test('save of a repository name without a tag saves every tag of it; with a tag, that tag; an ID, untagged', async (t) => {
  const store = await tempStore(t);
  const one = (await image(store, 'lssave/app:1', 'one')).slice(7);
  const two = (await image(store, 'lssave/app:2', 'two')).slice(7);
  await image(store, 'lssave/other:1', 'other');
  await store.tag('lssave/app:one-again', (await store.resolveImage('lssave/app:1')).manifestDescriptor);
  t.deepEqual(await saved(store, ['lssave/app']), [
    [one, ['lssave/app:1', 'lssave/app:one-again']],
    [two, ['lssave/app:2']],
  ]);
  t.deepEqual(await saved(store, ['lssave/app:2', 'lssave/app']), [
    [two, ['lssave/app:2']],
    [one, ['lssave/app:1', 'lssave/app:one-again']],
  ], 'a tag given twice is saved once');
  t.deepEqual(await saved(store, [one.slice(0, 12)]), [[one, null]], 'a name no repository has: an ID prefix');
  await t.throwsAsync(saved(store, ['lssave/none']), { code: 'E_IMAGE_NOT_FOUND' });
});

test('save of untagged images writes no repositories file, as docker save of an image ID', async (t) => {
  // checked against dockerd: docker save <id> has manifest.json with RepoTags null and no repositories
  const store = await tempStore(t);
  const id = (await image(store, 'lssave/untagged:1', 'x')).slice(7);
  const members = async (names: string[]): Promise<string[]> => {
    const out = collector();
    await save(store, names, out);
    const extract = tar.extract();
    const names2: string[] = [];
    const done = (async () => {
      for await (const e of extract) {
        names2.push(e.header.name);
        e.resume();
      }
    })();
    extract.end(out.bytes());
    await done;
    return names2;
  };
  t.false((await members([id.slice(0, 12)])).includes('repositories'));
  t.true((await members(['lssave/untagged:1'])).includes('repositories'));
});
