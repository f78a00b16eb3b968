import test from 'ava';
import { compareUtf8, sortUtf8 } from '../src/order.js';

/** Reference: the UTF-8 bytes compared as Go's sort.Strings does. */
const bytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

const cases: Array<[string, string[]]> = [
  ['ASCII', ['b', 'a', 'B', 'a.txt', 'a-b', 'a_b', '10', '9']],
  ['Latin-1 and BMP', ['é', 'e', 'z', 'ü', '中', 'Z']],
  // U+FF01 sorts before U+1F600 in UTF-8 (EF BC 81 < F0 9F 98 80), after it in UTF-16 code units (FF01 > D83D)
  ['astral against U+E000–U+FFFF', ['\u{1F600}', '\uFF01', '\uE000', 'a', '\u{10000}', '\uFFFD']],
  ['prefixes', ['ab', 'a', 'abc', '', 'a\u{1F600}', 'a\uFF01']],
];

for (const [name, names] of cases) {
  test(`sortUtf8 and compareUtf8 give byte order: ${name}`, (t) => {
    const want = [...names].sort(bytes);
    t.deepEqual(sortUtf8([...names]), want);
    t.deepEqual([...names].sort(compareUtf8), want);
  });
}

test('the astral case differs from JavaScript default order (the test can fail)', (t) => {
  const names = ['\u{1F600}', '\uFF01'];
  t.notDeepEqual([...names].sort(), [...names].sort(bytes));
  t.deepEqual(sortUtf8([...names]), ['\uFF01', '\u{1F600}']);
});
