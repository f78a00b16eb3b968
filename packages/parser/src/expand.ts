/**
 * Variable expansion and word splitting with the rules of Docker's ShellLex
 * (moby/buildkit frontend/dockerfile/shell/lex.go): `$a`, `${a}`, `${a:-w}`, `${a-w}`,
 * `${a:+w}`, `${a+w}`, `${a:?m}`, `${a?m}`, `${a#p}`, `${a##p}`, `${a%p}`, `${a%%p}`,
 * `${a/p/r}`, `${a//p/r}`, single and double quotes, and the escape character.
 */
import { ExpansionError } from './errors.js';

/** Returns a variable's value, or undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

/** Options of {@link expandWord} / {@link expandWords}. */
export interface ExpandOptions {
  /** The escape character (parser directive); default `\`. */
  readonly escape?: '\\' | '`';
  /** Keep quote characters in the result (used to detect quoted heredoc delimiters). */
  readonly rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  readonly rawEscapes?: boolean;
  /** Leave references to unset variables as written. */
  readonly skipUnset?: boolean;
  /** Treat quotes as ordinary characters (heredoc bodies of COPY/ADD). */
  readonly skipQuotes?: boolean;
}

const EOF = -1;

/**
 * Deepest `${…${…}…}` nesting expanded. Go's growable stack lets Docker go deeper; a JS
 * stack overflows near 2,000 levels, so beyond this an ExpansionError is thrown instead
 * of a RangeError. Real Dockerfiles nest a handful of levels.
 */
const MAX_NESTING = 256;

