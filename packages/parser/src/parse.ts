/**
 * Dockerfile text → typed model, following Docker's parser (moby/buildkit
 * frontend/dockerfile/parser + instructions) rule for rule: directives, continuation
 * lines, comments, exec/shell forms, heredocs, flags, and per-instruction validation.
 */
import { DockerfileError, DockerfileParseError, ExpansionError, type DockerfileErrorCode } from './errors.js';
import { expandWords, isGoSpace } from './expand.js';
import type {
  ArgInstruction,
  Directives,
  Dockerfile,
  Flag,
  FromInstruction,
  Heredoc,
  Instruction,
  InstructionKind,
  KeyValue,
  ParseOptions,
  RunMount,
  SourceRange,
  Stage,
  Warning,
} from './types.js';
import {
  isValidStageName,
  MINIMUM_HEALTHCHECK_DURATION_NS,
  parseDuration,
  parseGoBool,
  parseMount,
  ValueError,
} from './validate.js';

const KINDS: readonly InstructionKind[] = [
  'FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'COPY', 'ADD', 'ENV', 'ARG', 'WORKDIR', 'USER', 'EXPOSE', 'VOLUME',
  'LABEL', 'SHELL', 'HEALTHCHECK', 'STOPSIGNAL', 'ONBUILD', 'MAINTAINER',
];
const KIND_SET = new Set<string>(KINDS);

/** A problem found while parsing; phase orders them the way Docker meets them. */
interface Problem {
  readonly phase: number;
  readonly error: DockerfileError;
}

/** Maps offsets of a joined logical line back to file positions. */
interface Segment {
  readonly off: number;
  readonly line: number;
  readonly col: number;
}

class LineMap {
  constructor(readonly segs: readonly Segment[]) {}
  at(off: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segs[mid]!.off <= off) lo = mid;
      else hi = mid - 1;
    }
    const s = this.segs[lo]!;
    return { line: s.line, column: s.col + (off - s.off) };
  }
}

interface RawFlag {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** Docker's AST node: the line split into keyword, flags and arguments. */
interface Node {
  readonly cmd: string;
  readonly keyword: string;
  readonly keywordOff: number;
  readonly flags: readonly RawFlag[];
  readonly args: readonly string[];
  readonly json: boolean;
  /** `rest` after flags was empty. */
  readonly noArgs: boolean;
  readonly original: string;
  readonly child: Node | undefined;
  heredocs: Heredoc[];
}

class AstError extends Error {}

const TOKEN_WS = /[\t\v\f\r ]+/;

function goTrimLeft(s: string): string {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}
function goTrimRight(s: string): string {
  let i = s.length;
  while (i > 0 && isGoSpace(s.charCodeAt(i - 1))) i--;
  return i === s.length ? s : s.slice(0, i);
}
function goTrim(s: string): string {
  return goTrimRight(goTrimLeft(s));
}
function leadingSpace(s: string): number {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return i;
}
function trimNewline(s: string): string {
  let i = s.length;
  while (i > 0 && (s[i - 1] === '\n' || s[i - 1] === '\r')) i--;
  return s.slice(0, i);
}
function isComment(s: string): boolean {
  const t = goTrimLeft(s);
  return t.length > 0 && t[0] === '#';
}

/** Docker's continuation rule: `([^E])E[ \t]*$|^E[ \t]*$` → strip the escape and the blanks after it. */
function trimContinuation(line: string, escape: string): { text: string; continued: boolean } {
  let i = line.length;
  while (i > 0 && (line[i - 1] === ' ' || line[i - 1] === '\t')) i--;
  if (i === 0 || line[i - 1] !== escape) return { text: line, continued: false };
  if (i >= 2 && line[i - 2] === escape) return { text: line, continued: false };
  return { text: line.slice(0, i - 1), continued: true };
}

/** Splits keeping line endings (Docker's scanLines). */
function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/** Docker's extractBuilderFlags (20.10): leading `--words`, quotes and `\` processed. */
function extractFlags(line: string, base: number): { rest: string; restOff: number; flags: RawFlag[] } {
  const flags: RawFlag[] = [];
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let wordStart = 0;
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === IN_SPACES) {
      if (pos === line.length) break;
      if (isGoSpace(ch.charCodeAt(0))) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') {
        return { rest: line.slice(pos), restOff: base + pos, flags };
      }
      phase = IN_WORD;
      wordStart = pos;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push({ text: word, start: base + wordStart, end: base + pos });
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch.charCodeAt(0))) {
        phase = IN_SPACES;
        if (word === '--') return { rest: line.slice(pos), restOff: base + pos, flags };
        if (blankOK || word.length > 0) flags.push({ text: word, start: base + wordStart, end: base + pos });
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    // IN_QUOTE
    if (ch === quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return { rest: '', restOff: base + line.length, flags };
}

/**
 * Docker's parseWords: split on blanks, keeping quotes and escapes in the words. Words are
 * slices of the input (only a trailing escape at the very end is dropped), so this is linear.
 */
function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const n = rest.length;
  const esc = escape.charCodeAt(0);
  let pos = 0;
  while (pos < n) {
    while (pos < n && isGoSpace(rest.charCodeAt(pos))) pos++;
    if (pos >= n) break;
    const start = pos;
    let end = -1;
    let quote = 0;
    while (pos < n) {
      const c = rest.charCodeAt(pos);
      if (quote === 0) {
        if (isGoSpace(c)) break;
        if (c === 0x27 || c === 0x22) quote = c;
        else if (c === esc) {
          if (pos + 1 === n) {
            end = pos;
            pos++;
            break;
          }
          pos++;
        }
      } else if (c === quote) quote = 0;
      else if (c === esc && quote !== 0x27) {
        if (pos + 1 === n) {
          end = pos;
          pos++;
          break;
        }
        pos++;
      }
      pos++;
    }
    const word = rest.slice(start, end >= 0 ? end : pos);
    if (word.length > 0) words.push(word);
  }
  return words;
}

