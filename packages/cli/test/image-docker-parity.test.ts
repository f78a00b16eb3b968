/**
 * Where `images`, `history` and `tag` differed from Docker 20.10 (checked against dockerd):
 * filters, `history -H=false`, `tag` refusals. Tables for the pure parts, then main() on a store.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { rfc3339 } from '../src/commands/image-output.js';
import { globRegExp, parseFilters } from '../src/commands/images.js';
import { targetProblem } from '../src/commands/tag.js';
import { REPO, runMain as run, tempDir, type Run } from './helpers.js';

// [pattern, subject, matches] — Go's path.Match, as reference filters use it
const globRows: Array<[string, string, boolean]> = [
  ['dt-*', 'dt-bb', true],
  ['dt-*', 'dt-other/bb', false], // * stops at /
  ['*/bb', 'dt-other/bb', true],
  ['dt-*:1', 'dt-bb:1', true],
  ['dt-bb:?', 'dt-bb:1', true],
  ['dt-bb:?', 'dt-bb:12', false],
  ['dt-[ab]b', 'dt-bb', true],
  ['dt-[^ab]b', 'dt-bb', false],
  ['a.b', 'axb', false], // the dot is literal
  ['a\\*', 'a*', true],
  ['a\\*', 'ab', false],
];
for (const [pattern, subject, expected] of globRows) {
  test(`reference filter ${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${subject}`, (t) => {
    t.is(globRegExp(pattern).test(subject), expected);
  });
}

const badFilters: Array<[string, RegExp]> = [
  ['foo=1', /^Invalid filter 'foo'$/],
  // checked against dockerd: the value is printed as Go prints the []string
  ['dangling=maybe', /^Invalid filter 'dangling=\[maybe\]'$/],
  ['dangling', /bad format of filter/],
];
for (const [flag, message] of badFilters) {
  test(`images --filter ${flag} is refused as Docker refuses it`, (t) => {
    const err = t.throws(() => parseFilters([flag]));
    t.regex(err!.message, message);
  });
}

// [ISO time, minutes east of UTC, RFC 3339 as Go prints it]
const rfcRows: Array<[string, number, string]> = [
  ['2026-11-27T13:54:01.123456789Z', 0, '2026-11-27T13:54:01Z'],
  ['2026-11-27T13:54:01Z', 60, '2026-11-27T14:54:01+01:00'],
  ['2026-11-27T00:30:00Z', -330, '2026-11-26T19:00:00-05:30'],
  ['', 0, ''],
];
for (const [iso, offset, expected] of rfcRows) {
  test(`history -H=false time ${JSON.stringify(iso)} at UTC${offset >= 0 ? '+' : ''}${offset / 60}`, (t) => {
    t.is(rfc3339(iso, offset), expected);
  });
}

// [target, what docker tag prints] — checked against Docker 20.10
const tagRows: Array<[string, string | undefined]> = [
  ['ok:1', undefined],
  ['HOST:5000/x', undefined],
  ['x:bad!', 'Error parsing reference: "x:bad!" is not a valid repository/tag: invalid reference format'],
  ['', 'Error parsing reference: "" is not a valid repository/tag: invalid reference format'],
  ['Bad:Name', 'Error parsing reference: "Bad:Name" is not a valid repository/tag: invalid reference format: repository name must be lowercase'],
  ['Up/x', 'Error parsing reference: "Up/x" is not a valid repository/tag: invalid reference format: repository name must be lowercase'],
  ['x@sha256:abc', 'Error parsing reference: "x@sha256:abc" is not a valid repository/tag: invalid reference format'],
  [`x@sha256:${'0'.repeat(64)}`, 'refusing to create a tag with a digest reference'],
  ['0'.repeat(64), `Error parsing reference: "${'0'.repeat(64)}" is not a valid repository/tag: invalid repository name (${'0'.repeat(64)}), cannot specify 64-byte hexadecimal strings`],
  ['a'.repeat(300), `Error parsing reference: "${'a'.repeat(300)}" is not a valid repository/tag: repository name must not be more than 255 characters`],
];
for (const [target, expected] of tagRows) {
  test(`tag to ${JSON.stringify(target.slice(0, 20))}: ${expected === undefined ? 'accepted' : 'Docker\'s refusal'}`, (t) => {
    t.is(targetProblem(target), expected);
  });
}

