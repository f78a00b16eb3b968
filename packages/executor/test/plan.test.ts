import test from 'ava';
import { parseDockerfile } from '@tsbuild/parser';
import { planBuild } from '../src/build/plan.js';
import { BuildError } from '../src/build/errors.js';

const platform = { os: 'linux', architecture: 'amd64' };

/** The planned stage indices and each one's deps, for a Dockerfile and options. */
function planOf(text: string, target?: string): Array<[number, number[]]> {
  const plan = planBuild(parseDockerfile(text), { buildArgs: {}, platform, file: 'Dockerfile', ...(target !== undefined ? { target } : {}) });
  return plan.stages.map((p) => [p.stage.index, p.deps]);
}

test('planBuild: every stage up to the target (as Docker 20.10\'s classic builder), each with the stages it reads', (t) => {
  const rows: Array<[string, string, string | undefined, Array<[number, number[]]>]> = [
    ['FROM chain, an unused stage built too', 'FROM busybox AS a\nFROM a AS b\nFROM busybox AS unused\nFROM b\n', undefined, [[0, []], [1, [0]], [2, []], [3, [1]]]],
    ['COPY --from by name and index', 'FROM busybox AS a\nFROM busybox\nFROM busybox\nCOPY --from=A /x /\nCOPY --from=1 /y /\n', undefined, [[0, []], [1, []], [2, [0, 1]]]],
    ['--target stops early', 'FROM busybox AS a\nFROM a AS b\nFROM b\n', 'b', [[0, []], [1, [0]]]],
    ['--target: the stages after it are not built', 'FROM busybox AS a\nFROM busybox AS b\nFROM busybox AS c\n', 'a', [[0, []]]],
    ['COPY --from an image is no dep', 'FROM busybox AS a\nFROM busybox\nCOPY --from=alpine /x /\n', undefined, [[0, []], [1, []]]],
    // a variable can name any earlier stage once expanded with the stage's ARGs: all are built
    ['COPY --from=${VAR}', 'FROM busybox AS builder\nFROM busybox AS other\nFROM busybox\nARG SRC=builder\nCOPY --from=${SRC} /b /\n', undefined, [[0, []], [1, []], [2, [0, 1]]]],
  ];
  for (const [name, text, target, want] of rows) t.deepEqual(planOf(text, target), want, name);
});

test('planBuild: a stage name used again up to the target fails as Docker 20.10 ("a stage name already used", checked against dockerd); after the target it is not checked', (t) => {
  const text = 'FROM busybox AS a\nRUN true\nFROM busybox AS A\nFROM busybox AS b\nFROM busybox AS b\n';
  const err = t.throws(() => planOf(text), { instanceOf: BuildError });
  t.is(err?.message, 'Dockerfile:3: a stage name already used');
  t.is(err?.line, 3);
  t.throws(() => planOf(text, "b"), { message: 'Dockerfile:3: a stage name already used' });
  t.notThrows(() => planOf('FROM busybox AS a\nFROM busybox AS b\nFROM busybox AS b\n', 'a'));
});