type JsonResult = { kind: 'ok'; values: string[] } | { kind: 'notStrings' } | { kind: 'invalid' };

/**
 * Docker's parseJSON: after leading blanks, a JSON array decoded like Go's json.Decoder
 * (text after the first value is ignored). Non-string elements are an error, not shell form.
 */
export function parseJsonArray(input: string): JsonResult {
  const s = goTrimLeft(input);
  if (!s.startsWith('[')) return { kind: 'invalid' };
  let i = 0;
  let allStrings = true;
  const ws = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  const fail = (): never => {
    throw new SyntaxError('json');
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= s.length) fail();
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        const e = s[i + 1];
        i += 2;
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            const hex = s.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail();
            let cp = parseInt(hex, 16);
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
              const m = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(s.slice(i, i + 6));
              if (m) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (parseInt(m[1]!, 16) - 0xdc00);
                i += 6;
              } else cp = 0xfffd;
            } else if (cp >= 0xdc00 && cp < 0xe000) cp = 0xfffd;
            out += String.fromCodePoint(cp);
            break;
          }
          default:
            fail();
        }
        continue;
      }
      const j = i;
      while (i < s.length) {
        const d = s.charCodeAt(i);
        if (d === 0x22 || d === 0x5c || d < 0x20) break;
        i++;
      }
      out += s.slice(j, i);
    }
  };
  const value = (depth: number): unknown => {
    ws();
    if (depth > 10000) fail();
    const c = s[i];
    if (c === '"') return str();
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (s[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === ']') {
          i++;
          return arr;
        }
        fail();
      }
    }
    if (c === '{') {
      i++;
      ws();
      if (s[i] === '}') {
        i++;
        return {};
      }
      for (;;) {
        ws();
        if (s[i] !== '"') fail();
        str();
        ws();
        if (s[i] !== ':') fail();
        i++;
        value(depth + 1);
        ws();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === '}') {
          i++;
          return {};
        }
        fail();
      }
    }
    const m = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/.exec(s.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
    return m![0] === 'null' ? null : 0;
  };
  try {
    i = 0;
    const arr = value(0) as unknown[];
    const out: string[] = [];
    for (const v of arr) {
      if (typeof v !== 'string') allStrings = false;
      else out.push(v);
    }
    return allStrings ? { kind: 'ok', values: out } : { kind: 'notStrings' };
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof RangeError) return { kind: 'invalid' };
    throw err;
  }
}

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

/**
 * Deepest `ONBUILD ONBUILD …` chain parsed. Docker's parser recurses without limit and
 * then rejects any chain; stopping here keeps a long chain from overflowing the stack.
 */
const MAX_ONBUILD_CHAIN = 64;

/** Builds the AST node for one logical line (Docker's newNodeFromLine). Throws AstError. */
function nodeFromLine(line: string, escape: string, base: number, depth = 0): Node {
  const lead = leadingSpace(line);
  const trimmed = goTrim(line);
  const m = TOKEN_WS.exec(trimmed);
  const keyword = m ? trimmed.slice(0, m.index) : trimmed;
  const cmd = keyword.toLowerCase();
  let flags: RawFlag[] = [];
  let rest = '';
  if (m) {
    const afterOff = lead + m.index + m[0].length;
    const ex = extractFlags(trimmed.slice(m.index + m[0].length), base + afterOff);
    flags = ex.flags;
    rest = goTrim(ex.rest);
  }
  let args: string[] = [];
  let exec: string[] | undefined;
  let child: Node | undefined;
  switch (cmd) {
    case 'add':
    case 'copy':
    case 'volume': {
      exec = execFormWords(rest);
      args = exec ?? whitespaceList(rest);
      break;
    }
    case 'arg':
      args = parseWords(rest, escape);
      break;
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      if (rest === '') break;
      exec = execFormWords(rest);
      args = exec ?? [rest];
      break;
    case 'env':
    case 'label': {
      const words = parseWords(rest, escape);
      if (words.length === 0) break;
      if (!words[0]!.includes('=')) {
        const parts = splitN(rest, TOKEN_WS, 2);
        if (parts.length < 2) throw new AstError(`${cmd.toUpperCase()} must have two arguments`);
        args = [parts[0]!, parts[1]!];
        break;
      }
      for (const w of words) {
        const eq = w.indexOf('=');
        if (eq < 0) throw new AstError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
        args.push(w.slice(0, eq), w.slice(eq + 1));
      }
      break;
    }
    case 'expose':
    case 'from':
      args = whitespaceList(rest);
      break;
    case 'healthcheck': {
      let sep = 0;
      while (sep < rest.length && !isGoSpace(rest.charCodeAt(sep))) sep++;
      let next = sep;
      while (next < rest.length && isGoSpace(rest.charCodeAt(next))) next++;
      if (sep === 0) break;
      const cmdText = rest.slice(next);
      exec = cmdText === '' ? undefined : execFormWords(cmdText);
      args = [rest.slice(0, sep)];
      if (exec) args.push(...exec);
      else if (cmdText !== '') args.push(cmdText);
      break;
    }
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      if (rest !== '') args = [rest];
      break;
    case 'onbuild':
      if (rest !== '') {
        if (depth >= MAX_ONBUILD_CHAIN) throw new AstError(`ONBUILD chained more than ${MAX_ONBUILD_CHAIN} deep`);
        child = nodeFromLine(rest, escape, base + line.length - goTrimLeft(line).length, depth + 1);
        args = [child.cmd, ...child.args];
      }
      break;
    default:
      break;
  }
  return { cmd, keyword, keywordOff: base + lead, flags, args, json: exec !== undefined, noArgs: rest === '', original: line, child, heredocs: [] };
}

