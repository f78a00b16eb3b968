import test from 'ava';
import { parseArgs, flagBool, flagList, flagString, UsageError, type FlagSpec } from '../src/args.js';
import { defaultRoot } from '../src/context.js';

const specs: FlagSpec[] = [
  { name: 'tag', short: 't', type: 'string', multiple: true },
  { name: 'file', short: 'f', type: 'string' },
  { name: 'quiet', short: 'q', type: 'boolean' },
  { name: 'no-cache', type: 'boolean' },
  { name: 'build-arg', type: 'string', multiple: true },
];

const rows: [string[], Record<string, string[]>, string[]][] = [
  [['-t', 'a', '.'], { tag: ['a'] }, ['.']],
  [['-ta:1', '.'], { tag: ['a:1'] }, ['.']],
  [['-t=a', '.'], { tag: ['a'] }, ['.']],
  [['--tag', 'a', '--tag=b', 'ctx'], { tag: ['a', 'b'] }, ['ctx']],
  [['-q', '-f', 'D', '-'], { quiet: ['true'], file: ['D'] }, ['-']],
  [['-qt', 'x', '.'], { quiet: ['true'], tag: ['x'] }, ['.']],
  [['--no-cache=false', '.'], { 'no-cache': ['false'] }, ['.']],
  [['--build-arg', 'A=1', '--build-arg', 'B', '.'], { 'build-arg': ['A=1', 'B'] }, ['.']],
  [['-f', 'a', '-f', 'b', '.'], { file: ['b'] }, ['.']],
  [['--', '-t', 'x'], {}, ['-t', 'x']],
  [['-q=false', '.'], { quiet: ['false'] }, ['.']],
  [['-q=true', '-t', 'x'], { quiet: ['true'], tag: ['x'] }, []],
];

for (const [argv, flags, positionals] of rows) {
  test(`parseArgs: ${argv.join(' ')}`, (t) => {
    const got = parseArgs(argv, specs);
    t.deepEqual(Object.fromEntries(got.flags), flags);
    t.deepEqual(got.positionals, positionals);
  });
}

const bad: [string[], RegExp][] = [
  [['--nope', '.'], /unknown flag: --nope/],
  [['-x', '.'], /unknown shorthand flag: 'x'/],
  [['-t'], /flag needs an argument/],
  [['--file'], /flag needs an argument: --file/],
];
for (const [argv, message] of bad) {
  test(`parseArgs rejects: ${argv.join(' ')}`, (t) => {
    const err = t.throws(() => parseArgs(argv, specs), { instanceOf: UsageError });
    t.regex(err?.message ?? '', message);
  });
}

test('flag helpers: last value wins, lists keep order, booleans parse', (t) => {
  const a = parseArgs(['-q', '-t', 'a', '-t', 'b', '--no-cache=0'], specs);
  t.true(flagBool(a, 'quiet'));
  t.false(flagBool(a, 'no-cache'));
  t.deepEqual(flagList(a, 'tag'), ['a', 'b']);
  t.is(flagString(a, 'tag'), 'b');
  t.is(flagString(a, 'file'), undefined);
  t.throws(() => flagBool(parseArgs(['--no-cache=maybe'], specs), 'no-cache'), { instanceOf: UsageError });
});

test('defaultRoot: TSBUILD_ROOT, then root default, then XDG_DATA_HOME', (t) => {
  t.is(defaultRoot({ TSBUILD_ROOT: '/x' }, 0), '/x');
  t.is(defaultRoot({}, 0), '/var/lib/tsbuild');
  t.is(defaultRoot({ XDG_DATA_HOME: '/home/u/.data' }, 1000), '/home/u/.data/tsbuild');
  t.is(defaultRoot({ HOME: '/home/u' }, 1000), '/home/u/.local/share/tsbuild');
});
