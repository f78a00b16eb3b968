/**
 * Go's `path/filepath.Match` (Unix flavour), the syntax of COPY/ADD source wildcards:
 * `*` any run of non-`/` characters, `?` one non-`/` character, `[…]` a class (`^` negates,
 * ranges `a-z`), `\` escapes the next character.
 * https://pkg.go.dev/path/filepath#Match
 */

/** A malformed wildcard pattern (Go's `filepath.ErrBadPattern`). */
export class BadPatternError extends Error {
  readonly code = 'E_BAD_PATTERN';
  constructor(readonly pattern: string) {
    super(`syntax error in pattern: ${pattern}`);
    this.name = 'BadPatternError';
  }
}

/** True when `p` holds an unescaped `*`, `?` or `[` (Docker's `containsWildcards`). */
export function hasWildcards(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** Removes the escaping backslashes of a pattern without wildcards (`a\\b` → `ab`). */
export function unescapePattern(p: string): string {
  return p.replace(/\\(.)/gs, '$1');
}

/**
 * Reports whether `name` matches the shell pattern `pattern`, with Go's semantics.
 * @throws BadPatternError when the pattern is malformed (Go returns ErrBadPattern).
 */
export function goMatch(pattern: string, name: string): boolean {
  const pat = [...pattern];
  const str = [...name];
  const r = matchFrom(pat, 0, str, 0);
  if (r === 'bad') throw new BadPatternError(pattern);
  // Go checks the rest of the pattern for syntax errors even after a mismatch.
  if (!r) validatePattern(pattern);
  return r;
}

/** @throws BadPatternError when `pattern` is malformed. */
export function validatePattern(pattern: string): void {
  const pat = [...pattern];
  for (let i = 0; i < pat.length; i++) {
    if (pat[i] === '\\') {
      if (i + 1 >= pat.length) throw new BadPatternError(pattern);
      i++;
    } else if (pat[i] === '[') {
      const end = classEnd(pat, i);
      if (end < 0) throw new BadPatternError(pattern);
      i = end;
    }
  }
}

/** Go's getEsc: the class character at `j` and the index after it, or null when malformed. */
function getEsc(pat: string[], j: number): { ch: string; next: number } | null {
  if (j >= pat.length || pat[j] === '-' || pat[j] === ']') return null;
  if (pat[j] === '\\') {
    j++;
    if (j >= pat.length) return null;
  }
  return { ch: pat[j]!, next: j + 1 };
}

/** Parses the class opened at `i`: its closing index and its ranges, or null when malformed. */
function parseClass(pat: string[], i: number): { end: number; negated: boolean; ranges: Array<[number, number]> } | null {
  let j = i + 1;
  const negated = pat[j] === '^';
  if (negated) j++;
  const ranges: Array<[number, number]> = [];
  for (;;) {
    if (pat[j] === ']' && ranges.length > 0) return { end: j, negated, ranges };
    const lo = getEsc(pat, j);
    if (!lo) return null;
    j = lo.next;
    let hi = lo;
    if (pat[j] === '-') {
      const h = getEsc(pat, j + 1);
      if (!h) return null;
      hi = h;
      j = h.next;
    }
    ranges.push([lo.ch.codePointAt(0)!, hi.ch.codePointAt(0)!]);
  }
}

function classEnd(pat: string[], i: number): number {
  return parseClass(pat, i)?.end ?? -1;
}

function matchClass(pat: string[], i: number, c: string): { end: number; ok: boolean } | 'bad' {
  const cls = parseClass(pat, i);
  if (!cls) return 'bad';
  const code = c.codePointAt(0)!;
  const matched = cls.ranges.some(([lo, hi]) => lo <= code && code <= hi);
  return { end: cls.end, ok: matched !== cls.negated };
}

function matchFrom(pat: string[], pi: number, str: string[], si: number): boolean | 'bad' {
  while (pi < pat.length) {
    const p = pat[pi]!;
    if (p === '*') {
      while (pat[pi] === '*') pi++;
      if (pi === pat.length) return !str.slice(si).includes('/');
      for (let k = si; k <= str.length; k++) {
        const r = matchFrom(pat, pi, str, k);
        if (r === 'bad' || r) return r;
        if (str[k] === '/') break;
      }
      return false;
    }
    if (si >= str.length) {
      // Go still reports a malformed rest of the pattern.
      return hasBadRest(pat, pi) ? 'bad' : false;
    }
    const c = str[si]!;
    if (p === '?') {
      if (c === '/') return false;
      pi++;
      si++;
    } else if (p === '[') {
      if (c === '/') return hasBadRest(pat, pi) ? 'bad' : false;
      const r = matchClass(pat, pi, c);
      if (r === 'bad') return 'bad';
      if (!r.ok) return false;
      pi = r.end + 1;
      si++;
    } else if (p === '\\') {
      if (pi + 1 >= pat.length) return 'bad';
      if (pat[pi + 1] !== c) return false;
      pi += 2;
      si++;
    } else {
      if (p !== c) return false;
      pi++;
      si++;
    }
  }
  return si === str.length;
}

function hasBadRest(pat: string[], pi: number): boolean {
  try {
    validatePattern(pat.slice(pi).join(''));
    return false;
  } catch {
    return true;
  }
}