// ---- through main() ----




/** A store with `old` (epoch 0, label tier=base) tagged a:1 and b/c:1, and `new` (epoch 100) tagged a:2. */
async function twoImages(t: ExecutionContext): Promise<string> {
  const dir = await tempDir(t);
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  const tarball = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 1 << 28 });
  const root = join(dir, 'store');
  const imp = async (epoch: string, args: string[]): Promise<void> => {
    const r = await run(root, ['import', ...args], { stdin: tarball, env: { SOURCE_DATE_EPOCH: epoch } });
    t.is(r.code, 0, r.stderr);
  };
  await imp('0', ['-c', 'LABEL tier=base', '-', 'a:1']);
  t.is((await run(root, ['tag', 'a:1', 'b/c:1'])).code, 0);
  await imp('100', ['-c', 'CMD ["x"]', '-', 'a:2']);
  await imp('50', ['-c', 'CMD ["y"]', '-', 'gone:1']);
  await imp('60', ['-c', 'CMD ["z"]', '-', 'gone:1']); // the first gone:1 is left dangling
  return root;
}

const names = (r: Run): string => r.stdout.trim();

test('images --filter and REPO arguments select rows as Docker 20.10 does', async (t) => {
  const root = await twoImages(t);
  const fmt = ['--format', '{{.Repository}}:{{.Tag}}'];
  t.is(names(await run(root, ['images', ...fmt])), 'a:2\ngone:1\n<none>:<none>\na:1\nb/c:1', 'newest first');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'reference=a'])), 'a:2\na:1');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'reference=*:1'])), 'gone:1\na:1');
  t.is(names(await run(root, ['images', ...fmt, '-f', 'reference=*/*'])), 'b/c:1');
  t.is(names(await run(root, ['images', ...fmt, 'a:1'])), 'a:1');
  t.is(names(await run(root, ['images', ...fmt, 'b/*'])), 'b/c:1');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'dangling=true'])), '<none>:<none>');
  t.is(names(await run(root, ['images', ...fmt, '-a', '--filter', 'dangling=false', 'gone'])), 'gone:1');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'label=tier'])), 'a:1\nb/c:1');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'label=tier=other'])), '');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'before=gone:1'])), '<none>:<none>\na:1\nb/c:1');
  t.is(names(await run(root, ['images', ...fmt, '--filter', 'since=gone:1', '--filter', 'reference=a'])), 'a:2');
  const bad = await run(root, ['images', '--filter', 'size=1']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /Invalid filter 'size'/);
});

test('history -H=false prints CREATED AT in RFC 3339 and sizes in bytes; tag refusals exit 1', async (t) => {
  const root = await twoImages(t);
  const raw = await run(root, ['history', '-H=false', 'a:1']);
  t.is(raw.code, 0, raw.stderr);
  const [head, row] = raw.stdout.split('\n');
  t.regex(head!, /^IMAGE +CREATED AT +CREATED BY +SIZE +COMMENT$/);
  t.regex(row!, /^[0-9a-f]{12} +1970-01-01T\d\d:\d\d:00(Z|[+-]\d\d:\d\d) +\d+ +Imported from -$/);
  const size = Number(/ (\d+) +Imported/.exec(row!)![1]);
  t.is((await run(root, ['inspect', '-f', '{{.Size}}', 'a:1'])).stdout, `${size}\n`, 'one layer: its size is the image size');
  t.is((await run(root, ['history', '-H', 'a:1'])).stdout.split('\n')[0]!.split(/ {3,}/)[1], 'CREATED');

  const bad = await run(root, ['tag', 'a:1', 'Bad:Name']);
  t.is(bad.code, 1);
  t.is(bad.stderr, 'Error parsing reference: "Bad:Name" is not a valid repository/tag: invalid reference format: repository name must be lowercase\n');
  const missing = await run(root, ['tag', 'nosuch:1', 'x:1']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'Error response: No such image: nosuch:1\n');
});
