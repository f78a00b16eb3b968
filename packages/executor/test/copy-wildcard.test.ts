/**
 * COPY/ADD wildcards that match nothing, through build(): as Docker 20.10's classic builder
 * (createCopyInstruction), the sources are counted after expansion, and only an instruction left
 * with none fails ("COPY failed: no source files were specified"; checked against dockerd).
 */
import test from 'ava';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { build, BuildError, type BuildOptions } from '../src/index.js';
import { fileLines, flattenImage, sharedBusyboxStore, tempDir } from './helpers/images.js';

const shared = sharedBusyboxStore();
test.after.always(() => shared.remove());

async function setup(t: import('ava').ExecutionContext, name: string): Promise<{ tmp: string; opts: (df: string) => BuildOptions }> {
  const { store } = await shared.get();
  const tmp = await tempDir(name);
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  await writeFile(path.join(tmp, 'a.txt'), 'a\n');
  await writeFile(path.join(tmp, 'b.txt'), 'b\n');
  return { tmp, opts: (df) => ({ store, contextDir: tmp, dockerfile: { text: df }, sourceDateEpoch: 0 }) };
}

test('COPY/ADD: a wildcard matching nothing beside other sources is skipped, also with --from', async (t) => {
  const { tmp, opts } = await setup(t, 'wild-mixed');
  const { store } = await shared.get();
  const df = [
    'FROM busybox',
    'COPY *.nomatch* a.txt /mixed/',
    'COPY *.nomatch* a.txt /mixed-file', // one source left: the destination is a file
    'ADD *.nomatch* b.txt /added/',
    'COPY --from=busybox /bin/nomatch* /etc/group /from/',
  ].join('\n');
  await build({ ...opts(df), tags: ['wild-mixed:latest'] });
  const out = path.join(tmp, 'out');
  await mkdir(out);
  const lines = await fileLines(await flattenImage(store, 'wild-mixed:latest', out));
  const kind = (p: string): string | undefined => lines.find((l) => l.startsWith(`${p} `))?.split(' ')[1];
  t.deepEqual(['mixed/a.txt', 'mixed-file', 'added/b.txt', 'from/group'].map(kind), ['file', 'file', 'file', 'file']);
});

for (const [name, df, message] of [
  ['COPY, one wildcard', 'COPY *.nomatch* /x/', 'COPY failed: no source files were specified'],
  ['ADD, one wildcard', 'ADD *.nomatch* /x/', 'ADD failed: no source files were specified'],
  ['COPY, two wildcards', 'COPY *.nomatch* b*.nomatch /m/', 'COPY failed: no source files were specified'],
  ['COPY --from, one wildcard', 'COPY --from=busybox /nomatch* /x/', 'COPY failed: no source files were specified'],
  ['COPY, two matches left, no slash', 'COPY *.nomatch* *.txt /m', 'When using COPY with more than one source file, the destination must be a directory and end with a /'],
] as const) {
  test(`${name}: fails like Docker 20.10 ("${message}") with the line`, async (t) => {
    const { opts } = await setup(t, 'wild-none');
    const err = await t.throwsAsync(build(opts(`FROM busybox\n\n${df}\n`)), { instanceOf: BuildError });
    t.is(err?.line, 3);
    t.true(err?.message.endsWith(`${df}: ${message}`), err?.message);
    if (message.includes('no source files')) t.is((err?.cause as { code?: string } | undefined)?.code, 'E_NO_SOURCE_FILES');
  });
}
