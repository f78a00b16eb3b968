import test from 'ava';
import { checkDockerfile, DockerfileParseError, parseDockerfile, parseDuration, ValueError, type Instruction } from '../src/index.js';

function first<K extends Instruction['kind']>(text: string, kind: K): Extract<Instruction, { kind: K }> {
  const df = parseDockerfile(text);
  const ins = df.instructions.find((i) => i.kind === kind);
  if (!ins) throw new Error(`no ${kind}`);
  return ins as Extract<Instruction, { kind: K }>;
}

test('FROM: image, stage name lower-cased, platform flag', (t) => {
  const f = first('FROM --platform=linux/amd64 alpine:3 AS Build\n', 'FROM');
  t.is(f.image, 'alpine:3');
  t.is(f.stageName, 'build');
  t.is(f.platform, 'linux/amd64');
  t.deepEqual(f.flags.map((x) => [x.name, x.value, x.range.start.column]), [['platform', 'linux/amd64', 6]]);
});

test('RUN: shell and exec forms, mounts, network, security', (t) => {
  const r = first('FROM a\nRUN --mount=type=cache,target=/c,id=x,sharing=locked --network=none echo hi\n', 'RUN');
  t.is(r.form, 'shell');
  t.is(r.command, 'echo hi');
  t.is(r.network, 'none');
  t.like(r.mounts[0], { type: 'cache', target: '/c', id: 'x', sharing: 'locked', readonly: false });
  const e = first('FROM a\nRUN ["/bin/sh", "-c", "x"]\n', 'RUN');
  t.is(e.form, 'exec');
  t.deepEqual(e.command, ['/bin/sh', '-c', 'x']);
  t.like(first('FROM a\nRUN --mount=type=secret,id=t,required=true cat\n', 'RUN').mounts[0], { type: 'secret', id: 't', required: true, readonly: true });
});

test('CMD: invalid JSON falls back to shell form, trailing text after JSON is ignored', (t) => {
  t.deepEqual(first('FROM a\nCMD ["echo", unquoted]\n', 'CMD').command, '["echo", unquoted]');
  t.deepEqual(first('FROM a\nCMD ["a"] extra\n', 'CMD').command, ['a']);
  t.deepEqual(first('FROM a\nCMD ["\\u0041", "t\\tb"]\n', 'CMD').command, ['A', 't\tb']);
  t.is(first('FROM a\nCMD\n', 'CMD').command, '');
});

test('COPY/ADD: sources, dest, flags', (t) => {
  const c = first('FROM a\nCOPY --from=build --chown=1:2 --chmod=755 --link --parents --exclude=*.txt --exclude=tmp a b /d/\n', 'COPY');
  t.deepEqual(c.sources, ['a', 'b']);
  t.is(c.dest, '/d/');
  t.like(c, { from: 'build', chown: '1:2', chmod: '755', link: true, parents: true });
  t.deepEqual(c.exclude, ['*.txt', 'tmp']);
  const a = first('FROM a\nADD --checksum=sha256:00 --keep-git-dir=true http://x/a /a\n', 'ADD');
  t.like(a, { checksum: 'sha256:00', keepGitDir: true });
  t.deepEqual(first('FROM a\nCOPY ["a b", "/c d/"]\n', 'COPY').sources, ['a b']);
  // dockerd 20.10 builds 'COPY --from= Dockerfile /x' from the context (checked, h1/f8; dispatchCopy: c.From != "")
  t.is(first('FROM a\nCOPY --from= a /b\n', 'COPY').from, undefined);
});

test('ENV/LABEL: both forms, ordered raw pairs', (t) => {
  t.deepEqual(first('FROM a\nENV K hello   big world\n', 'ENV').pairs, [['K', 'hello   big world']]);
  t.deepEqual(first('FROM a\nENV A=1 B="x y" C=a\\ b\n', 'ENV').pairs, [['A', '1'], ['B', '"x y"'], ['C', 'a\\ b']]);
  t.deepEqual(first('FROM a\nLABEL "k"=v x=\n', 'LABEL').pairs, [['"k"', 'v'], ['x', '']]);
});

test('ARG: several per line, defaults', (t) => {
  t.deepEqual(first('ARG A B=2 C\nFROM a\n', 'ARG').args, [{ name: 'A' }, { name: 'B', defaultValue: '2' }, { name: 'C' }]);
});

