import test from 'ava';
import { cleanPath, compileIgnore, goMatch, hasWildcards, parseDockerignore } from '../src/context/index.js';

const goMatchTable: Array<[string, string, boolean | 'bad']> = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abe', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[x\\-]', '-', true],
  ['[', 'a', 'bad'],
  ['[^', 'a', 'bad'],
  ['[]a]', ']', 'bad'],
  ['[-]', '-', 'bad'],
  ['[x-]', 'x', 'bad'],
  ['a\\', 'a', 'bad'],
  ['*x', 'xxx', true],
];

for (const [pattern, name, want] of goMatchTable) {
  test(`goMatch(${JSON.stringify(pattern)}, ${JSON.stringify(name)}) is ${want}`, (t) => {
    if (want === 'bad') t.throws(() => goMatch(pattern, name), { code: 'E_BAD_PATTERN' } as never);
    else t.is(goMatch(pattern, name), want);
  });
}

test('hasWildcards: escaped wildcards do not count', (t) => {
  t.true(hasWildcards('a/*.txt'));
  t.true(hasWildcards('x[ab]'));
  t.false(hasWildcards('we\\*ird'));
  t.false(hasWildcards('plain/path'));
});

test('cleanPath works like Go path.Clean', (t) => {
  const rows: Array<[string, string]> = [
    ['', '.'],
    ['a/./b//c/', 'a/b/c'],
    ['/../x', '/x'],
    ['../x', '../x'],
    ['a/../../b', '../b'],
    ['/', '/'],
    ['./', '.'],
  ];
  for (const [i, o] of rows) t.is(cleanPath(i), o, i);
});

test('parseDockerignore: comments, blanks, whitespace, leading slash, exceptions', (t) => {
  const text = '\uFEFF# comment\n\n  *.log  \n/build/\n! keep.log\n  # not a comment once trimmed? (Docker: only a leading # is)\nsub//dir/../x\n';
  t.deepEqual(parseDockerignore(text), ['*.log', 'build', '!keep.log', '# not a comment once trimmed? (Docker: only a leading # is)', 'sub/x']);
});

// [patterns, path, ignored]
const ignoreTable: Array<[string[], string, boolean]> = [
  [['*.log'], 'a.log', true],
  [['*.log'], 'dir/a.log', false],
  [['**/*.log'], 'dir/sub/a.log', true],
  [['**/*.log'], 'a.log', true],
  [['dir'], 'dir/sub/file', true],
  [['dir/*'], 'dir/sub/file', true],
  [['dir/*'], 'dir', false],
  [['*', '!keep'], 'keep', false],
  [['*', '!keep'], 'other', true],
  [['*.md', '!README.md', 'README.md'], 'README.md', true],
  [['*.md', '!README*.md', 'README-secret.md'], 'README-x.md', false],
  [['*.md', '!README*.md', 'README-secret.md'], 'README-secret.md', true],
  [['node_modules'], 'node_modules', true],
  [['node_modules'], 'a/node_modules', false],
  [['**/node_modules'], 'a/b/node_modules/x/y', true],
  [['a/**/b'], 'a/b', true],
  [['a/**/b'], 'a/x/y/b', true],
  [['a/**'], 'a/x/y', true],
  [['a/**'], 'ab', false],
  [['a**'], 'abc/d', true], // "**" at the end is a plain prefix match in patternmatcher
  [['**'], 'anything/at/all', true],
  [['?.txt'], 'a.txt', true],
  [['?.txt'], 'ab.txt', false],
  [['[a-c].txt'], 'b.txt', true],
  [['[a-c].txt'], 'd.txt', false],
  [['a.txt'], 'aXtxt', false], // '.' is literal
  [['Dockerfile', '.dockerignore'], 'Dockerfile', true],
  [['.git'], '.git/HEAD', true],
  [['*'], '.', false], // the root is never excluded
  [['dir', '!dir/keep'], 'dir/keep', false],
  [['dir', '!dir/keep'], 'dir/other', true],
];

for (const [patterns, p, want] of ignoreTable) {
  test(`.dockerignore ${JSON.stringify(patterns)} ${want ? 'ignores' : 'keeps'} ${p}`, (t) => {
    t.is(compileIgnore(parseDockerignore(patterns.join('\n'))).matches(p), want);
  });
}

test('.dockerignore: a lone "!" is an error', (t) => {
  t.throws(() => compileIgnore(['!']), { code: 'E_DOCKERIGNORE_PATTERN' } as never);
});
