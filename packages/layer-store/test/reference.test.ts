import test from 'ava';
import { parseReference } from '../src/index.js';

const D = `sha256:${'a'.repeat(64)}`;

// input → [full, familiar] or an error code
const table: Array<[string, [string, string] | 'E_REFERENCE']> = [
  ['hello', ['docker.io/library/hello:latest', 'hello:latest']],
  ['hello:1.0', ['docker.io/library/hello:1.0', 'hello:1.0']],
  ['user/app', ['docker.io/user/app:latest', 'user/app:latest']],
  ['docker.io/library/hello', ['docker.io/library/hello:latest', 'hello:latest']],
  ['index.docker.io/library/hello:2', ['docker.io/library/hello:2', 'hello:2']],
  ['docker.io/hello', ['docker.io/library/hello:latest', 'hello:latest']],
  ['library/hello', ['docker.io/library/hello:latest', 'hello:latest']],
  ['docker.io/library/a/b', ['docker.io/library/a/b:latest', 'library/a/b:latest']],
  ['localhost/app', ['localhost/app:latest', 'localhost/app:latest']],
  ['localhost:5000/a/b:t', ['localhost:5000/a/b:t', 'localhost:5000/a/b:t']],
  ['registry.example.com/x/y:v1.2_3-rc', ['registry.example.com/x/y:v1.2_3-rc', 'registry.example.com/x/y:v1.2_3-rc']],
  ['Foo.com/x', ['Foo.com/x:latest', 'Foo.com/x:latest']],
  [`hello@${D}`, [`docker.io/library/hello@${D}`, `hello@${D}`]],
  [`hello:1@${D}`, [`docker.io/library/hello:1@${D}`, `hello:1@${D}`]],
  ['a__b/c-d.e', ['docker.io/a__b/c-d.e:latest', 'a__b/c-d.e:latest']],
  ['a---b', ['docker.io/library/a---b:latest', 'a---b:latest']],
  ['Hello', 'E_REFERENCE'],
  ['user/App', 'E_REFERENCE'],
  ['Up/x', 'E_REFERENCE'], // Docker 20.10: no dot, port or localhost, so not a registry: uppercase path
  ['hello:', 'E_REFERENCE'],
  ['hello:-x', 'E_REFERENCE'],
  [':tag', 'E_REFERENCE'],
  ['', 'E_REFERENCE'],
  ['a//b', 'E_REFERENCE'],
  ['_a', 'E_REFERENCE'],
  ['a_', 'E_REFERENCE'],
  ['a...b', 'E_REFERENCE'],
  ['hello@sha256:abc', 'E_REFERENCE'],
  ['a'.repeat(64), 'E_REFERENCE'],
  [`x/${'a'.repeat(260)}`, 'E_REFERENCE'],
  [`hello:${'t'.repeat(129)}`, 'E_REFERENCE'],
];

for (const [input, expected] of table) {
  test(`parseReference ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, (t) => {
    if (expected === 'E_REFERENCE') {
      const err = t.throws(() => parseReference(input)) as Error & { code: string; hint?: string };
      t.is(err.code, 'E_REFERENCE');
      t.truthy(err.hint);
    } else {
      const r = parseReference(input);
      t.is(r.full(), expected[0]);
      t.is(r.familiar(), expected[1]);
    }
  });
}

test('uppercase repository error says it must be lowercase', (t) => {
  t.throws(() => parseReference('Hello'), { message: /must be lowercase/ });
});

test('digest-only reference has no tag', (t) => {
  const r = parseReference(`hello@${D}`);
  t.is(r.tag, undefined);
  t.is(r.digest, D as never);
  t.is(r.name, 'docker.io/library/hello');
  t.is(r.familiarName(), 'hello');
});