test('HEALTHCHECK: options in nanoseconds, NONE, shell form', (t) => {
  const h = first('FROM a\nHEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD ["/c"]\n', 'HEALTHCHECK');
  t.like(h, { none: false, interval: 30e9, timeout: 90e9, startPeriod: 500e6, startInterval: 2e9, retries: 3 });
  if (!h.none) t.deepEqual(h.test, ['CMD', '/c']);
  t.like(first('FROM a\nHEALTHCHECK NONE\n', 'HEALTHCHECK'), { none: true });
  const s = first('FROM a\nHEALTHCHECK CMD curl -f x || exit 1\n', 'HEALTHCHECK');
  if (!s.none) t.deepEqual(s.test, ['CMD-SHELL', 'curl -f x || exit 1']);
});

test('ONBUILD: trigger parsed, text stored as Docker does', (t) => {
  const o = first('FROM a\nONBUILD CMD ["a", \\\n    "b"]\n', 'ONBUILD');
  t.is(o.triggerText, 'CMD ["a",     "b"]');
  t.is(o.trigger?.kind, 'CMD');
  const u = parseDockerfile('FROM a\nONBUILD FOO bar\n');
  t.is((u.instructions[1] as Extract<Instruction, { kind: 'ONBUILD' }>).trigger, undefined);
  t.true(u.warnings.some((w) => w.code === 'W_ONBUILD_TRIGGER' && w.line === 2));
});

test('other instructions: WORKDIR USER EXPOSE VOLUME SHELL STOPSIGNAL MAINTAINER', (t) => {
  const df = parseDockerfile('FROM a\nWORKDIR /a b\nUSER a:b\nEXPOSE 80 53/udp\nVOLUME ["/v w"]\nSHELL ["/bin/bash", "-c"]\nSTOPSIGNAL SIGKILL\nMAINTAINER Jane <j@x>\n');
  const [, w, u, e, v, s, st, m] = df.instructions;
  t.like(w, { kind: 'WORKDIR', path: '/a b' });
  t.like(u, { kind: 'USER', user: 'a:b' });
  t.deepEqual((e as Extract<Instruction, { kind: 'EXPOSE' }>).ports, ['80', '53/udp']);
  t.deepEqual((v as Extract<Instruction, { kind: 'VOLUME' }>).paths, ['/v w']);
  t.deepEqual((s as Extract<Instruction, { kind: 'SHELL' }>).shell, ['/bin/bash', '-c']);
  t.like(st, { kind: 'STOPSIGNAL', signal: 'SIGKILL' });
  t.like(m, { kind: 'MAINTAINER', name: 'Jane <j@x>' });
  t.true(df.warnings.some((x) => x.code === 'W_WORKDIR_SPACES' && x.line === 2));
});

test('directives, continuation, comments, stages', (t) => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# ESCAPE=`\n# check=skip=all\nARG V=1\nFROM scratch AS one\nLABEL a=1 `\n# c\n\n  b=2\nFROM one\nCMD ["x"]\n');
  t.deepEqual(df.directives, { escape: '`', syntax: 'docker/dockerfile:1', check: 'skip=all' });
  t.is(df.metaArgs.length, 1);
  t.deepEqual(df.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.map((i) => i.kind)]), [
    [0, 'one', 'scratch', ['LABEL']],
    [1, undefined, 'one', ['CMD']],
  ]);
  const label = df.stages[0]!.instructions[0]!;
  t.deepEqual([label.range.start.line, label.range.end.line], [6, 9]);
  t.true(df.warnings.some((w) => w.code === 'W_EMPTY_CONTINUATION'));
});

// dockerd 20.10 prints these before Step 1 (checked, oracle5/cli2): one per instruction, its text
// joined without the continuations, then one note
test('empty continuation lines: Docker\'s warnings, one per instruction and a closing note', (t) => {
  const df = parseDockerfile('FROM scratch\nRUN true  \\\n\n  && true\nLABEL a=1 \\\n\n b=2 \\\n\n c=3\n');
  t.deepEqual(
    df.warnings.filter((w) => w.code === 'W_EMPTY_CONTINUATION').map((w) => [w.line, w.message]),
    [
      [2, 'Empty continuation line found in:\n    RUN true    && true'],
      [5, 'Empty continuation line found in:\n    LABEL a=1  b=2  c=3'],
      [5, 'Empty continuation lines will become errors in a future release.'],
    ],
  );
});

