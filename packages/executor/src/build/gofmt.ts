/**
 * The few pieces of Go's `fmt` formatting that Docker's classic builder puts into history
 * `created_by` strings (`CMD %q`, `VOLUME %v`, `HEALTHCHECK %q`). Pure functions.
 */

/** Go's `strconv.Quote`: double-quoted, with Go escapes for control and non-printable characters (see escapeRune). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
    }
    out += escapeRune(ch, cp);
  }
  return out + '"';
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/**
 * A rune as strconv.Quote writes it (appendEscapedRune, `"`, `\\` and the named escapes aside):
 * `\xHH` for ASCII controls, itself when printable, else `\uHHHH` or `\UHHHHHHHH` (U+00A0, U+200B,
 * U+FEFF, U+2028, U+3000, unassigned code points…; checked against dockerd's CMD history, h1/u1, u5).
 */
function escapeRune(ch: string, cp: number): string {
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (GO_PRINTABLE.test(ch)) return ch;
  // a lone surrogate (from JSON "\\ud800") is U+FFFD to Go's decoder, and that is printable
  if (cp >= 0xd800 && cp <= 0xdfff) return '\ufffd';
  return cp < 0x10000 ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`;
}

/** Go's `%q` of a `[]string`: `["a" "b"]`. */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map(goQuote).join(' ')}]`;
}

/** Go's `%v` of a `[]string`: `[a b]`. */
export function goList(list: readonly string[]): string {
  return `[${list.join(' ')}]`;
}

/** Go's `%q` of an int (formatted as a rune literal, as Docker's HEALTHCHECK history shows `'\x03'`). */
export function goQuoteRune(n: number): string {
  if (n === 0x27) return "'\\''";
  if (n === 0x5c) return "'\\\\'";
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };
  if (named[n] !== undefined) return `'${named[n]}'`;
  // fmt's %q of an integer beyond utf8.MaxRune, and QuoteRune of a surrogate, write U+FFFD
  if (n < 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return "'\ufffd'";
  return `'${escapeRune(String.fromCodePoint(n), n)}'`;
}

/** Go's `time.Duration.String()` for a duration in nanoseconds: `0s`, `1.5s`, `1m30s`, `500ms`. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = BigInt(Math.abs(ns));
  const sign = neg ? '-' : '';
  if (u < 1_000_000_000n) {
    // sub-second: ns, µs or ms with a fraction
    const [unit, div] = u < 1000n ? ['ns', 1n] : u < 1_000_000n ? ['µs', 1000n] : ['ms', 1_000_000n];
    return sign + fraction(u, div as bigint) + unit;
  }
  const h = u / 3_600_000_000_000n;
  u -= h * 3_600_000_000_000n;
  const m = u / 60_000_000_000n;
  u -= m * 60_000_000_000n;
  const secs = fraction(u, 1_000_000_000n) + 's';
  if (h > 0n) return `${sign}${h}h${m}m${secs}`;
  if (m > 0n) return `${sign}${m}m${secs}`;
  return sign + secs;
}

function fraction(v: bigint, div: bigint): string {
  const whole = v / div;
  const rest = v % div;
  if (rest === 0n) return whole.toString();
  const digits = div.toString().length - 1;
  return `${whole}.${rest.toString().padStart(digits, '0').replace(/0+$/, '')}`;
}
