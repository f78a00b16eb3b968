/**
 * Input and output paths that do not work: a coded error with dockerd's wording (`open x: no such
 * file or directory`, `read x: is a directory`, `invalid output path: directory "d" does not
 * exist`), exit 1; never a crash or an internal error.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runMain as run, tempDir } from './helpers.js';

test('load -i, import and save/export -o with paths that do not work fail with dockerd\'s wording', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const missing = join(dir, 'nosuch.tar');
  const first = (stderr: string): string => stderr.split('\n')[0]!;
  const cases: Array<[string[], string]> = [
    [['load', '-i', missing], `error: open ${missing}: no such file or directory`],
    [['import', missing], `error: open ${missing}: no such file or directory`],
    [['load', '-i', dir], `error: read ${dir}: is a directory`],
    [['import', dir], `error: read ${dir}: is a directory`],
  ];
  for (const [argv, message] of cases) {
    const r = await run(root, argv);
    t.is(r.code, 1, argv.join(' '));
    t.is(first(r.stderr), message);
    t.regex(r.stderr, /\nhint: /);
  }
  t.true((await run(root, ['import', '-', 'lsfile:1'], { stdin: Buffer.alloc(0) })).code === 0);
  for (const cmd of ['save', 'export']) {
    const r = await run(root, [cmd, '-o', join(dir, 'nodir/x.tar'), 'lsfile:1']);
    t.deepEqual([r.code, first(r.stderr)], [1, `error: invalid output path: directory "${join(dir, 'nodir')}" does not exist`], cmd);
  }
  t.false(existsSync(join(dir, 'nodir')));
});
