import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ContextError } from './errors.js';
import { cleanPath } from './paths.js';

/**
 * `.dockerignore` files and their pattern rules, as Docker implements them
 * (github.com/moby/patternmatcher and its `ignorefile` reader):
 * - one pattern a line; a line starting with `#` is a comment; blank lines are skipped;
 * - surrounding whitespace trimmed; `!` marks an exception (re-includes);
 * - patterns are cleaned like Go's `filepath.Clean` and a leading `/` is dropped (context root);
 * - `*`, `?`, `[…]`, `\` as in Go's `filepath.Match` within a segment, plus `**` for any number of
 *   segments; the last matching pattern wins; a pattern matching a directory matches all below it.
 */

/** Reads the lines of a .dockerignore file into patterns (comments and blanks dropped, cleaned). */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    let p = line.trim();
    if (p === '') continue;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

/** A compiled list of ignore patterns. */
export interface IgnoreMatcher {
  /** The patterns as given (after cleaning). */
  readonly patterns: readonly string[];
  /** True when some pattern is an exception (`!…`): an ignored directory may hold included files. */
  readonly hasExceptions: boolean;
  /**
   * True when `rel` (a slash path relative to the context root) is ignored: the last pattern that
   * matches it or one of its parent directories decides (patternmatcher.MatchesOrParentMatches).
   */
  matches(rel: string): boolean;
}

interface Pattern {
  readonly exception: boolean;
  readonly test: (p: string) => boolean;
}

type Kind = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** Compiles one cleaned pattern (without `!`) the way patternmatcher's `compile` does. */
function compilePattern(pattern: string): (p: string) => boolean {
  let re = '^';
  let kind: Kind = 'exact';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        const atStart = i === 0;
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            re += '.*';
            kind = 'regexp';
          }
        } else {
          re += '(.*/)?';
          kind = 'regexp';
        }
        if (atStart) kind = 'suffix';
      } else {
        re += '[^/]*';
        kind = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if ('.+()|{}$'.includes(ch)) {
      re += `\\${ch}`;
    } else if (ch === '\\') {
      if (i + 1 < chars.length) {
        re += `\\${chars[++i]}`;
        kind = 'regexp';
      } else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      kind = 'regexp';
    } else re += ch;
  }
  switch (kind) {
    case 'exact':
      return (p) => p === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (p) => p.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      return (p) => p.endsWith(suffix) || (suffix.startsWith('/') && p === suffix.slice(1));
    }
    case 'regexp': {
      const rx = toRegExp(`${re}$`, pattern);
      return (p) => rx.test(p);
    }
  }
}

function toRegExp(source: string, pattern: string): RegExp {
  try {
    return new RegExp(source, 'u');
  } catch {
    try {
      return new RegExp(source);
    } catch (cause) {
      throw new ContextError('E_DOCKERIGNORE_PATTERN', `syntax error in .dockerignore pattern: ${pattern}`, {
        hint: 'patterns use Go filepath.Match syntax: *, ?, [a-z], \\ escapes, and **',
        cause,
      });
    }
  }
}

/**
 * Compiles ignore patterns (as `parseDockerignore` returns them).
 * @throws ContextError E_DOCKERIGNORE_PATTERN for a lone `!` or a malformed pattern.
 */
export function compileIgnore(patterns: readonly string[]): IgnoreMatcher {
  const compiled: Pattern[] = [];
  const kept: string[] = [];
  for (const raw of patterns) {
    let p = raw.trim();
    if (p === '') continue;
    p = cleanPath(p);
    let exception = false;
    if (p.startsWith('!')) {
      if (p.length === 1) {
        throw new ContextError('E_DOCKERIGNORE_PATTERN', 'illegal exclusion pattern: "!"', {
          hint: 'a "!" line needs a pattern after it',
        });
      }
      exception = true;
      p = p.slice(1);
    }
    compiled.push({ exception, test: compilePattern(p) });
    kept.push(raw);
  }
  const hasExceptions = compiled.some((p) => p.exception);
  return {
    patterns: kept,
    hasExceptions,
    matches(rel: string): boolean {
      const file = cleanPath(rel);
      // Docker never lets the context root itself be excluded.
      if (file === '.') return false;
      const slash = file.lastIndexOf('/');
      const parents = slash < 0 ? [] : file.slice(0, slash).split('/');
      let matched = false;
      for (const pattern of compiled) {
        if (pattern.exception !== matched) continue;
        let m = pattern.test(file);
        for (let i = 0; !m && i < parents.length; i++) m = pattern.test(parents.slice(0, i + 1).join('/'));
        if (m) matched = !pattern.exception;
      }
      return matched;
    },
  };
}

/**
 * Reads the ignore patterns of a build: `<Dockerfile>.dockerignore` beside the Dockerfile when it
 * exists (BuildKit's per-Dockerfile ignore file; it takes precedence), else `<context>/.dockerignore`,
 * else none.
 * @throws ContextError E_DOCKERIGNORE_READ when a file exists but cannot be read.
 */
export async function readDockerignore(contextRoot: string, dockerfilePath?: string): Promise<string[]> {
  const candidates = [
    ...(dockerfilePath === undefined ? [] : [`${path.resolve(dockerfilePath)}.dockerignore`]),
    path.join(contextRoot, '.dockerignore'),
  ];
  for (const file of candidates) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') continue;
      // the docker CLI's words: "Error reading .dockerignore: read /ctx/.dockerignore: is a directory"
      const code = (cause as NodeJS.ErrnoException).code;
      const why = code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (cause as Error).message;
      throw new ContextError('E_DOCKERIGNORE_READ', `Error reading ${path.basename(file)}: read ${file}: ${why}`, { cause, hint: 'make it a readable file of patterns, or remove it' });
    }
    return parseDockerignore(text);
  }
  return [];
}
