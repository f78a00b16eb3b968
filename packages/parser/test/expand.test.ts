import test from 'ava';
import { expandWord, expandWords, ExpansionError } from '../src/index.js';

const env: Record<string, string> = { A: 'val', E: '', F: '/opt/app/bin/run.sh', P: 'path/to/file.tar.gz', X: 'aXbXc', SP: 'a  b' };
const lookup = (n: string): string | undefined => (Object.prototype.hasOwnProperty.call(env, n) ? env[n] : undefined);

const rows: [string, string, ('\\' | '`')?][] = [
  ['$A', 'val'],
  ['${A}', 'val'],
  ['$A_suffix', ''],
  ['${A}_suffix', 'val_suffix'],
  ['$A.x', 'val.x'],
  ['$', '$'],
  ['a$', 'a$'],
  ['${U:-d}', 'd'],
  ['${E:-d}', 'd'],
  ['${E-d}', ''],
  ['${U-d}', 'd'],
  ['${A:-d}', 'val'],
  ['${U:-${A}-x}', 'val-x'],
  ['${U:+w}', ''],
  ['${E:+w}', ''],
  ['${E+w}', 'w'],
  ['${A:+w}', 'w'],
  ['${A:?msg}', 'val'],
  ['${E?msg}', ''],
  ['${P#*/}', 'to/file.tar.gz'],
  ['${P##*/}', 'file.tar.gz'],
  ['${P%.*}', 'path/to/file.tar'],
  ['${P%%.*}', 'path/to/file'],
  ['${F%/*}', '/opt/app/bin'],
  ['${X/X/-}', 'a-bXc'],
  ['${X//X/}', 'abc'],
  ['${X//?/z}', 'zzzzz'],
  ["'$A ${A}'", '$A ${A}'],
  ['"$A ${A}"', 'val val'],
  ['\\$A', '$A'],
  ['"\\$A"', '$A'],
  ['"a\\"b"', 'a"b'],
  ['"x\\\\y"', 'x\\y'],
  ['"tab\\tno"', 'tab\\tno'],
  ['plain\\ space', 'plain space'],
  ["\"it's\"", "it's"],
  ['C:\\dir', 'C:\\dir', '`'],
  ['a`$A', 'a$A', '`'],
  ['`"q`"', '"q"', '`'],
  ['end\\', 'end'],
];
for (const [input, want, escape] of rows) {
  test(`expandWord ${JSON.stringify(input)}${escape ? ` (escape ${escape})` : ''} → ${JSON.stringify(want)}`, (t) => {
    t.is(expandWord(input, lookup, escape ? { escape } : {}), want);
  });
}

const errors: [string, RegExp][] = [
  ['${U:?must be set}', /U: must be set/],
  ['${U?}', /U: is not allowed to be unset/],
  ['${E:?}', /E: is not allowed to be empty/],
  // Docker 20.10's words (checked against dockerd: oracle5/x-*)
  ['${A:=x}', /: unsupported modifier \(=\) in substitution$/],
  ['${A:1}', /: unsupported modifier \(1\) in substitution$/],
  ['${A', /: missing ':' in substitution$/],
  ['${A!b}', /: missing ':' in substitution$/],
  ['${#A}', /: missing ':' in substitution$/],
  ['${A:-x', /: syntax error: missing '}'$/],
  ['${', /: syntax error: missing '}'$/],
  ['${}', /bad substitution/],
  ['${:x}', /bad substitution/],
  ['"open', /double-quote/],
  ["'open", /single-quote/],
  ['${A/x', /missing '\/'/],
];
for (const [input, re] of errors) {
  test(`expandWord ${JSON.stringify(input)} throws ExpansionError`, (t) => {
    const err = t.throws(() => expandWord(input, lookup), { instanceOf: ExpansionError });
    t.regex(err!.message, re);
  });
}

test('expandWords: variable values split, quoted text does not', (t) => {
  t.deepEqual(expandWords('$SP "x y" z\\ w', lookup), ['a', 'b', 'x y', 'z w']);
  t.deepEqual(expandWords('8080 ${A}/udp', lookup), ['8080', 'val/udp']);
});

test('expansion errors quote the word as Go %q, as Docker 20.10 ("failed to process \\"\\\\\\"k\\"")', (t) => {
  t.throws(() => expandWord('"k', () => undefined), { message: 'failed to process "\\"k": unexpected end of statement while looking for matching double-quote' });
  t.throws(() => expandWords('a\\\t"b', () => undefined), { message: /^failed to process "a\\\\\\t\\"b": / });
  // dockerd 20.10 (h1/u6): LABEL a="<NBSP><ZWSP>é → failed to process "\"\u00a0\u200bé"
  t.throws(() => expandWord('"\u00a0\u200bé', () => undefined), { message: /^failed to process "\\"\\u00a0\\u200bé": / });
});
