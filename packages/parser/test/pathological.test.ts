import test from 'ava';
import { checkDockerfile, DockerfileParseError, parseDockerfile } from '../src/index.js';
import type { Dockerfile, Instruction } from '../src/index.js';

// Hostile inputs must end quickly with a result or a typed error: never hang, never a
// RangeError from a blown stack. Each test is bounded by its own timeout (generous: the
// machine may be shared); unloaded, each takes well under a second.
const BOUND_MS = 20_000;
const N = 100_000;

function only(df: Dockerfile, kind: Instruction['kind']): Instruction {
  const found = df.instructions.filter((i) => i.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, got ${found.length}`);
  return found[0]!;
}

function parseError(text: string): DockerfileParseError {
  try {
    parseDockerfile(text);
  } catch (err) {
    if (err instanceof DockerfileParseError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileParseError');
}

test('100,000 nested "${" is an expansion error at its line', (t) => {
  t.timeout(BOUND_MS);
  const res = checkDockerfile(parseDockerfile(`FROM scratch\nENV a=${'${'.repeat(N)}\n`));
  t.is(res.errors[0]?.code, 'E_EXPANSION');
  t.is(res.errors[0]?.line, 2);
});

test('100,000 nested "${a:-" defaults are an expansion error, not a stack overflow', (t) => {
  t.timeout(BOUND_MS);
  const res = checkDockerfile(parseDockerfile(`FROM scratch\nENV a=${'${a:-'.repeat(N)}x${'}'.repeat(N)}\n`));
  t.is(res.errors[0]?.code, 'E_EXPANSION');
  t.is(res.errors[0]?.line, 2);
});

test('200 nested "${a:-" defaults still expand', (t) => {
  t.timeout(BOUND_MS);
  const res = checkDockerfile(parseDockerfile(`FROM scratch\nENV a=${'${b:-'.repeat(200)}x${'}'.repeat(200)}\n`));
  t.deepEqual(res.errors, []);
  t.deepEqual(res.stages[0]?.env.find(([k]) => k === 'a'), ['a', 'x']);
});

test('100,000 nested "${a/" replacements are an expansion error', (t) => {
  t.timeout(BOUND_MS);
  const res = checkDockerfile(parseDockerfile(`FROM scratch\nWORKDIR ${'${a/'.repeat(N)}\n`));
  t.is(res.errors[0]?.code, 'E_EXPANSION');
});

test('a line of 100,000 backslashes is one RUN command (an escaped escape does not continue)', (t) => {
  t.timeout(BOUND_MS);
  const run = only(parseDockerfile(`FROM scratch\nRUN ${'\\'.repeat(N)}\nUSER x\n`), 'RUN');
  t.is(run.kind === 'RUN' && run.command, '\\'.repeat(N));
});

test('100,000 lines holding only a backslash continue one RUN', (t) => {
  t.timeout(BOUND_MS);
  const df = parseDockerfile(`FROM scratch\nRUN a \\\n${'\\\n'.repeat(N)}b\n`);
  const run = only(df, 'RUN');
  t.is(run.range.start.line, 2);
  t.is(run.range.end.line, N + 3);
  t.is(df.instructions.length, 2);
});

test('a heredoc left open over 100,000 lines is E_HEREDOC at its RUN', (t) => {
  t.timeout(BOUND_MS);
  const err = parseError(`FROM scratch\nRUN <<EOF\n${'line\n'.repeat(N)}`);
  t.is(err.errors[0]?.code, 'E_HEREDOC');
  t.is(err.errors[0]?.line, 2);
});

test('100,000 RUN <<EOF lines: the first heredoc swallows the rest and is unterminated', (t) => {
  t.timeout(BOUND_MS);
  const err = parseError(`FROM scratch\n${'RUN <<EOF\n'.repeat(N)}`);
  t.is(err.errors.length, 1);
  t.is(err.errors[0]?.code, 'E_HEREDOC');
});

test('a 1 MB unclosed JSON-looking CMD is shell form', (t) => {
  t.timeout(BOUND_MS);
  const text = `["${'a", "'.repeat(150_000)}`;
  const cmd = only(parseDockerfile(`FROM scratch\nCMD ${text}\n`), 'CMD');
  t.is(cmd.kind === 'CMD' && cmd.form, 'shell');
  t.is(cmd.kind === 'CMD' && cmd.command, text);
});

test('1,000,000 nested "[" is shell form, not a stack overflow', (t) => {
  t.timeout(BOUND_MS);
  const cmd = only(parseDockerfile(`FROM scratch\nCMD ${'['.repeat(1_000_000)}\n`), 'CMD');
  t.is(cmd.kind === 'CMD' && cmd.form, 'shell');
});

test('a 1 MB JSON string in ENTRYPOINT is exec form', (t) => {
  t.timeout(BOUND_MS);
  const ep = only(parseDockerfile(`FROM scratch\nENTRYPOINT ["${'x'.repeat(1 << 20)}", "y"]\n`), 'ENTRYPOINT');
  t.deepEqual(ep.kind === 'ENTRYPOINT' && ep.command, ['x'.repeat(1 << 20), 'y']);
});

test('10,000 chained ONBUILDs are a syntax error at their line', (t) => {
  t.timeout(BOUND_MS);
  const err = parseError(`FROM scratch\n${'ONBUILD '.repeat(10_000)}RUN x\n`);
  t.is(err.errors[0]?.code, 'E_SYNTAX');
  t.is(err.errors[0]?.line, 2);
});