/** Go's unicode.IsSpace. */
export function isGoSpace(cp: number): boolean {
  return (
    cp === 0x20 ||
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;

/** Accumulates the split words (ProcessWords) next to the plain result. */
class WordSplitter {
  readonly words: string[] = [];
  private word = '';
  private inWord = false;

  addChar(cp: number): void {
    if (isGoSpace(cp)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(cp);
    }
  }
  addRawChar(cp: number): void {
    this.word += String.fromCodePoint(cp);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0)!);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

/** One pass over one word; mirrors ShellLex's shellWord. */
class ShellWord {
  private pos = 0;
  /** How many `${` the scanner is inside. */
  private depth = 0;
  private rawEscapes: boolean;
  private readonly escape: number;

  constructor(
    private readonly src: string,
    private readonly lookup: Lookup,
    private readonly opts: ExpandOptions,
    private readonly wantWords: boolean,
  ) {
    this.escape = (opts.escape ?? '\\').codePointAt(0)!;
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  private peek(): number {
    return this.pos < this.src.length ? this.src.codePointAt(this.pos)! : EOF;
  }
  private next(): number {
    if (this.pos >= this.src.length) return EOF;
    const cp = this.src.codePointAt(this.pos)!;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  run(): { result: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private processStopOn(stop: number, rawEscapes: boolean): { result: string; words: string[] } {
    const parts: string[] = [];
    // Only expandWords needs the split words; expandWord skips building them.
    const words = this.wantWords ? new WordSplitter() : undefined;
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        let ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return { result: parts.join(''), words: words?.finish() ?? [] };
        }
        if (ch === 0x24 /* $ */) {
          const tmp = this.processDollar();
          parts.push(tmp);
          words?.addString(tmp);
        } else if (ch === 0x27 /* ' */ && !this.opts.skipQuotes) {
          const tmp = this.processSingleQuote();
          parts.push(tmp);
          words?.addRawString(tmp);
        } else if (ch === 0x22 /* " */ && !this.opts.skipQuotes) {
          const tmp = this.processDoubleQuote();
          parts.push(tmp);
          words?.addRawString(tmp);
        } else if (!this.wantWords && ch !== this.escape) {
          // Fast path: a run of ordinary characters is copied as one slice.
          const start = this.pos;
          let p = this.pos;
          const src = this.src;
          while (p < src.length) {
            const c = src.charCodeAt(p);
            if (c === 0x24 || c === this.escape || c === stop || ((c === 0x27 || c === 0x22) && !this.opts.skipQuotes)) break;
            p++;
          }
          this.pos = p;
          parts.push(src.slice(start, p));
        } else {
          ch = this.next();
          if (ch === this.escape) {
            if (this.rawEscapes) {
              words?.addRawChar(ch);
              parts.push(String.fromCodePoint(ch));
            }
            ch = this.next();
            if (ch === EOF) break;
            words?.addRawChar(ch);
          } else {
            words?.addChar(ch);
          }
          parts.push(String.fromCodePoint(ch));
        }
      }
      if (stop !== EOF) {
        throw new ExpansionError(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
      }
      return { result: parts.join(''), words: words?.finish() ?? [] };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    const parts: string[] = [];
    this.next();
    if (this.opts.rawQuotes) parts.push("'");
    const close = this.src.indexOf("'", this.pos);
    if (close < 0) {
      this.pos = this.src.length;
      throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
    }
    parts.push(this.src.slice(this.pos, close));
    this.pos = close + 1;
    if (this.opts.rawQuotes) parts.push("'");
    return parts.join('');
  }

  private processDoubleQuote(): string {
    const parts: string[] = [];
    this.next();
    if (this.opts.rawQuotes) parts.push('"');
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        this.next();
        if (this.opts.rawQuotes) parts.push('"');
        return parts.join('');
      }
      if (p === 0x24) {
        parts.push(this.processDollar());
        continue;
      }
      if (p !== this.escape) {
        const start = this.pos;
        let q = this.pos;
        const src = this.src;
        while (q < src.length) {
          const c = src.charCodeAt(q);
          if (c === 0x22 || c === 0x24 || c === this.escape) break;
          q++;
        }
        this.pos = q;
        parts.push(src.slice(start, q));
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) parts.push(String.fromCodePoint(ch));
        const n = this.peek();
        if (n === EOF) continue;
        if (n === 0x22 || n === 0x24 || n === this.escape) ch = this.next();
      }
      parts.push(String.fromCodePoint(ch));
    }
  }

  private processDollar(): string {
    if (this.depth >= MAX_NESTING) {
      throw new ExpansionError(`variable substitutions nested more than ${MAX_NESTING} deep`);
    }
    this.depth++;
    try {
      return this.processDollarBody();
    } finally {
      this.depth--;
    }
  }

  private processDollarBody(): string {
    this.next();
    if (this.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnset) return '$' + name;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (first === 0x7b || first === 0x7d || first === 0x3a) throw new ExpansionError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch === EOF ? '' : String.fromCodePoint(ch);
    let nullIsUnset = false;
    if (ch === 0x7d /* } */) {
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === 0x3a /* : */) {
      nullIsUnset = true;
      ch = this.next();
      chs += ch === EOF ? '' : String.fromCodePoint(ch);
    } else if (ch === 0x2f /* / */) {
      return this.processReplace(name);
    } else if (!(ch === 0x2b || ch === 0x2d || ch === 0x3f || ch === 0x23 || ch === 0x25)) {
      // Docker 20.10's lexer: a name followed by anything else, or by the end (${A), is this
      throw new ExpansionError("missing ':' in substitution");
    }
    const raw = ch === 0x23 || ch === 0x25;
    let word: string;
    try {
      word = this.processStopOn(0x7d, raw).result;
    } catch (err) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }
    const value = this.lookup(name);
    const set = value !== undefined;
    if (this.opts.skipUnset && !set) return `\${${name}${chs}${word}}`;
    const v = value ?? '';
    switch (ch) {
      case 0x2d: // -
        return !set || (nullIsUnset && v === '') ? word : v;
      case 0x2b: // +
        return !set || (nullIsUnset && v === '') ? '' : word;
      case 0x3f: // ?
        if (!set) throw new ExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && v === '') throw new ExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return v;
      case 0x23: // #
      case 0x25: {
        // %
        let greedy = false;
        if (word.length > 0 && word.codePointAt(0) === ch) {
          greedy = true;
          word = word.slice(1);
        }
        return ch === 0x25 ? trimSuffix(word, v, greedy) : trimPrefix(word, v, greedy);
      }
      default:
        // Docker 20.10 names the character after the ':' (`${A:1}` → "(1)")
        throw new ExpansionError(`unsupported modifier (${String.fromCodePoint(ch)}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const all = this.peek() === 0x2f;
    if (all) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn(0x2f, true).result;
    } catch (err) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '/' in ${}");
      throw err;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn(0x7d, true).result;
    } catch (err) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }
    const value = this.lookup(name);
    if (this.opts.skipUnset && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPatternToRegExp(pattern, true, false);
    return all ? replaceAllGo(re, value ?? '', replacement) : replaceFirst(re, value ?? '', replacement);
  }

  private processName(): string {
    const start = this.pos;
    let first = true;
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (first && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) this.next();
        return this.src.slice(start, this.pos);
      }
      if (first && isSpecialParam(ch)) {
        this.next();
        return String.fromCodePoint(ch);
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      this.next();
      first = false;
    }
    return this.src.slice(start, this.pos);
  }
}

/** Go's unicode.IsLetter; ASCII without building a string. */
function isLetter(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  return LETTER.test(String.fromCodePoint(cp));
}

/** Go's unicode.IsDigit; ASCII without building a string. */
function isDigit(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x30 && cp <= 0x39;
  return DIGIT.test(String.fromCodePoint(cp));
}

function isSpecialParam(ch: number): boolean {
  // @ * # ? - $ ! 0
  return ch === 0x40 || ch === 0x2a || ch === 0x23 || ch === 0x3f || ch === 0x2d || ch === 0x24 || ch === 0x21 || ch === 0x30;
}

/**
 * Converts a shell pattern (`*`, `?`, `\` escapes; no bracket expressions) to a RegExp,
 * like ShellLex's convertShellPatternToRegex. Throws ExpansionError on a bad escape.
 */
function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  const cps = Array.from(pattern);
  for (let i = 0; i < cps.length; i++) {
    const tok = cps[i]!;
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += '.';
        continue;
      case '\\': {
        const n = cps[i + 1];
        if (n === '}' || n === '/') continue;
        i++;
        if (n !== '*' && n !== '?' && n !== '\\') {
          throw new ExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
        }
        out += '\\' + n;
        continue;
      }
      case '[': case ']': case '{': case '}': case '.': case '+': case '(': case ')': case '|': case '^': case '$':
        out += '\\' + tok;
        continue;
      default:
        out += tok;
    }
  }
  return new RegExp(out, 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegExp(pattern, greedy, true);
  re.lastIndex = 0;
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

function reversePattern(pattern: string): string {
  const cps = Array.from(pattern);
  const out: string[] = new Array<string>(cps.length);
  const last = cps.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = cps[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = cps[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

function replaceFirst(re: RegExp, value: string, replacement: string): string {
  re.lastIndex = 0;
  const m = re.exec(value);
  if (!m) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}

/** Go's Regexp.ReplaceAllString semantics: empty matches right after a match are skipped. */
function replaceAllGo(re: RegExp, value: string, replacement: string): string {
  const out: string[] = [];
  let last = 0;
  let prevEnd = -1;
  re.lastIndex = 0;
  while (re.lastIndex <= value.length) {
    const m = re.exec(value);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    if (end === start) {
      const cp = value.codePointAt(start);
      re.lastIndex = start + (cp !== undefined && cp > 0xffff ? 2 : 1);
      if (start === prevEnd) continue;
    }
    out.push(value.slice(last, start), replacement);
    last = end;
    prevEnd = end;
  }
  out.push(value.slice(last));
  return out.join('');
}

/**
 * Whether expansion would return `word` unchanged: no `$`, no escape character and (unless
 * quotes are ordinary characters) no quotes. Most words in a Dockerfile are like this.
 */
function isLiteral(word: string, opts: ExpandOptions): boolean {
  const escape = opts.escape === '`' ? 0x60 : 0x5c;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c === 0x24 || c === escape || ((c === 0x27 || c === 0x22) && !opts.skipQuotes)) return false;
  }
  return true;
}

/**
 * Go's %q of a string (strconv.Quote): named escapes, `\\xHH` for ASCII controls, and `\\uHHHH` /
 * `\\UHHHHHHHH` for what unicode.IsPrint refuses (U+00A0, U+200B…; checked against dockerd, h1/u6).
 */
function goQuote(s: string): string {
  const named: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '"': '\\"', '\\': '\\\\' };
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/[\x00-\x1f\x7f"\\]|[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu, (c) => {
    const cp = c.codePointAt(0) as number;
    if (named[c] !== undefined) return named[c];
    if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, '0')}`;
    if (cp >= 0xd800 && cp <= 0xdfff) return '\\ufffd';
    return cp < 0x10000 ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`;
  })}"`;
}

/**
 * Expands one word as Docker does for ENV, LABEL, WORKDIR, USER, COPY … (quotes removed,
 * escapes applied, variables substituted). Throws {@link ExpansionError} on bad syntax
 * or `${a:?msg}` with `a` unset/empty.
 */
export function expandWord(word: string, lookup: Lookup, opts: ExpandOptions = {}): string {
  if (isLiteral(word, opts)) return word;
  try {
    return new ShellWord(word, lookup, opts, false).run().result;
  } catch (err) {
    if (err instanceof ExpansionError) throw new ExpansionError(`failed to process ${goQuote(word)}: ${err.message}`);
    throw err;
  }
}

/**
 * Expands and splits a word into words (EXPOSE, heredoc detection): whitespace from
 * variable values splits; quoted or escaped whitespace does not. Throws {@link ExpansionError}.
 */
export function expandWords(word: string, lookup: Lookup, opts: ExpandOptions = {}): string[] {
  try {
    return new ShellWord(word, lookup, opts, true).run().words;
  } catch (err) {
    if (err instanceof ExpansionError) throw new ExpansionError(`failed to process ${goQuote(word)}: ${err.message}`);
    throw err;
  }
}
