/**
 * Byte order of UTF-8 encodings: the order of tar entries, JSON keys and directory listings that
 * Go (and so Docker) sorts by. It is code point order, which JavaScript's comparison of UTF-16
 * code units matches unless a surrogate pair is involved (a code point above U+FFFF sorts after
 * U+E000–U+FFFF in UTF-8, before them in UTF-16).
 */

const SURROGATE = /[\ud800-\udfff]/;

/** Compares the UTF-8 encodings of `a` and `b` byte by byte (a sort comparator). */
export function compareUtf8(a: string, b: string): number {
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts `names` in place by their UTF-8 bytes and returns it. One check per name instead of two
 * per comparison: a directory listing sorts with the default comparator unless a name needs bytes.
 */
export function sortUtf8<T extends string>(names: T[]): T[] {
  if (!names.some((n) => SURROGATE.test(n))) return names.sort();
  const keyed = names.map((n) => [Buffer.from(n), n] as const);
  keyed.sort((x, y) => Buffer.compare(x[0], y[0]));
  for (let i = 0; i < keyed.length; i++) names[i] = keyed[i]![1];
  return names;
}
