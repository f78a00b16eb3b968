import test from 'ava';
import { applyConfigStep, healthcheckOverrideNote, scratchConfig, normalizeWorkdir, exposedPortsOf, type ConfigState, type ConfigStep } from '../src/build/config.js';
import { goDuration, goQuoteList, goQuoteRune } from '../src/build/gofmt.js';
import { BuildError } from '../src/build/errors.js';
import { expandStep } from '../src/build/expand.js';
import { parseDockerfile } from '@tsbuild/parser';

const fresh = (): ConfigState => ({ config: scratchConfig(), cmdSet: false });
const run = (steps: ConfigStep[], start: ConfigState = fresh()): { state: ConfigState; history: string[] } => {
  let state = start;
  const history: string[] = [];
  for (const s of steps) {
    const r = applyConfigStep(state, s);
    state = r.state;
    history.push(r.createdBy);
  }
  return { state, history };
};

// created_by strings observed with `docker history --no-trunc` on Docker 20.10's classic builder
const historyRows: Array<[string, ConfigStep, string]> = [
  ['ENV', { kind: 'ENV', pairs: [['E', 'v'], ['F', 'a b']] }, '/bin/sh -c #(nop)  ENV E=v F=a b'],
  ['LABEL', { kind: 'LABEL', pairs: [['l1', 'x'], ['l 2', 'y']] }, '/bin/sh -c #(nop)  LABEL l1=x l 2=y'],
  ['EXPOSE as expanded (expandStep sorted the raw words)', { kind: 'EXPOSE', ports: ['100-102', '80', '90/udp'] }, '/bin/sh -c #(nop)  EXPOSE 100-102 80 90/udp'],
  ['ENTRYPOINT', { kind: 'ENTRYPOINT', cmd: { form: 'exec', args: ['/bin/sh'] } }, '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh"]'],
  ['USER', { kind: 'USER', user: 'app' }, '/bin/sh -c #(nop)  USER app'],
  ['WORKDIR', { kind: 'WORKDIR', path: 'rel' }, '/bin/sh -c #(nop) WORKDIR /rel'],
  ['VOLUME', { kind: 'VOLUME', paths: ['/v1', '/v2'] }, '/bin/sh -c #(nop)  VOLUME [/v1 /v2]'],
  ['STOPSIGNAL', { kind: 'STOPSIGNAL', signal: 'SIGTERM' }, '/bin/sh -c #(nop)  STOPSIGNAL SIGTERM'],
  ['SHELL uses the new shell', { kind: 'SHELL', shell: ['/bin/sh', '-xc'] }, '/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]'],
  ['HEALTHCHECK', { kind: 'HEALTHCHECK', health: { Test: ['CMD-SHELL', 'echo ok'], Interval: 5e9, Retries: 2 } }, `/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "echo ok"] "5s" "0s" "0s" '\\x02'}`],
  ['ONBUILD', { kind: 'ONBUILD', trigger: 'run echo built' }, '/bin/sh -c #(nop)  ONBUILD run echo built'],
  ['MAINTAINER', { kind: 'MAINTAINER', name: 'me' }, '/bin/sh -c #(nop)  MAINTAINER me'],
  ['ARG', { kind: 'ARG', args: [{ name: 'A', value: '1' }] }, '/bin/sh -c #(nop)  ARG A=1'],
  ['ARG without value', { kind: 'ARG', args: [{ name: 'B' }] }, '/bin/sh -c #(nop)  ARG B'],
  ['CMD shell form', { kind: 'CMD', cmd: { form: 'shell', command: 'echo c' } }, '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo c"]'],
];
for (const [name, step, expected] of historyRows) {
  test(`history: ${name} as Docker 20.10 writes it`, (t) => {
    t.is(applyConfigStep(fresh(), step).createdBy, expected);
  });
}

