/**
 * Sizes as the docker 20.10 CLI prints them (checked against dockerd): images SIZE and history SIZE
 * are units.HumanSizeWithPrecision(n, 3); images' VirtualSize, system df and prune's "Total
 * reclaimed space" are units.HumanSize, precision 4 (docker printed VirtualSize 1.984MB for a
 * 1.98MB image, 'Total reclaimed space: 1.235MB' for a 1234567-byte layer, df '1.518GB'; we printed
 * 3 digits everywhere). Go's %g turns to an exponent at 10^precision ("1e+03kB"). system df shows
 * the reclaimable share only when the total is not 0, and never for the build cache (docker: '0B').
 */
import test from 'ava';
import { join } from 'node:path';
import { humanSize } from '../src/commands/image-output.js';
import { runMain as run, tempDir } from './helpers.js';

const rows: Array<[number, number, string]> = [
  [1984306, 3, '1.98MB'],
  [1984306, 4, '1.984MB'],
  [1234567, 4, '1.235MB'],
  [1_518_000_000, 4, '1.518GB'],
  [0, 4, '0B'],
  [1000, 4, '1kB'],
  [999_950, 3, '1e+03kB'],
  [999_960, 4, '1000kB'],
  [999_999_999, 4, '1000MB'],
  [12, 4, '12B'],
];
for (const [n, p, s] of rows) test(`humanSize(${n}, ${p}) = ${s}`, (t) => t.is(humanSize(n, p), s));

test('system df: 4 significant digits, no share for an empty total or the build cache', async (t) => {
  const root = join(await tempDir(t), 'store');
  const df = await run(root, ['system', 'df']);
  t.is(df.code, 0, df.stderr);
  for (const line of df.stdout.trim().split('\n').slice(1)) t.regex(line, /\s0B\s+0B$/, line);
});