test('heredocs: several per instruction, <<- strips tabs, quoted delimiter disables expansion', (t) => {
  const r = first('FROM a\nRUN <<A cat; <<-"B" cat\nfirst\nA\n\tsecond\n\tB\nCMD x\n', 'RUN');
  t.deepEqual(r.heredocs.map((h) => [h.name, h.content, h.expand, h.chompTabs]), [
    ['A', 'first\n', true, false],
    ['B', 'second\n', false, true],
  ]);
  t.is(r.range.end.line, 6);
  const c = first('FROM a\nCOPY <<EOF /etc/motd\nhello $X\nEOF\n', 'COPY');
  t.deepEqual(c.sources, []);
  t.is(c.heredocs[0]!.content, 'hello $X\n');
});

const errorRows: [string, string, string, number][] = [
  ['unknown instruction with suggestion', 'FROM a\nCOPPY x y\n', 'E_UNKNOWN_INSTRUCTION', 2],
  ['instruction before FROM', 'LABEL a=b\nFROM a\n', 'E_NO_STAGE', 1],
  ['unknown flag', 'FROM a\nCOPY --foo=1 a b\n', 'E_UNKNOWN_FLAG', 2],
  ['flag on ENV', 'FROM a\nENV --x=1 A=1\n', 'E_UNKNOWN_FLAG', 2],
  ['ADD --from', 'FROM a\nADD --from=x a b\n', 'E_UNKNOWN_FLAG', 2],
  ['bad boolean', 'FROM a\nCOPY --link=maybe a b\n', 'E_FLAG_VALUE', 2],
  ['string flag without value', 'FROM a\nCOPY --from a b\n', 'E_FLAG_VALUE', 2],
  ['COPY one argument', 'FROM a\nCOPY x\n', 'E_ARGUMENTS', 2],
  ['ENV one word', 'FROM a\nENV X\n', 'E_SYNTAX', 2],
  ['ENV hash word', 'FROM a\nENV X=1 # no\n', 'E_SYNTAX', 2],
  ['non-string JSON', 'FROM a\nCMD [1, 2]\n', 'E_SYNTAX', 2],
  ['SHELL not JSON', 'FROM a\nSHELL sh -c\n', 'E_JSON_ARRAY', 2],
  ['bad duration', 'FROM a\nHEALTHCHECK --interval=abc CMD x\n', 'E_DURATION', 2],
  ['duration under 1ms', 'FROM a\nHEALTHCHECK --timeout=500us CMD x\n', 'E_DURATION', 2],
  ['retries < 1', 'FROM a\nHEALTHCHECK --retries=0 CMD x\n', 'E_FLAG_VALUE', 2],
  ['unterminated heredoc', 'FROM a\nRUN <<EOF\necho\n', 'E_HEREDOC', 2],
  ['heredoc name with an unbalanced quote', 'FROM a\nCOPY <<EOF" /x\n', 'E_HEREDOC', 2],
  ['invalid stage name', 'FROM a AS 1x\n', 'E_STAGE_NAME', 1],
  ['FROM extra argument', 'FROM a b\n', 'E_ARGUMENTS', 1],
  ['ONBUILD FROM', 'FROM a\nONBUILD FROM b\n', 'E_ONBUILD', 2],
  ['duplicate escape directive', '# escape=`\n# escape=`\nFROM a\n', 'E_DIRECTIVE', 2],
  ['invalid escape directive', '# escape=x\nFROM a\n', 'E_DIRECTIVE', 1],
  ['no instructions', '# c\n\n', 'E_EMPTY_DOCKERFILE', 2],
  ['bad mount', 'FROM a\nRUN --mount=type=bind,mode=0755,target=/x ls\n', 'E_MOUNT', 2],
  ['bad network', 'FROM a\nRUN --network=bridge ls\n', 'E_FLAG_VALUE', 2],
];
for (const [name, text, code, line] of errorRows) {
  test(`error: ${name} → ${code} at line ${line}`, (t) => {
    const err = t.throws(() => parseDockerfile(text, { file: 'df' }), { instanceOf: DockerfileParseError });
    t.is(err!.code, 'E_DOCKERFILE_PARSE');
    t.is(err!.errors[0]!.code, code as never);
    t.is(err!.errors[0]!.line, line);
    t.true(err!.errors[0]!.message.startsWith(`df:${line}:`));
  });
}

