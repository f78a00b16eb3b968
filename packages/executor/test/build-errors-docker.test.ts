import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { build } from '../src/index.js';

// Messages checked against dockerd 20.10's classic builder (oracle5/e-from-badref*, e-copyfrom-*):
// an image it does not have is pulled, and a name distribution/reference refuses fails there.
const hex64 = '0123456789012345678901234567890123456789012345678901234567890123';
const rows: Array<[string, string, RegExp]> = [
  ['FROM with an uppercase name', 'FROM Busybox\n', /^Dockerfile:1: FROM Busybox: invalid reference format: repository name must be lowercase$/],
  ['FROM with two colons', 'FROM busy_box::x\n', /^Dockerfile:1: FROM busy_box::x: invalid reference format$/],
  ['FROM with a short digest', 'FROM busybox@sha256:abc\n', /^Dockerfile:1: FROM busybox@sha256:abc: invalid reference format$/],
  ['FROM a valid name that is not here', 'FROM nosuch:1.0\n', /^Dockerfile:1: base image "nosuch:1.0" is not in the store$/],
  [
    'COPY --from an uppercase name',
    'FROM scratch\nCOPY --from=Busybox /bin/sh /x\n',
    /^Dockerfile:2: COPY --from=Busybox \/bin\/sh \/x: invalid from flag value Busybox: invalid reference format: repository name must be lowercase$/,
  ],
  [
    'COPY --from 64 hex digits',
    `FROM scratch\nCOPY --from=${hex64} /x /x\n`,
    new RegExp(`invalid from flag value ${hex64}: invalid repository name \\(${hex64}\\), cannot specify 64-byte hexadecimal strings$`),
  ],
  // dockerd: getCopyInfoForSourcePath without allowRemote (h2/ue3); we said 'no source files were specified'
  ['COPY of a URL', 'FROM scratch\nCOPY http://127.0.0.1:9/f.txt /c\n', /^Dockerfile:2: COPY http:\/\/127\.0\.0\.1:9\/f\.txt \/c: COPY failed: source can't be a URL for COPY$/],
  ['COPY --from a valid name that is not here', 'FROM scratch\nCOPY --from=nosuch /x /x\n', /: invalid from flag value nosuch: no stage or image named "nosuch" in the store$/],
];

for (const [name, text, message] of rows) {
  test(`image name errors as dockerd words them: ${name}`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'build-errors-docker-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await t.throwsAsync(build({ store: path.join(dir, 'store'), contextDir: null, dockerfile: { text } }), { message } as never);
  });
}

// Docker 20.10's classic builder builds every stage up to the target, used or not (checked:
// `FROM busybox AS broken / RUN … exit 3 / FROM busybox / RUN echo ok` fails with code 3)
test('a stage the target does not read is built, and its failing RUN fails the build with its code', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'build-errors-docker-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { busyboxStore } = await import('./cache-helpers.js');
  const store = await busyboxStore(dir);
  const text = 'FROM busybox AS broken\nRUN echo broken-stage-ran && exit 3\nFROM busybox\nRUN echo ok\n';
  const err = await t.throwsAsync(build({ store, contextDir: null, dockerfile: { text } }));
  t.is((err as { exitCode?: number }).exitCode, 3);
  t.regex(err!.message, /returned a non-zero code: 3/);
  // with --target the stages after it are not built
  const ok = await build({ store, contextDir: null, dockerfile: { text: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nRUN exit 4\n' }, target: 'a' });
  t.truthy(ok.id);
});