function whitespaceList(rest: string): string[] {
  return rest === '' ? [] : rest.split(TOKEN_WS);
}

/**
 * The words of Docker's exec form: the strings of a JSON array, or undefined when `text`
 * is not one. Throws AstError for an array with non-string elements: Docker rejects it
 * rather than falling back to shell form.
 */
function execFormWords(text: string): string[] | undefined {
  const j = parseJsonArray(text);
  if (j.kind === 'notStrings') throw new AstError(NOT_STRING_ARRAY);
  return j.kind === 'ok' ? j.values : undefined;
}

function splitN(s: string, re: RegExp, n: number): string[] {
  const m = re.exec(s);
  if (!m || n < 2) return [s];
  return [s.slice(0, m.index), s.slice(m.index + m[0].length)];
}

const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;

/** Docker's ParseHeredoc on one word; undefined when the word is not a heredoc. */
function heredocFromWord(word: string): { name: string; expand: boolean; chomp: boolean; fd: number } | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m || m[3] === '') return undefined;
  const rest = m[3]!;
  const none = (): undefined => undefined;
  const words = expandWords(rest, none, { skipUnset: true });
  if (words.length !== 1) return undefined;
  const raw = expandWords(rest, none, { skipUnset: true, rawQuotes: true });
  const quotes = (s: string): number => (s.match(/['"]/g) ?? []).length;
  return { name: words[0]!, expand: quotes(words[0]!) === quotes(raw[0] ?? ''), chomp: m[2] === '-', fd: m[1] ? Number(m[1]) : 0 };
}

function heredocsFromLine(line: string): ReturnType<typeof heredocFromWord>[] {
  let words: string[];
  try {
    words = expandWords(line, () => undefined, { rawQuotes: true, rawEscapes: true, skipUnset: true });
  } catch {
    return [];
  }
  const out: ReturnType<typeof heredocFromWord>[] = [];
  for (const w of words) {
    const h = heredocFromWord(w);
    if (h) out.push(h);
  }
  return out;
}

function canContainHeredoc(node: Node): boolean {
  const n = node.cmd === 'onbuild' && node.child ? node.child : node;
  return (n.cmd === 'run' || n.cmd === 'copy' || n.cmd === 'add') && !n.json;
}

/** A parsed logical instruction, before typing. */
interface Entry {
  readonly node: Node;
  readonly startLine: number;
  readonly endLine: number;
  readonly endCol: number;
  readonly map: LineMap;
}

type FlagType = 'string' | 'strings' | 'bool';
type FlagSpec = Readonly<Record<string, FlagType>>;
type FlagValues = ReadonlyMap<string, string | string[]>;

// The flags each instruction accepts (Docker's BFlags declarations).
const NO_FLAGS: FlagSpec = {};
const FROM_FLAGS: FlagSpec = { platform: 'string' };
const RUN_FLAGS: FlagSpec = { mount: 'strings', network: 'string', security: 'string' };
const COPY_FLAGS: FlagSpec = { chown: 'string', from: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' };
const ADD_FLAGS: FlagSpec = {
  chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', exclude: 'strings', unpack: 'bool',
};
const HEALTHCHECK_FLAGS: FlagSpec = {
  interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string',
};
/** Shared result for the common case of an instruction without flags; never written. */
const NO_FLAG_VALUES: FlagValues = new Map();

function stringFlag(v: FlagValues, name: string): string | undefined {
  const x = v.get(name);
  return typeof x === 'string' ? x : undefined;
}

function formOf(node: Node): 'exec' | 'shell' {
  return node.json ? 'exec' : 'shell';
}

/** RUN/CMD/ENTRYPOINT command: exec form keeps the JSON words, shell form joins them. */
function commandOf(node: Node): string[] | string {
  return node.json ? [...node.args] : node.args.join(' ');
}

/**
 * The instruction being typed: where its errors point and the helpers its cases share.
 * A class rather than closures so that typing 10,000 instructions allocates one small
 * object each instead of a closure context and half a dozen functions.
 */
class InstructionScope {
  constructor(
    private readonly parser: Parser,
    private readonly entry: Entry,
    private readonly node: Node,
    private readonly kind: string,
    private readonly column: number,
  ) {}

  /** Reports an error at the keyword; returns undefined so cases can `return c.fail(...)`. */
  fail(code: DockerfileErrorCode, detail: string, hint?: string): undefined {
    this.parser.error(2, code, this.entry.startLine, this.column, detail, { text: this.node.keyword, ...(hint ? { hint } : {}) });
    return undefined;
  }

  /** The flag values, or undefined after reporting a bad flag. */
  flags(spec: FlagSpec): FlagValues | undefined {
    if (this.node.flags.length === 0) return NO_FLAG_VALUES;
    return this.parser.parseFlags(this.entry, this.node.flags, spec, this.kind);
  }

  /** Warns that the instruction's flags are ignored (ARG, STOPSIGNAL, HEALTHCHECK NONE). */
  ignoredFlags(): void {
    const flags = this.node.flags;
    if (flags.length > 0) this.parser.warn('W_FLAGS_IGNORED', this.entry.startLine, `${this.kind} ignores flags (${flags.map((f) => f.text).join(' ')}), as Docker does`);
  }

  /** ENV/LABEL pairs from the node's alternating key/value words. */
  keyValues(name: string): KeyValue[] | undefined {
    const args = this.node.args;
    if (args.length === 0) return this.fail('E_ARGUMENTS', `${name} requires at least one argument`);
    const out: KeyValue[] = [];
    for (let j = 0; j + 1 < args.length; j += 2) {
      if (args[j] === '') return this.fail('E_ARGUMENTS', `${name} names can not be blank`);
      out.push([args[j]!, args[j + 1]!]);
    }
    return out;
  }
}

const EDIT_NAMES = KINDS;

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

function suggest(word: string, candidates: readonly string[]): string | undefined {
  const up = word.toUpperCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(up, c.toUpperCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(up.length / 3)) ? best : undefined;
}

/** Parser state for one file. */
class Parser {
  readonly problems: Problem[] = [];
  readonly warnings: Warning[] = [];

  constructor(private readonly file: string, private readonly escape: '\\' | '`') {}

  error(phase: number, code: DockerfileErrorCode, line: number, column: number, detail: string, opts: { hint?: string; text?: string } = {}): void {
    this.problems.push({ phase, error: new DockerfileError(code, { file: this.file, line, column }, detail, opts) });
  }

  warn(code: string, line: number, message: string): void {
    this.warnings.push({ code, line, message });
  }

  /** Parses builder flags like Docker's BFlags.Parse (its messages, capitalised as in Docker 20.10); returns undefined after reporting an error. */
  parseFlags(e: Entry, flags: readonly RawFlag[], spec: FlagSpec, kw: string): FlagValues | undefined {
    const values = new Map<string, string | string[]>();
    for (const f of flags) {
      const pos = e.map.at(f.start);
      const fail = (code: DockerfileErrorCode, msg: string, hint?: string): undefined => {
        this.error(2, code, e.startLine, pos.column, msg, { text: f.text, ...(hint ? { hint } : {}) });
        return undefined;
      };
      if (f.text === '--') return values;
      const body = f.text.slice(2);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const value = eq < 0 ? '' : body.slice(eq + 1);
      const type = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
      if (type === undefined) {
        const known = Object.keys(spec);
        const s = suggest(name, known);
        return fail('E_UNKNOWN_FLAG', `Unknown flag: ${name}`, s ? `did you mean --${s}?` : known.length ? `${kw} takes ${known.map((k) => `--${k}`).join(', ')}` : `${kw} takes no flags`);
      }
      if (values.has(name) && type !== 'strings') return fail('E_FLAG_VALUE', `Duplicate flag specified: ${name}`);
      switch (type) {
        case 'bool': {
          if (eq >= 0 && value === '') return fail('E_FLAG_VALUE', `Missing a value on flag: ${name}`);
          const lower = value.toLowerCase();
          if (lower !== '' && lower !== 'true' && lower !== 'false') return fail('E_FLAG_VALUE', `expecting boolean value for flag ${name}, not: ${value}`);
          values.set(name, lower === '' ? 'true' : lower);
          break;
        }
        case 'string':
          if (eq < 0) return fail('E_FLAG_VALUE', `Missing a value on flag: ${name}`);
          values.set(name, value);
          break;
        case 'strings': {
          if (eq < 0) return fail('E_FLAG_VALUE', `Missing a value on flag: ${name}`);
          const prev = values.get(name);
          values.set(name, [...(Array.isArray(prev) ? prev : []), value]);
          break;
        }
      }
    }
    return values;
  }

  toFlags(e: Entry, flags: readonly RawFlag[]): Flag[] {
    if (flags.length === 0) return [];
    return flags
      .filter((f) => f.text !== '--')
      .map((f) => {
        const body = f.text.slice(2);
        const eq = body.indexOf('=');
        const s = e.map.at(f.start);
        const en = e.map.at(f.end);
        return { name: eq < 0 ? body : body.slice(0, eq), value: eq < 0 ? undefined : body.slice(eq + 1), range: { start: s, end: en } };
      });
  }

  /** Docker's instructions.ParseInstruction; reports and returns undefined on error. */
  instruction(e: Entry, node: Node, isTrigger = false): Instruction | undefined {
    const line = e.startLine;
    const kwAt = e.map.at(node.keywordOff);
    // Docker's start line is where the instruction's text begins, even a lone escape line.
    const kwPos = kwAt.line === e.startLine ? kwAt : { line: e.startLine, column: 1 };
    const range: SourceRange = { start: kwPos, end: { line: e.endLine, column: e.endCol } };
    const raw = goTrim(node.original);
    const keyword = node.keyword;
    const flags = this.toFlags(e, node.flags);
    // Results are built as literals, not spreads of a shared base: a spread plus new keys
    // makes V8 allocate several times the object's size, for every instruction.
    const kind = node.cmd.toUpperCase();
    const args = node.args;
    const c = new InstructionScope(this, e, node, kind, kwPos.column);
    if (!KIND_SET.has(kind)) {
      const s = suggest(node.keyword, EDIT_NAMES);
      return c.fail('E_UNKNOWN_INSTRUCTION', `unknown instruction: ${node.keyword.toUpperCase()}`, s ? `did you mean ${s}?` : undefined);
    }
    switch (kind as InstructionKind) {
      case 'ENV': {
        if (!c.flags(NO_FLAGS)) return undefined;
        const pairs = c.keyValues('ENV');
        return pairs && { keyword, range, raw, flags, kind: 'ENV', pairs };
      }
      case 'LABEL': {
        if (!c.flags(NO_FLAGS)) return undefined;
        const pairs = c.keyValues('LABEL');
        return pairs && { keyword, range, raw, flags, kind: 'LABEL', pairs };
      }
      case 'MAINTAINER':
        if (args.length !== 1) return c.fail('E_ARGUMENTS', 'MAINTAINER requires exactly one argument');
        if (!c.flags(NO_FLAGS)) return undefined;
        return { keyword, range, raw, flags, kind: 'MAINTAINER', name: args[0]! };
      case 'ADD':
      case 'COPY': {
        if (args.length < 2) {
          return c.fail('E_ARGUMENTS', `${kind} requires at least two arguments, but only one was provided. Destination could not be determined`);
        }
        const v = c.flags(kind === 'COPY' ? COPY_FLAGS : ADD_FLAGS);
        if (!v) return undefined;
        const dest = args[args.length - 1]!;
        // a heredoc word with unbalanced quotes (`<<EOF"`) is a parse error, as in Docker's parser
        const heredocOf = (word: string): ReturnType<typeof heredocFromWord> | null => {
          try {
            return heredocFromWord(word);
          } catch (err) {
            if (!(err instanceof ExpansionError)) throw err;
            c.fail('E_HEREDOC', `invalid heredoc ${word}: ${err.message}`, 'close the quote around the heredoc name, e.g. <<"EOF"');
            return null;
          }
        };
        const destDoc = node.json ? undefined : heredocOf(dest);
        if (destDoc === null) return undefined;
        if (destDoc) return c.fail('E_HEREDOC', `${kind} cannot accept a heredoc as a destination`);
        const sources: string[] = [];
        const heredocs: Heredoc[] = [];
        for (const src of args.slice(0, -1)) {
          const h = node.json ? undefined : heredocOf(src);
          if (h === null) return undefined;
          if (h) {
            const found = node.heredocs.find((d) => d.name === h.name);
            heredocs.push(found ?? { name: h.name, content: '', expand: h.expand, chompTabs: h.chomp, fd: h.fd });
          } else sources.push(src);
        }
        const form = formOf(node);
        const link = stringFlag(v, 'link') === 'true';
        const exclude = (v.get('exclude') as string[] | undefined) ?? [];
        const chown = v.has('chown') ? stringFlag(v, 'chown')! : undefined;
        const chmod = v.has('chmod') ? stringFlag(v, 'chmod')! : undefined;
        if (kind === 'COPY') {
          return {
            keyword, range, raw, flags, sources, dest, form, heredocs, link, exclude, chown, chmod,
            kind: 'COPY',
            parents: stringFlag(v, 'parents') === 'true',
            // Docker 20.10's dispatchCopy takes an image only when c.From != "": `--from=` is the context
            from: stringFlag(v, 'from') || undefined,
          };
        }
        return {
          keyword, range, raw, flags, sources, dest, form, heredocs, link, exclude, chown, chmod,
          kind: 'ADD',
          checksum: v.has('checksum') ? stringFlag(v, 'checksum')! : undefined,
          keepGitDir: v.has('keep-git-dir') ? stringFlag(v, 'keep-git-dir') === 'true' : undefined,
          unpack: v.has('unpack') ? stringFlag(v, 'unpack') === 'true' : undefined,
        };
      }
      case 'FROM': {
        let stageName: string | undefined;
        if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
          stageName = args[2]!.toLowerCase();
          if (!isValidStageName(stageName)) {
            return c.fail('E_STAGE_NAME', `invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
          }
        } else if (args.length !== 1) {
          return c.fail('E_ARGUMENTS', 'FROM requires either one or three arguments', 'FROM image [AS name]');
        }
        const v = c.flags(FROM_FLAGS);
        if (!v) return undefined;
        return {
          keyword, range, raw, flags,
          kind: 'FROM',
          image: args[0]!,
          ...(stageName !== undefined ? { stageName } : {}),
          platform: v.has('platform') ? stringFlag(v, 'platform')! : undefined,
        };
      }
      case 'ONBUILD': {
        if (args.length === 0) return c.fail('E_ARGUMENTS', 'ONBUILD requires at least one argument');
        if (!c.flags(NO_FLAGS)) return undefined;
        const trig = args[0]!.trim().toUpperCase();
        if (trig === 'ONBUILD') return c.fail('E_ONBUILD', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
        if (trig === 'MAINTAINER' || trig === 'FROM') return c.fail('E_ONBUILD', `${trig} isn't allowed as an ONBUILD trigger`);
        let triggerText = node.original.replace(/^\s*ONBUILD\s*/i, '');
        for (const h of node.heredocs) triggerText += '\n' + h.content + h.name;
        let trigger: Instruction | undefined;
        if (node.child) {
          const sub = new Parser(this.file, this.escape);
          trigger = sub.instruction(e, { ...node.child, heredocs: node.heredocs }, true);
          if (!trigger) {
            this.warn('W_ONBUILD_TRIGGER', line, `ONBUILD trigger is invalid and will fail in the child build: ${sub.problems[0]?.error.detail ?? ''}`);
          }
        }
        return { keyword, range, raw, flags, kind: 'ONBUILD', trigger, triggerText };
      }
      case 'WORKDIR':
        if (args.length !== 1) return c.fail('E_ARGUMENTS', 'WORKDIR requires exactly one argument');
        if (!c.flags(NO_FLAGS)) return undefined;
        if (/\s/.test(args[0]!) && !isTrigger) this.warn('W_WORKDIR_SPACES', line, `WORKDIR path ${JSON.stringify(args[0])} contains blanks; Docker uses it as one path`);
        return { keyword, range, raw, flags, kind: 'WORKDIR', path: args[0]! };
      case 'RUN': {
        const v = c.flags(RUN_FLAGS);
        if (!v) return undefined;
        const network = stringFlag(v, 'network');
        if (network !== undefined && network !== 'default' && network !== 'none' && network !== 'host') {
          return c.fail('E_FLAG_VALUE', `unsupported network mode ${JSON.stringify(network)}`, 'use default, none or host');
        }
        const security = stringFlag(v, 'security');
        if (security !== undefined && security !== 'sandbox' && security !== 'insecure') {
          return c.fail('E_FLAG_VALUE', `unsupported security mode ${JSON.stringify(security)}`, 'use sandbox or insecure');
        }
        const mounts: RunMount[] = [];
        for (const spec of (v.get('mount') as string[] | undefined) ?? []) {
          try {
            const mnt = parseMount(spec);
            if (/\$./.test(mnt.from ?? '')) return c.fail('E_MOUNT', "'from' doesn't support variable expansion, define alias stage instead");
            mounts.push(mnt);
          } catch (err) {
            if (!(err instanceof ValueError)) throw err;
            if (spec.includes('$')) mounts.push({ type: 'bind', raw: spec });
            else return c.fail('E_MOUNT', err.message);
          }
        }
        if (node.noArgs && !isTrigger) this.warn('W_EMPTY_COMMAND', line, 'RUN has no command');
        return {
          keyword, range, raw, flags,
          kind: 'RUN',
          form: formOf(node),
          command: commandOf(node),
          heredocs: node.heredocs,
          mounts,
          network: network !== undefined ? network as 'default' | 'none' | 'host' : undefined,
          security: security !== undefined ? security as 'sandbox' | 'insecure' : undefined,
        };
      }
      case 'CMD':
      case 'ENTRYPOINT':
        if (!c.flags(NO_FLAGS)) return undefined;
        if (node.noArgs && !isTrigger) this.warn('W_EMPTY_COMMAND', line, `${kind} has no arguments; Docker accepts it`);
        return { keyword, range, raw, flags, kind: kind as 'CMD' | 'ENTRYPOINT', form: formOf(node), command: commandOf(node) };
      case 'HEALTHCHECK': {
        if (args.length === 0) return c.fail('E_ARGUMENTS', 'HEALTHCHECK requires at least one argument');
        const typ = args[0]!.toUpperCase();
        const rest = args.slice(1);
        if (typ === 'NONE') {
          if (rest.length !== 0) return c.fail('E_ARGUMENTS', 'HEALTHCHECK NONE takes no arguments');
          c.ignoredFlags();
          return { keyword, range, raw, flags, kind: 'HEALTHCHECK', none: true };
        }
        const v = c.flags(HEALTHCHECK_FLAGS);
        if (!v) return undefined;
        if (typ !== 'CMD') return c.fail('E_ARGUMENTS', `Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
        const cmd = rest.length === 0 ? [] : node.json ? rest : [rest.join(' ')];
        if (cmd.length === 0) return c.fail('E_ARGUMENTS', 'Missing command after HEALTHCHECK CMD');
        const test = [node.json ? 'CMD' : 'CMD-SHELL', ...cmd];
        const durations: Record<string, number> = {};
        for (const [flag, key] of [['interval', 'interval'], ['timeout', 'timeout'], ['start-period', 'startPeriod'], ['start-interval', 'startInterval']] as const) {
          const s = stringFlag(v, flag);
          if (s === undefined || s === '') continue;
          try {
            const d = parseDuration(s);
            if (d < MINIMUM_HEALTHCHECK_DURATION_NS) return c.fail('E_DURATION', `Interval ${JSON.stringify(flag)} cannot be less than 1ms`);
            durations[key] = d;
          } catch (err) {
            if (!(err instanceof ValueError)) throw err;
            return c.fail('E_DURATION', err.message, 'durations look like 30s, 1m30s, 500ms');
          }
        }
        let retries: number | undefined;
        const r = stringFlag(v, 'retries');
        if (r !== undefined && r !== '') {
          // strconv.ParseInt(r, 10, 32): digits with an optional sign, else a syntax error; then int32's range
          if (!/^[+-]?[0-9]+$/.test(r)) return c.fail('E_FLAG_VALUE', `strconv.ParseInt: parsing ${JSON.stringify(r)}: invalid syntax`);
          const n = BigInt(r);
          if (n > 2147483647n || n < -2147483648n) return c.fail('E_FLAG_VALUE', `strconv.ParseInt: parsing ${JSON.stringify(r)}: value out of range`);
          retries = Number(n);
          if (retries < 1) return c.fail('E_FLAG_VALUE', `--retries must be at least 1 (not ${retries})`);
        }
        return { keyword, range, raw, flags, kind: 'HEALTHCHECK', none: false, test, ...durations, ...(retries !== undefined ? { retries } : {}) };
      }
      case 'EXPOSE':
        if (args.length === 0) return c.fail('E_ARGUMENTS', 'EXPOSE requires at least one argument');
        if (!c.flags(NO_FLAGS)) return undefined;
        return { keyword, range, raw, flags, kind: 'EXPOSE', ports: [...args] };
      case 'USER':
        if (args.length !== 1) return c.fail('E_ARGUMENTS', 'USER requires exactly one argument');
        if (!c.flags(NO_FLAGS)) return undefined;
        if (/\s/.test(args[0]!) && !isTrigger) this.warn('W_USER_SPACES', line, `USER ${JSON.stringify(args[0])} contains blanks; Docker stores it as one user name`);
        return { keyword, range, raw, flags, kind: 'USER', user: args[0]! };
      case 'VOLUME': {
        if (args.length === 0) return c.fail('E_ARGUMENTS', 'VOLUME requires at least one argument');
        if (!c.flags(NO_FLAGS)) return undefined;
        const paths: string[] = [];
        for (const a of args) {
          const t = goTrim(a);
          if (t === '') return c.fail('E_ARGUMENTS', 'VOLUME specified can not be an empty string');
          paths.push(t);
        }
        return { keyword, range, raw, flags, kind: 'VOLUME', form: formOf(node), paths };
      }
      case 'STOPSIGNAL':
        if (args.length !== 1) return c.fail('E_ARGUMENTS', 'STOPSIGNAL requires exactly one argument');
        c.ignoredFlags();
        return { keyword, range, raw, flags, kind: 'STOPSIGNAL', signal: args[0]! };
      case 'ARG': {
        if (args.length === 0) return c.fail('E_ARGUMENTS', 'ARG requires at least one argument');
        const decl: { name: string; defaultValue?: string }[] = [];
        for (const a of args) {
          const eq = a.indexOf('=');
          if (eq < 0) decl.push({ name: a });
          else {
            if (eq === 0) return c.fail('E_ARGUMENTS', 'ARG names can not be blank');
            decl.push({ name: a.slice(0, eq), defaultValue: a.slice(eq + 1) });
          }
        }
        c.ignoredFlags();
        return { keyword, range, raw, flags, kind: 'ARG', args: decl };
      }
      case 'SHELL': {
        if (!c.flags(NO_FLAGS)) return undefined;
        if (args.length === 0) return c.fail('E_ARGUMENTS', 'SHELL requires at least one argument');
        if (!node.json) return c.fail('E_JSON_ARRAY', 'SHELL requires the arguments to be in JSON form', 'SHELL ["/bin/sh", "-c"]');
        return { keyword, range, raw, flags, kind: 'SHELL', shell: [...args] };
      }
    }
  }
}

/** Types entries one by one and files them as meta ARGs or into stages (Docker's instructions.Parse). */
class StageCollector {
  readonly instructions: Instruction[] = [];
  readonly metaArgs: ArgInstruction[] = [];
  readonly stages: { index: number; name?: string; from: FromInstruction; instructions: Instruction[] }[] = [];

  /** a FROM was met but refused: what follows belongs to it, not to "no build stage" */
  #refusedFrom = false;

  constructor(readonly parser: Parser) {}

  add(e: Entry): void {
    const ins = this.parser.instruction(e, e.node);
    if (!ins) {
      if (e.node.cmd.toUpperCase() === 'FROM') this.#refusedFrom = true;
      return;
    }
    const stages = this.stages;
    if (stages.length === 0 && ins.kind === 'ARG') {
      this.metaArgs.push(ins);
      this.instructions.push(ins);
      return;
    }
    if (ins.kind === 'FROM') {
      stages.push({ index: stages.length, name: ins.stageName !== undefined ? ins.stageName : undefined, from: ins, instructions: [] });
      this.instructions.push(ins);
      return;
    }
    const cur = stages[stages.length - 1];
    if (!cur) {
      if (this.#refusedFrom) return;
      this.parser.error(2, 'E_NO_STAGE', e.startLine, ins.range.start.column, 'no build stage in current context', {
        text: ins.keyword,
        hint: 'only ARG may come before the first FROM',
      });
      return;
    }
    cur.instructions.push(ins);
    this.instructions.push(ins);
  }
}

/** The note Docker's parser adds after its empty continuation line warnings (once, at their end). */
function emptyContinuationNote(warnings: readonly Warning[]): Warning[] {
  const last = warnings.filter((w) => w.code === 'W_EMPTY_CONTINUATION').at(-1);
  return last === undefined ? [] : [{ code: 'W_EMPTY_CONTINUATION', line: last.line, message: 'Empty continuation lines will become errors in a future release.' }];
}

/**
 * Parses Dockerfile text into the typed model, with Docker's rules.
 * Pure: no I/O. Every problem is collected; if there is any, throws
 * {@link DockerfileParseError} whose `errors` are in the order Docker meets them.
 */
export function parseDockerfile(text: string, opts: ParseOptions = {}): Dockerfile {
  const file = opts.file ?? 'Dockerfile';
  const lines = splitLines(text);
  const directives: { escape: '\\' | '`'; syntax?: string; check?: string } = { escape: '\\' };
  const early: Problem[] = [];
  const errAt = (code: DockerfileErrorCode, line: number, detail: string, hint?: string): DockerfileParseError =>
    new DockerfileParseError([new DockerfileError(code, { file, line, column: 1 }, detail, hint ? { hint } : {})]);

  if (text.length === 0) throw errAt('E_EMPTY_DOCKERFILE', 1, `the Dockerfile (${file}) cannot be empty`, 'add a FROM instruction');
  if (lines[0]!.startsWith('\ufeff')) lines[0] = lines[0]!.slice(1);

  // Parser directives: leading `# name=value` lines until the first other line.
  let directivesDone = false;
  const seen = new Set<string>();
  const directiveLine = (raw: string, lineNo: number): boolean => {
    if (directivesDone) return false;
    const t = goTrimLeft(trimNewline(raw));
    if (!t.startsWith('#')) {
      directivesDone = true;
      return false;
    }
    const m = DIRECTIVE.exec(goTrimLeft(t.slice(1)));
    const key = m?.[1]?.toLowerCase();
    if (!m || (key !== 'escape' && key !== 'syntax' && key !== 'check')) {
      directivesDone = true;
      return false;
    }
    if (seen.has(key)) {
      throw errAt('E_DIRECTIVE', lineNo, `only one ${key} parser directive can be used`);
    }
    seen.add(key);
    const value = m[2]!;
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') throw errAt('E_DIRECTIVE', lineNo, `invalid escape token '${value}' does not match \` or \\`);
      directives.escape = value;
    } else directives[key] = value;
    return true;
  };

  let collector: StageCollector | undefined;
  const scanWarnings: Warning[] = [];
  let emptyContinuation = false;
  let i = 0;
  while (i < lines.length) {
    const lineNo = i + 1;
    let raw = lines[i]!;
    directiveLine(raw, lineNo);
    i++;
    raw = trimNewline(raw);
    const lead = leadingSpace(raw);
    let first = raw.slice(lead);
    if (isComment(first)) first = '';
    const escape = directives.escape;
    let { text: joined, continued } = trimContinuation(first, escape);
    if (!continued && joined === '') continue;
    const segs: Segment[] = [{ off: 0, line: lineNo, col: lead + 1 }];
    const parts = [joined];
    let len = joined.length;
    let lastLine = lineNo;
    let lastLen = raw.length;
    emptyContinuation = false;
    while (continued && i < lines.length) {
      const cl = trimNewline(lines[i]!);
      i++;
      lastLine = i;
      if (isComment(cl)) continue;
      if (goTrimLeft(cl).length === 0) {
        emptyContinuation = true;
        continue;
      }
      const t = trimContinuation(cl, escape);
      continued = t.continued;
      segs.push({ off: len, line: i, col: 1 });
      parts.push(t.text);
      len += t.text.length;
      lastLen = cl.length;
    }
    joined = parts.join('');
    if (emptyContinuation) {
      // Docker 20.10's parser words it so, with the instruction as joined (continuations removed)
      scanWarnings.push({ code: 'W_EMPTY_CONTINUATION', line: lineNo, message: `Empty continuation line found in:\n    ${joined}` });
    }
    const map = new LineMap(segs);
    let node: Node;
    try {
      node = nodeFromLine(joined, escape, 0);
    } catch (err) {
      if (!(err instanceof AstError) && !(err instanceof DockerfileError)) throw err;
      early.push({ phase: 1, error: new DockerfileError('E_SYNTAX', { file, line: lineNo, column: lead + 1 }, err.message) });
      continue;
    }
    if (canContainHeredoc(node) && joined.includes('<<')) {
      let docs: ReturnType<typeof heredocFromWord>[];
      try {
        docs = heredocsFromLine(joined);
      } catch (err) {
        early.push({ phase: 1, error: new DockerfileError('E_HEREDOC', { file, line: lineNo, column: lead + 1 }, (err as Error).message) });
        continue;
      }
      let unterminated = false;
      for (const d of docs) {
        if (!d) continue;
        const body: string[] = [];
        let terminated = false;
        while (i < lines.length) {
          const bl = lines[i]!;
          i++;
          lastLine = i;
          lastLen = trimNewline(bl).length;
          let candidate = trimNewline(bl);
          if (d.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === d.name) {
            terminated = true;
            break;
          }
          body.push(d.chomp ? bl.replace(/^\t+/, '') : bl);
        }
        if (!terminated) {
          unterminated = true;
          break;
        }
        node.heredocs.push({ name: d.name, content: body.join(''), expand: d.expand, chompTabs: d.chomp, fd: d.fd });
      }
      if (unterminated) {
        early.push({
          phase: 1,
          error: new DockerfileError('E_HEREDOC', { file, line: lineNo, column: lead + 1 }, 'unterminated heredoc', {
            hint: 'end the here-document with a line holding only its delimiter',
          }),
        });
        continue;
      }
    }
    // Typed at once, so each line's scratch (Node, LineMap) dies young instead of surviving
    // GC cycles until the whole file is scanned. Directives are settled by now: they end at
    // the first line that is not one.
    collector ??= new StageCollector(new Parser(file, directives.escape));
    collector.add({ node, startLine: lineNo, endLine: lastLine, endCol: lastLen + 1, map });
  }
  if (!collector && early.length === 0) {
    throw errAt('E_EMPTY_DOCKERFILE', Math.max(1, lines.length), `failed to parse ${file}: file with no instructions`, 'add a FROM instruction');
  }
  const typed = collector ?? new StageCollector(new Parser(file, directives.escape));
  const problems = [...early, ...typed.parser.problems];
  if (problems.length > 0) {
    problems.sort((a, b) => a.phase - b.phase || a.error.line - b.error.line);
    throw new DockerfileParseError(problems.map((x) => x.error));
  }
  const result: Dockerfile = {
    directives: { ...directives },
    metaArgs: typed.metaArgs,
    stages: typed.stages as Stage[],
    instructions: typed.instructions,
    warnings: [...scanWarnings, ...emptyContinuationNote(scanWarnings), ...typed.parser.warnings],
  };
  return result;
}
