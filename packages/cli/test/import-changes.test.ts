/**
 * import -c lines as Docker 20.10 reads them. Every row was checked against dockerd with
 * `docker import -c LINE root.tar` and `docker inspect -f '{{json .Config}}'` (the error rows are
 * dockerd's message after 'Error response from daemon: '). Before: HEALTHCHECK was refused,
 * variables were not expanded (ENV A=$HOME kept '$HOME'), 'LABEL a' and a bare 'CMD' were taken or
 * refused the other way round, WORKDIR /abs/../x was cleaned, a comment-only change was accepted,
 * and the messages differed ('STOPSIGNAL is not…', 'invalid port "abc"').
 */
import test from 'ava';
import type { ContainerConfig } from '@tsbuild/layer-store';
import { configFromChanges } from '../src/commands/import-changes.js';
import { runMain as run, tempDir } from './helpers.js';
import { join } from 'node:path';

const ok: Array<[string[], ContainerConfig]> = [
  [[], {}],
  [['CMD echo hi'], { Cmd: ['/bin/sh', '-c', 'echo hi'] }],
  [['cmd lower'], { Cmd: ['/bin/sh', '-c', 'lower'] }],
  [['CMD'], { Cmd: ['/bin/sh', '-c'] }],
  [['ENTRYPOINT'], {}],
  [['CMD ["a"]', 'ENTRYPOINT ["x"]'], { Cmd: ['a'], Entrypoint: ['x'] }],
  [['ENV A=$HOME'], { Env: ['A='] }],
  [['ENV A=1', 'ENV B=$A C=${A:+set}'], { Env: ['A=1', 'B=1', 'C=set'] }],
  [['ENV A=1 B=$A'], { Env: ['A=1', 'B='] }],
  [['ENV A=1\nENV B=$A'], { Env: ['A=1', 'B=1'] }],
  [['ENV A=${B:-d} C=\\$x'], { Env: ['A=d', 'C=$x'] }],
  [['ENV A 1 2'], { Env: ['A=1 2'] }],
  [['ENV A=1', ''], { Env: ['A=1'] }],
  [['LABEL "x y"="z"'], { Labels: { 'x y': 'z' } }],
  [['USER ${U:-app}'], { User: 'app' }],
  [['WORKDIR rel'], { WorkingDir: '/rel' }],
  [['WORKDIR /abs/../x'], { WorkingDir: '/abs/../x' }],
  [['EXPOSE 8000-8001 90/udp'], { ExposedPorts: { '8000/tcp': {}, '8001/tcp': {}, '90/udp': {} } }],
  [['VOLUME ["/a"]'], { Volumes: { '/a': {} } }],
  [['HEALTHCHECK CMD true'], { Healthcheck: { Test: ['CMD-SHELL', 'true'] } }],
  [['HEALTHCHECK --interval=5s --retries=3 CMD ["x"]'], { Healthcheck: { Test: ['CMD', 'x'], Interval: 5e9, Retries: 3 } }],
  [['HEALTHCHECK NONE'], { Healthcheck: { Test: ['NONE'] } }],
  [['ONBUILD RUN x'], { OnBuild: ['RUN x'] }],
];

for (const [changes, config] of ok) {
  test(`import -c ${JSON.stringify(changes)}`, (t) => {
    t.deepEqual(configFromChanges(changes), config);
  });
}

const refused: Array<[string[], string]> = [
  [['STOPSIGNAL 9'], 'stopsignal is not a valid change command'],
  [['RUN echo'], 'run is not a valid change command'],
  [['FROM x'], 'from is not a valid change command'],
  [['SHELL ["/bin/sh"]'], 'shell is not a valid change command'],
  [['ARG x=1'], 'arg is not a valid change command'],
  [['bogus'], 'bogus is not a valid change command'],
  [['LABEL a'], 'LABEL must have two arguments'],
  [['ENV A'], 'ENV must have two arguments'],
  [['ENV'], 'ENV requires at least one argument'],
  [['EXPOSE'], 'EXPOSE requires at least one argument'],
  [['EXPOSE abc'], 'Invalid containerPort: abc'],
  [['EXPOSE 80/xyz'], 'Invalid proto: xyz'],
  [['ONBUILD ONBUILD RUN x'], 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
  [['HEALTHCHECK --bogus=1 CMD x'], 'Unknown flag: bogus'],
  [[''], 'file with no instructions'],
  [['# comment'], 'file with no instructions'],
];

for (const [changes, message] of refused) {
  test(`import -c ${JSON.stringify(changes)} is refused`, (t) => {
    const err = t.throws(() => configFromChanges(changes));
    t.is(err?.message, message);
    t.is((err as { code?: string }).code, 'E_CHANGE');
  });
}

test('import -c through the command: config applied, a bad change fails before the store is written', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const good = await run(root, ['import', '-c', 'ENV A=1', '-c', 'ENV B=$A', '-c', 'HEALTHCHECK CMD true', '-', 'chg:1'], { stdin: Buffer.alloc(0) });
  t.is(good.code, 0, good.stderr);
  const cfg = await run(root, ['inspect', '-f', '{{json .Config.Env}} {{json .Config.Healthcheck}}', 'chg:1']);
  t.is(cfg.stdout, '["A=1","B=1"] {"Test":["CMD-SHELL","true"]}\n');
  const bad = await run(root, ['import', '-c', 'STOPSIGNAL 9', '-', 'chg:2'], { stdin: Buffer.alloc(0) });
  t.is(bad.code, 1);
  t.is(bad.stderr.split('\n')[0], 'error: stopsignal is not a valid change command');
  t.is((await run(root, ['inspect', 'chg:2'])).code, 1);
});