// dockerd 20.10's BFlags words (checked against dockerd, h1/f1 f7 f11 f12 f13: 'dockerfile parse error
// line 2: Unknown flag: bogus', 'Missing a value on flag: chown', 'Duplicate flag specified: chown')
const flagMessageRows: [string, string][] = [
  ['FROM a\nCOPY --bogus=1 a b\n', 'Unknown flag: bogus'],
  ['FROM a\nCOPY --CHOWN=1 a b\n', 'Unknown flag: CHOWN'],
  ['FROM a\nCOPY --chown a b\n', 'Missing a value on flag: chown'],
  ['FROM a\nCOPY --chown=1 --chown=2 a b\n', 'Duplicate flag specified: chown'],
  ['FROM a\nHEALTHCHECK --interval=1s --interval=2s CMD a\n', 'Duplicate flag specified: interval'],
  // strconv.ParseInt(v, 10, 32) as dockerd 20.10's parseHealthcheck (h1/hc1, hc2)
  ['FROM a\nHEALTHCHECK --retries=2147483648 CMD a\n', 'strconv.ParseInt: parsing "2147483648": value out of range'],
  ['FROM a\nHEALTHCHECK --retries=-2147483649 CMD a\n', 'strconv.ParseInt: parsing "-2147483649": value out of range'],
  ['FROM a\nHEALTHCHECK --retries=abc CMD a\n', 'strconv.ParseInt: parsing "abc": invalid syntax'],
  ['FROM a\nHEALTHCHECK --retries=-2147483648 CMD a\n', '--retries must be at least 1 (not -2147483648)'],
];
for (const [text, detail] of flagMessageRows) {
  test(`flag errors worded as dockerd: ${JSON.stringify(text)} → ${detail}`, (t) => {
    const err = t.throws(() => parseDockerfile(text), { instanceOf: DockerfileParseError });
    t.is(err!.errors[0]!.detail, detail);
  });
}

test('errors: all are listed, Docker first', (t) => {
  const err = t.throws(() => parseDockerfile('FROM a\nBOGUS1\nCOPY x\nCMD [1]\n'), { instanceOf: DockerfileParseError });
  t.deepEqual(err!.errors.map((e) => e.line), [4, 2, 3]);
  t.regex(err!.errors[1]!.message, /^Dockerfile:2:1: unknown instruction: BOGUS1/);
});

// dockerd 20.10 reports the bad FROM alone (h1/s6: 'invalid name for build stage: "0", ...');
// the instructions after it are no 'no build stage in current context' problem
test('a refused FROM: the instructions after it are not reported as outside any stage', (t) => {
  const err = t.throws(() => parseDockerfile('FROM a AS 0\nRUN x\nFROM b AS 1\nENV A=1\n'), { instanceOf: DockerfileParseError });
  t.deepEqual(err!.errors.map((e) => [e.line, e.code]), [[1, 'E_STAGE_NAME'], [3, 'E_STAGE_NAME']]);
  const before = t.throws(() => parseDockerfile('ENV A=1\nFROM a AS 0\n'), { instanceOf: DockerfileParseError });
  // an instruction before any FROM still is
  t.deepEqual(new Set(before!.errors.map((e) => e.code)), new Set(['E_NO_STAGE', 'E_STAGE_NAME']));
});

test('unknown instruction message names the suggestion', (t) => {
  const err = t.throws(() => parseDockerfile('FROM a\nCOPPY x y\n'), { instanceOf: DockerfileParseError });
  t.is(err!.errors[0]!.message, 'Dockerfile:2:1: unknown instruction: COPPY (did you mean COPY?)');
});

// dockerd 20.10: "the Dockerfile (sub/My.df) cannot be empty" for 0 bytes; "failed to parse
// sub/c.df: file with no instructions" for comments or blank lines only (checked, oracle5/e-empty-f)
const emptyRows: [string, string, string][] = [
  ['zero bytes', '', 'sub/My.df:1:1: the Dockerfile (sub/My.df) cannot be empty'],
  ['only a comment', '# c\n', 'sub/My.df:1:1: failed to parse sub/My.df: file with no instructions'],
  ['only blank lines', '\n\n  \n', 'sub/My.df:3:1: failed to parse sub/My.df: file with no instructions'],
];
for (const [name, text, message] of emptyRows) {
  test(`empty Dockerfile as dockerd words it: ${name}`, (t) => {
    const err = t.throws(() => parseDockerfile(text, { file: 'sub/My.df' }), { instanceOf: DockerfileParseError });
    t.is(err!.errors[0]!.code, 'E_EMPTY_DOCKERFILE');
    t.is(err!.errors[0]!.message, `${message} (add a FROM instruction)`);
  });
}

