import test from 'ava';
import { canonicalJSON, EncodedJSON } from '../src/index.js';

const table: Array<[string, string, unknown, string]> = [
  ['Go escapes <, >, & and U+2028', 'any', 'a<b>&c\u2028', '"a\\u003cb\\u003e\\u0026c\\u2028"'],
  ['control characters as \\u00XX except \\n \\r \\t', 'any', '\x01\b\f\n\r\t"\\', '"\\u0001\\u0008\\u000c\\n\\r\\t\\"\\\\"'],
  ['non-ASCII kept as UTF-8', 'any', 'é☃', '"é☃"'],
  ['unknown objects: keys sorted', 'any', { b: 1, a: { d: 1, c: 2 } }, '{"a":{"c":2,"d":1},"b":1}'],
  ['undefined omitted, null kept', 'any', { a: undefined, b: null }, '{"b":null}'],
  [
    'config: struct order, map-like fields sorted',
    'config',
    {
      rootfs: { diff_ids: [], type: 'layers' },
      config: { Labels: { z: '1', a: '2' }, Env: ['A=1'], User: 'app', ExposedPorts: { '80/tcp': {}, '443/tcp': {} } },
      os: 'linux',
      architecture: 'amd64',
      created: '2020-01-01T00:00:00Z',
    },
    '{"created":"2020-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"User":"app","ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Env":["A=1"],"Labels":{"a":"2","z":"1"}},"rootfs":{"type":"layers","diff_ids":[]}}',
  ],
  [
    'manifest: schemaVersion, mediaType, config, layers',
    'manifest',
    { layers: [{ size: 1, digest: 'sha256:x', mediaType: 'l' }], config: { size: 2, digest: 'sha256:y', mediaType: 'c' }, mediaType: 'm', schemaVersion: 2 },
    '{"schemaVersion":2,"mediaType":"m","config":{"mediaType":"c","digest":"sha256:y","size":2},"layers":[{"mediaType":"l","digest":"sha256:x","size":1}]}',
  ],
];

for (const [name, value, shape, expected] of table.map(([n, s, v, e]) => [n, v, s, e] as const)) {
  test(`canonicalJSON: ${name}`, (t) => {
    t.is(canonicalJSON(value, shape as never), expected);
  });
}

test('canonicalJSON: map keys in byte order, not UTF-16 order', (t) => {
  // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (F0 …) in bytes, after it in UTF-16.
  t.is(canonicalJSON({ '\u{1F600}': 1, '\uFF5E': 2 }), '{"\uFF5E":2,"\u{1F600}":1}');
});

test('canonicalJSON: EncodedJSON is written as it is, so parts encoded once give the same bytes', (t) => {
  const history = [{ created: '2024-01-01T00:00:00Z', created_by: 'RUN <x> & "y"', empty_layer: true }];
  const config = { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: [] }, history };
  const parts = new EncodedJSON(`[${history.map((h) => canonicalJSON(h, 'history')).join(',')}]`);
  t.is(canonicalJSON({ ...config, history: parts }, 'config'), canonicalJSON(config, 'config'));
  t.is(canonicalJSON({ a: new EncodedJSON('[1,2]') }), '{"a":[1,2]}');
});
