import test from 'ava';
import { createGunzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { Store } from '@tsbuild/layer-store';
import { BuildError } from '../src/index.js';
import { busyboxStore, buildCollect, testDir, writeFiles } from './cache-helpers.js';

async function setup(t: import('ava').ExecutionContext, dockerfile: string, files: Record<string, string> = {}) {
  const dir = await testDir(t, 'mounts');
  const store = await busyboxStore(dir);
  const ctxDir = path.join(dir, 'ctx');
  await writeFiles(ctxDir, { Dockerfile: dockerfile, ...files });
  return { store, ctxDir, opts: { store: store.root, contextDir: ctxDir, dockerfile: { path: path.join(ctxDir, 'Dockerfile') } } };
}

/** Every file path in the image's layers (tar listing via busybox-free parse: use `tar -tz`). */
async function layerText(store: Store, digest: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(path.join(store.blobsDir, digest.slice(7))).pipe(createGunzip())) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

function stepOutput(events: Awaited<ReturnType<typeof buildCollect>>['events']): string {
  return events.flatMap((e) => (e.type === 'step-log' ? [Buffer.from(e.bytes).toString()] : [])).join('');
}

test('mounts: a cache mount persists between builds and is not in the layer', async (t) => {
  const df = (n: string) => `FROM busybox\nRUN --mount=type=cache,target=/var/cache/app,id=c1 cat /var/cache/app/seen 2>/dev/null; echo ${n} >> /var/cache/app/seen; echo out > /out\n`;
  const { store, ctxDir, opts } = await setup(t, df('one'));
  const first = await buildCollect(opts);
  await writeFiles(ctxDir, { Dockerfile: df('two') });
  const second = await buildCollect(opts);
  t.regex(stepOutput(second.events), /one/);
  const layer = second.result.steps[0]?.layer as string;
  const text = await layerText(store, layer);
  t.true(text.includes('out'));
  t.false(text.includes('var/cache'), 'neither the mount point nor the contents are in the layer');
  t.truthy(first.result.id);
});

test('mounts: a secret is readable by RUN and appears in no blob, key or history', async (t) => {
  const secret = 'S3CR3T-value-7f1c';
  const { store, opts } = await setup(t, 'FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && wc -c < /run/secrets/tok > /len\n');
  const r = await buildCollect({ ...opts, secrets: [{ id: 'tok', value: secret }] });
  for (const name of await readdir(store.blobsDir)) {
    const file = path.join(store.blobsDir, name);
    const raw = await new Promise<Buffer>((res, rej) => {
      const cs: Buffer[] = [];
      createReadStream(file).on('data', (c) => cs.push(c as Buffer)).on('end', () => res(Buffer.concat(cs))).on('error', rej);
    });
    t.false(raw.includes(secret), `blob ${name}`);
    if (raw[0] === 0x1f && raw[1] === 0x8b) t.false((await layerText(store, `sha256:${name}`)).includes(secret), `gunzipped ${name}`);
  }
  for (const name of (await readdir(store.cacheDir)).filter((n) => n.endsWith('.json'))) {
    t.false((await import('node:fs/promises').then((f) => f.readFile(path.join(store.cacheDir, name), 'utf8'))).includes(secret));
  }
  const text = await layerText(store, r.result.steps[0]?.layer as string);
  t.true(text.includes(`${secret.length}\n`), 'the RUN read the secret');
  t.false(text.includes('run/secrets'), 'mount point not committed');
});

test('mounts: a required secret that was not given fails with E_SECRET; ssh is E_UNSUPPORTED', async (t) => {
  const { opts } = await setup(t, 'FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n');
  const err = await t.throwsAsync(buildCollect(opts));
  t.true(err instanceof BuildError);
  t.is(((err as BuildError).cause as BuildError).code, 'E_SECRET');
  const ssh = await setup(t, 'FROM busybox\nRUN --mount=type=ssh true\n');
  const e2 = await t.throwsAsync(buildCollect(ssh.opts));
  t.is(((e2 as BuildError).cause as BuildError).code, 'E_UNSUPPORTED');
});

test('mounts: bind from the context reads a file; tmpfs is empty and not committed', async (t) => {
  const { store, opts } = await setup(
    t,
    'FROM busybox\nRUN --mount=type=bind,source=data.txt,target=/src/data.txt --mount=type=tmpfs,target=/scratch cp /src/data.txt /got && ls -A /scratch | wc -l > /tmpcount && touch /scratch/x\n',
    { 'data.txt': 'bound-content\n' },
  );
  const r = await buildCollect(opts);
  const text = await layerText(store, r.result.steps[0]?.layer as string);
  t.true(text.includes('bound-content'));
  t.regex(text, /tmpcount[\s\S]*\b0\n/);
  t.false(text.includes('scratch'));
  t.false(text.includes('src/'));
});
