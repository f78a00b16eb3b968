/**
 * How a name that is not here is reported, as dockerd 20.10 (checked: docker history/tag/images
 * --filter before=/since= with each name below): those look the name up as a tagged reference and
 * say 'No such image: nosuch:latest' (familiar, tag added); an image ID or digest reference is
 * named as given; rmi and image inspect keep the name as given. We printed the bare name
 * ('image not found: nosuch' for history). images' invalid filters are dockerd's errors: exit 1
 * (we exited 125 as for a usage error), 'dangling=[maybe]'.
 */
import test from 'ava';
import { join } from 'node:path';
import { notFoundName } from '../src/commands/image-output.js';
import { runMain as run, tempDir } from './helpers.js';

const ID = `sha256:${'0'.repeat(64)}`;
const rows: Array<[string, string]> = [
  ['nosuch', 'nosuch:latest'],
  ['nosuch:2', 'nosuch:2'],
  ['0000000', '0000000:latest'],
  ['example.com/x/y', 'example.com/x/y:latest'],
  ['docker.io/library/nosuch:3', 'nosuch:3'],
  [ID, ID],
  [`x@${ID}`, `x@${ID}`],
  ['Abc', 'Abc'],
];
for (const [name, shown] of rows) test(`notFoundName(${name}) = ${shown}`, (t) => t.is(notFoundName(name), shown));

test('history, tag and images --filter before/since name a missing image as dockerd; bad filters exit 1', async (t) => {
  const root = join(await tempDir(t), 'store');
  const cases: Array<[string[], string]> = [
    [['history', 'nosuch'], 'Error response: No such image: nosuch:latest\n'],
    [['tag', 'example.com/x/y', 'a:1'], 'Error response: No such image: example.com/x/y:latest\n'],
    [['images', '--filter', 'before=nosuch'], 'Error response: No such image: nosuch:latest\n'],
    [['images', '--filter', `since=${ID}`], `Error response: No such image: ${ID}\n`],
    [['rmi', 'nosuch'], 'Error: No such image: nosuch\n'],
  ];
  for (const [argv, stderr] of cases) t.deepEqual(await run(root, argv), { code: 1, stdout: '', stderr }, argv.join(' '));
  const bad = await run(root, ['images', '--filter', 'dangling=maybe']);
  t.is(bad.code, 1);
  t.is(bad.stderr.split('\n')[0], "error: Invalid filter 'dangling=[maybe]'");
  t.is((await run(root, ['images', '--filter', 'size=1'])).code, 1);
});