const checkRows: [string, string, { buildArgs?: Record<string, string>; target?: string }, string | null, number][] = [
  ['required variable unset', 'FROM a\nLABEL a="${A:?must}"\n', {}, 'E_EXPANSION', 2],
  ['invalid signal', 'FROM a\nSTOPSIGNAL NOPE\n', {}, 'E_SIGNAL', 2],
  ['invalid port', 'FROM a\nEXPOSE abc\n', {}, 'E_PORT', 2],
  ['invalid protocol', 'FROM a\nEXPOSE 80/icmp\n', {}, 'E_PORT', 2],
  ['port from variable', 'FROM a\nARG P=8080\nEXPOSE $P\n', {}, null, 0],
  ['duplicate stage name', 'FROM a AS x\nFROM b AS X\n', {}, 'E_DUPLICATE_STAGE', 2],
  ['unknown target', 'FROM a AS x\n', { target: 'nope' }, 'E_UNKNOWN_TARGET', 1],
  ['stages after target are not evaluated', 'FROM a AS x\nFROM b\nSTOPSIGNAL NOPE\n', { target: 'x' }, null, 0],
  ['build arg feeds expansion', 'FROM a\nARG S\nSTOPSIGNAL $S\n', { buildArgs: { S: 'NOPE' } }, 'E_SIGNAL', 3],
  ['ONBUILD trigger runs in child stage', 'FROM a AS p\nONBUILD STOPSIGNAL NOPE\nFROM p\n', {}, 'E_SIGNAL', 3],
];
for (const [name, text, opts, code, line] of checkRows) {
  test(`checkDockerfile: ${name}`, (t) => {
    const res = checkDockerfile(parseDockerfile(text), opts);
    if (code === null) t.deepEqual(res.errors, []);
    else {
      t.is(res.errors[0]?.code, code as never);
      t.is(res.errors[0]?.line, line);
    }
  });
}

test('checkDockerfile: ARG/ENV scope and precedence', (t) => {
  const text = 'ARG V=meta\nARG B=img\nFROM $B\nARG V\nARG W=w\nENV W=env\nLABEL v=$V w=$W x=${X:-none}\n';
  const res = checkDockerfile(parseDockerfile(text), { buildArgs: { W: 'build', Z: 'unused' } });
  t.deepEqual(res.errors, []);
  const st = res.stages[0]!;
  t.like(st.instructions[0], { kind: 'FROM', image: 'img' });
  const label = st.instructions.at(-1) as Extract<Instruction, { kind: 'LABEL' }>;
  t.deepEqual(label.pairs, [['v', 'meta'], ['w', 'env'], ['x', 'none']]);
  t.true(res.warnings.some((w) => w.code === 'W_UNUSED_BUILD_ARG' && w.message.includes('Z')));
});

test('parseDuration: values and error messages as Go time.ParseDuration', (t) => {
  for (const [s, ns] of [['0', 0], ['1.5s', 1.5e9], ['1h30m', 5400e9], ['500us', 5e5], ['-2ms', -2e6], ['.5s', 5e8]] as const) t.is(parseDuration(s), ns, s);
  // a fraction's nanoseconds are truncated as Go does: dockerd's history for --interval=1.0000000006s
  // --timeout=2.9999999999s reads "1s" "2.999999999s" (checked, h1/hd10; we rounded to 1.000000001s, 3s); 1.234…h is dockerd's Timeout 4444444404444 (h1/hd11)
  for (const [s, ns] of [['1.0000000006s', 1e9], ['2.9999999999s', 2999999999], ['1.23456789012345678901234567890h', 4444444404444]] as const) t.is(parseDuration(s), ns, s);
  for (const [s, message] of [
    // past int64 nanoseconds (dockerd, h1/hd3)
    ['2562047h47m16.854775808s', 'time: invalid duration "2562047h47m16.854775808s"'],
    ['9999999999h', 'time: invalid duration "9999999999h"'],
    ['1', 'time: missing unit in duration "1"'],
    ['1.5', 'time: missing unit in duration "1.5"'],
    ['1s2', 'time: missing unit in duration "1s2"'],
    ['1d', 'time: unknown unit "d" in duration "1d"'],
    ['abc', 'time: invalid duration "abc"'],
    ['', 'time: invalid duration ""'],
    ['.s', 'time: invalid duration ".s"'],
  ] as const) t.throws(() => parseDuration(s), { instanceOf: ValueError, message }, s);
});