test('ENV: later value replaces in place, new keys append', (t) => {
  const { state } = run([{ kind: 'ENV', pairs: [['A', '1'], ['B', '2']] }, { kind: 'ENV', pairs: [['A', '3']] }]);
  t.deepEqual(state.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=3', 'B=2']);
});

test('ENTRYPOINT resets an inherited Cmd but keeps one set in this stage', (t) => {
  const inherited: ConfigState = { config: { Cmd: ['sh'] }, cmdSet: false };
  t.is(run([{ kind: 'ENTRYPOINT', cmd: { form: 'exec', args: ['x'] } }], inherited).state.config.Cmd, undefined);
  const own = run([{ kind: 'CMD', cmd: { form: 'exec', args: ['y'] } }, { kind: 'ENTRYPOINT', cmd: { form: 'exec', args: ['x'] } }]);
  t.deepEqual(own.state.config.Cmd, ['y']);
});

test('CMD []: an empty Cmd (Docker 20.10 config shows "Cmd":[]) that a later ENTRYPOINT resets; shell forms use the current SHELL', (t) => {
  const empty = run([{ kind: 'CMD', cmd: { form: 'exec', args: [] } }]);
  t.deepEqual(empty.state.config.Cmd, []);
  t.is(run([{ kind: 'CMD', cmd: { form: 'exec', args: [] } }, { kind: 'ENTRYPOINT', cmd: { form: 'exec', args: ['x'] } }]).state.config.Cmd, undefined);
  const s = run([{ kind: 'SHELL', shell: ['/bin/bash', '-c'] }, { kind: 'CMD', cmd: { form: 'shell', command: 'x' } }]);
  t.deepEqual(s.state.config.Cmd, ['/bin/bash', '-c', 'x']);
});

test('WORKDIR: relative joined to the previous one and cleaned, absolute kept as written (Docker 20.10)', (t) => {
  const rows: Array<[string | undefined, string, string]> = [
    [undefined, 'a', '/a'],
    ['/a', 'b/../c', '/a/c'],
    ['/a', '/x/', '/x/'],
    ['/a', '//x//y/', '//x//y/'],
    ['/a', '/b/../c/./d/', '/b/../c/./d/'],
    ['/b/../c/./d/', 'e/', '/c/d/e'],
    ['', '.', '/'],
    ['/a/', '..', '/'],
  ];
  for (const [cur, p, want] of rows) t.is(normalizeWorkdir(cur, p), want);
  // Docker 20.10: a WORKDIR that expands to nothing fails
  t.throws(() => normalizeWorkdir('/a', ''), { message: 'cannot normalize nothing' });
});

test('EXPOSE: ranges expanded, protocol lower-cased, ip:host stripped', (t) => {
  t.deepEqual(exposedPortsOf('8000-8002'), ['8000/tcp', '8001/tcp', '8002/tcp']);
  t.deepEqual(exposedPortsOf('81/Udp'), ['81/udp']);
  t.deepEqual(exposedPortsOf('127.0.0.1:80:81'), ['81/tcp']);
});

test('EXPOSE: odd specs parse as nat.ParsePortSpec in Docker 20.10 (checked against dockerd)', (t) => {
  for (const [spec, keys] of [
    ['80/tcp/udp', ['80/tcp']],
    ['81/', ['81/tcp']],
    ['1.2.3.4::82', ['82/tcp']],
    [':83', ['83/tcp']],
    ['1-2:84', ['84/tcp']],
    ['[::1]:85:85/UDP', ['85/udp']],
    ['86-87/SCTP', ['86/sctp', '87/sctp']],
    ['0', ['0/tcp']],
  ] as const) t.deepEqual(exposedPortsOf(spec), [...keys], spec);
  for (const [spec, message] of [
    ['abc', 'Invalid containerPort: abc'],
    ['80/foo', 'Invalid proto: foo'],
    ['80-70', 'Invalid containerPort: 80-70'],
    ['70000', 'Invalid containerPort: 70000'],
    ['/tcp', 'No port specified: /tcp<empty>'],
    ['8080:80-81', 'Invalid ranges specified for container and host Ports: 80-81 and 8080'],
    ['x.y:1:2', 'Invalid ip address: x.y'],
    ['a:80', 'Invalid hostPort: a'],
  ] as const) t.throws(() => exposedPortsOf(spec), { instanceOf: BuildError, message }, spec);
});

test('STOPSIGNAL: names in any case with or without SIG, RT signals and non-zero numbers pass; others fail as signal.ParseSignal', (t) => {
  for (const ok of ['SIGTERM', 'sigterm', 'KILL', '9', '-1', 'RTMIN+3', 'SIGRTMAX-2', 'SIGRTMAX']) {
    t.is(run([{ kind: 'STOPSIGNAL', signal: ok }]).state.config.StopSignal, ok);
  }
  for (const bad of ['SIGFOO', '0', 'RTMIN+16', '']) {
    t.throws(() => run([{ kind: 'STOPSIGNAL', signal: bad }]), { instanceOf: BuildError, message: `Invalid signal: ${bad}` }, bad);
  }
});

// dockerd 20.10 (checked, h1/b4 b21 b22): 'VOLUME ""', 'VOLUME /a $EMPTY' and 'VOLUME ["$EMPTY"]'
// fail at dispatch 'VOLUME specified can not be an empty string'; we added a volume named ''
test('VOLUME: a path that expands to nothing fails as dispatchVolume', (t) => {
  for (const text of ['VOLUME ""', 'VOLUME /a $EMPTY', 'VOLUME ["$EMPTY"]']) {
    const instr = parseDockerfile(`FROM scratch\n${text}\n`).stages[0]!.instructions[0]!;
    const step = expandStep(instr, () => undefined, '\\');
    t.throws(() => run([step as ConfigStep]), { instanceOf: BuildError, message: 'VOLUME specified can not be an empty string' }, text);
  }
});

// dockerd 20.10 (checked, h1/c3): 'ENV $EMPTY=x' fails 'invalid environment variable: =x' (the
// commit container's create runs opts.ValidateEnv); we stored an entry '=x'
test('ENV: a name that expands to nothing fails as dockerd', (t) => {
  const instr = parseDockerfile('FROM scratch\nENV A=1 $EMPTY=x\n').stages[0]!.instructions[0]!;
  const step = expandStep(instr, () => undefined, '\\');
  t.throws(() => run([step as ConfigStep]), { instanceOf: BuildError, message: 'invalid environment variable: =x' });
});

// dockerd 20.10 prints 'Note: overriding previous HEALTHCHECK: [CMD wget -q x]' after the Step line
// of a HEALTHCHECK that replaces one (checked, h1/x6); none after NONE or without one
test('HEALTHCHECK: the override note as dispatchHealthcheck prints it', (t) => {
  t.is(healthcheckOverrideNote({ Healthcheck: { Test: ['CMD', 'wget', '-q', 'x'] } }), 'Note: overriding previous HEALTHCHECK: [CMD wget -q x]\n');
  t.is(healthcheckOverrideNote({ Healthcheck: { Test: ['CMD-SHELL', 'echo hi'] } }), 'Note: overriding previous HEALTHCHECK: [CMD-SHELL echo hi]\n');
  t.is(healthcheckOverrideNote({ Healthcheck: { Test: ['NONE'] } }), undefined);
  t.is(healthcheckOverrideNote({}), undefined);
});

test('LABEL merges, MAINTAINER sets author, HEALTHCHECK omits zero durations', (t) => {
  const { state } = run([
    { kind: 'LABEL', pairs: [['b', '1']] },
    { kind: 'LABEL', pairs: [['a', '2'], ['b', '3']] },
    { kind: 'MAINTAINER', name: 'me' },
    { kind: 'HEALTHCHECK', health: { Test: ['NONE'] } },
  ]);
  t.deepEqual(state.config.Labels, { a: '2', b: '3' });
  t.is(state.author, 'me');
  t.deepEqual(state.config.Healthcheck, { Test: ['NONE'] });
});

test('Go formatting helpers', (t) => {
  const d: Array<[number, string]> = [[0, '0s'], [5e9, '5s'], [90e9, '1m30s'], [36e11, '1h0m0s'], [1.5e9, '1.5s'], [5e8, '500ms'], [1500, '1.5µs']];
  for (const [ns, s] of d) t.is(goDuration(ns), s);
  t.is(goQuoteRune(3), "'\\x03'");
  t.is(goQuoteRune(65), "'A'");
  // HEALTHCHECK --retries=N history as dockerd 20.10 writes it (checked, h1/h1); 1114112 threw
  // 'Invalid code point' and failed the build
  for (const [n, q] of [[55296, "'\ufffd'"], [1114112, "'\ufffd'"], [39, "'\\''"], [160, "'\\u00a0'"], [917505, "'\\U000e0001'"]] as const) t.is(goQuoteRune(n), q, String(n));
  t.is(goQuoteList(['a\tb', 'q"']), '["a\\tb" "q\\""]');
});

// strconv.Quote escapes what unicode.IsPrint refuses; dockerd 20.10's CMD history (checked, h1/u1,
// u4, u5) for CMD ["\u0001", "\u007f", "\u00a0", ...]: we wrote NBSP, ZWSP, BOM, U+2028... raw
const quoteRows: Array<[string, string]> = [
  ['\u0001', '"\\x01"'],
  ['\u007f', '"\\x7f"'],
  ['\u00a0', '"\\u00a0"'],
  ['\u2028', '"\\u2028"'],
  ['\u200b', '"\\u200b"'],
  ['\ufeff', '"\\ufeff"'],
  ['\u0085', '"\\u0085"'],
  ['\uffff', '"\\uffff"'],
  ['\u00ad', '"\\u00ad"'],
  ['\u0378', '"\\u0378"'],
  ['\u3000', '"\\u3000"'],
  ['\u{e0001}', '"\\U000e0001"'],
  ['\u001b[0m', '"\\x1b[0m"'],
  ['é a\u0300 😀', '"é a\u0300 😀"'],
];
for (const [input, quoted] of quoteRows) {
  test(`goQuote as strconv.Quote: ${JSON.stringify(input)} → ${quoted}`, (t) => {
    t.is(goQuoteList([input]), `[${quoted}]`);
  });
}

test('EXPOSE: raw words sorted before expansion, then expanded in order (Docker 20.10 parseExpose + dispatchExpose; checked against dockerd)', (t) => {
  const df = parseDockerfile('FROM a\nEXPOSE ${PORTS} 443 $PORTS 100-102\n');
  const instr = df.instructions.find((i) => i.kind === 'EXPOSE')!;
  const step = expandStep(instr, (n) => (n === 'PORTS' ? '80 90/udp' : undefined), '\\');
  t.deepEqual(step, { kind: 'EXPOSE', ports: ['80', '90/udp', '80', '90/udp', '100-102', '443'] }, '$PORTS < ${PORTS} < 100-102 in byte order');
  t.is(applyConfigStep(fresh(), step as ConfigStep).createdBy, '/bin/sh -c #(nop)  EXPOSE 80 90/udp 80 90/udp 100-102 443');
});
