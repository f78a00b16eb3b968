import test from 'ava';
import { Template, TemplateError, goString } from '../src/template.js';

const image = {
  Id: 'sha256:abc',
  RepoTags: ['app:1', 'app:latest'],
  Size: 1234,
  Config: {
    Env: ['PATH=/bin', 'A=b c'],
    Labels: { version: '1.2', 'org.opencontainers.image.title': 'x' },
    Cmd: ['sh', '-c', 'echo hi'],
    Entrypoint: null,
    Volumes: null,
    ExposedPorts: { '80/tcp': {} },
    User: '',
  },
  RootFS: { Type: 'layers', Layers: ['sha256:l1', 'sha256:l2'] },
};

// [template, expected output] — outputs as Go's text/template prints them (checked against `docker inspect --format`)
const cases: Array<[string, string]> = [
  ['{{.Id}}', 'sha256:abc'],
  ['id={{.Id}} size={{.Size}}', 'id=sha256:abc size=1234'],
  ['{{.Config.Cmd}}', '[sh -c echo hi]'],
  ['{{.Config.Labels}}', 'map[org.opencontainers.image.title:x version:1.2]'],
  ['{{.Config.Labels.version}}', '1.2'],
  ['{{index .Config.Labels "org.opencontainers.image.title"}}', 'x'],
  ['{{index .RepoTags 1}}', 'app:latest'],
  ['{{json .Config.Cmd}}', '["sh","-c","echo hi"]'],
  ['{{.Config.Entrypoint}}', '[]'],
  ['{{.Config.Labels.nosuch}}', '<no value>'],
  ['{{.Config.Volumes}}', 'map[]'],
  ['{{.Config.Shell}} {{.Config.Healthcheck}} {{json .Config.OnBuild}}', '[] <nil> null'],
  ['{{json .Config.Entrypoint}}', 'null'],
  ['{{join .Config.Env ","}}', 'PATH=/bin,A=b c'],
  ['{{range .Config.Env}}{{println .}}{{end}}', 'PATH=/bin\nA=b c\n'],
  ['{{range $i, $e := .RootFS.Layers}}{{$i}}:{{$e}} {{end}}', '0:sha256:l1 1:sha256:l2 '],
  ['{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', 'org.opencontainers.image.title=x;version=1.2;'],
  ['{{range $p, $_ := .Config.ExposedPorts}}{{$p}}{{end}}', '80/tcp'],
  ['{{if .Config.User}}user{{else}}root{{end}}', 'root'],
  ['{{if eq .Size 1}}one{{else if gt .Size 1000}}big{{else}}small{{end}}', 'big'],
  ['{{with .Config.Labels.version}}v{{.}}{{end}}', 'v1.2'],
  ['{{with .Config.User}}u{{else}}none{{end}}', 'none'],
  ['{{range .Config.Entrypoint}}x{{else}}empty{{end}}', 'empty'],
  ['{{len .RepoTags}} {{len .Config.Labels}}', '2 2'],
  ['{{.Id | upper}}', 'SHA256:ABC'],
  ['{{lower "AbC"}} {{title "hello world"}}', 'abc Hello World'],
  ['{{printf "%s-%d" .Id .Size}}', 'sha256:abc-1234'],
  ['{{printf "%q" .Id}}', '"sha256:abc"'],
  ['{{(index .RepoTags 0) | len}}', '5'],
  ['a  {{- .Size -}}  b', 'a1234b'],
  ['{{/* a comment */}}x', 'x'],
  ['{{$t := index .RepoTags 0}}{{$t}}', 'app:1'],
  ['{{$.Id}}', 'sha256:abc'],
  ['{{range .RepoTags}}{{$.Size}} {{end}}', '1234 1234 '],
  ['{{split "a:b" ":"}}', '[a b]'],
  ['{{and .Size .Id}} {{or .Config.User "none"}} {{not .Config.User}}', 'sha256:abc none true'],
  ['{{json .}}', JSON.stringify(image)],
  ['{{truncate .Id 6}}', 'sha256'],
];

for (const [tpl, want] of cases) {
  test(`template ${tpl}`, (t) => {
    t.is(Template.parse(tpl).execute(image), want);
  });
}

// templates Docker rejects, with the words its error carries
const bad: Array<[string, RegExp]> = [
  ['{{.Id', /unclosed action/],
  ['{{if .Id}}x', /missing \{\{end\}\}/],
  ['{{end}}', /unexpected \{\{end\}\}/],
  ['{{nosuch .Id}}', /function "nosuch" not defined/],
  ['{{$x}}', /undefined variable: \$x/],
  ['{{index .RepoTags 5}}', /index out of range/],
  ['{{.Id.Foo}}', /can't evaluate field Foo in type string/],
  ['{{.Config.Missing}}', /map has no entry for key "Missing"/],
  ['{{"open}}', /unterminated string|unclosed action/],
];
for (const [tpl, re] of bad) {
  test(`template error ${tpl}`, (t) => {
    const err = t.throws(() => Template.parse(tpl).execute(image), { instanceOf: TemplateError });
    t.regex(err?.message ?? '', re);
  });
}

test('goString prints JSON values as Go does', (t) => {
  t.is(goString({ b: [1, 'x'], a: null }), 'map[a:<nil> b:[1 x]]');
  t.is(goString(true), 'true');
  t.is(goString([]), '[]');
});
