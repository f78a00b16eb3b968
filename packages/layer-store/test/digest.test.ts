import test from 'ava';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { chainIDOf, hashing, parseDigest, sha256Of, type DiffID } from '../src/index.js';

const hex = (c: string) => c.repeat(64);

for (const [input, ok] of [
  [`sha256:${hex('a')}`, true],
  [`sha256:${hex('0')}`, true],
  [`sha256:${hex('A')}`, false],
  [`sha256:${'a'.repeat(63)}`, false],
  [`sha512:${hex('a')}`, false],
  [hex('a'), false],
  ['', false],
] as const) {
  test(`parseDigest ${JSON.stringify(input.slice(0, 20))}… → ${ok ? 'ok' : 'E_DIGEST'}`, (t) => {
    if (ok) t.is<string, string>(parseDigest(input), input);
    else t.is((t.throws(() => parseDigest(input)) as Error & { code: string }).code, 'E_DIGEST');
  });
}

test('sha256Of matches node crypto', (t) => {
  t.is<string, string>(sha256Of('hello'), `sha256:${createHash('sha256').update('hello').digest('hex')}`);
});

test('hashing() passes bytes through, hashes and counts them', async (t) => {
  const h = hashing();
  const seen: Buffer[] = [];
  await pipeline(Readable.from([Buffer.from('hel'), Buffer.from('lo')]), h, new Writable({ write: (c, _e, cb) => (seen.push(c), cb()) }));
  t.is(Buffer.concat(seen).toString(), 'hello');
  t.is(h.size, 5);
  t.is(h.digest(), sha256Of('hello'));
});

test('chainIDOf follows the OCI rule', (t) => {
  const a = `sha256:${hex('a')}` as DiffID;
  const b = `sha256:${hex('b')}` as DiffID;
  const c = `sha256:${hex('c')}` as DiffID;
  t.is<string, string>(chainIDOf([a]), a);
  const ab = sha256Of(`${a} ${b}`);
  t.is<string, string>(chainIDOf([a, b]), ab);
  t.is<string, string>(chainIDOf([a, b, c]), sha256Of(`${ab} ${c}`));
  t.throws(() => chainIDOf([]), { code: 'E_DIGEST' } as never);
});
