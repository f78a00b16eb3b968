/**
 * prune --filter for images, as Docker 20.10's image prune: only dangling images that match every
 * filter go (until=, label=KEY[=VALUE], label!=…); we ignored --filter and removed every dangling
 * image. Errors in dockerd's words (checked against dockerd): 'failed to parse value as time or
 * duration: "abc"', 'more than one until filter specified', 'Invalid filter 'bogus''.
 */
import test from 'ava';
import { join } from 'node:path';
import { imagePruneFilters } from '../src/commands/prune.js';
import { runMain as run, tempDir } from './helpers.js';

async function untagged(root: string, epoch: number, ...changes: string[]): Promise<string> {
  const r = await run(root, ['import', ...changes.flatMap((c) => ['-c', c]), '-'], { stdin: Buffer.alloc(0), env: { SOURCE_DATE_EPOCH: String(epoch) } });
  return r.stdout.trim();
}

test('prune --filter removes only the dangling images that match', async (t) => {
  const root = join(await tempDir(t), 'store');
  const old = await untagged(root, 1_000_000, 'LABEL tier=web keep=no');
  const oldKeep = await untagged(root, 1_000_001, 'LABEL tier=web keep=yes');
  const recent = await untagged(root, 2_000_000_000, 'LABEL tier=web keep=no');
  const plain = await untagged(root, 1_000_002);
  const left = async (): Promise<string[]> => (await run(root, ['images', '-a', '-q', '--no-trunc'])).stdout.trim().split('\n').filter(Boolean).sort();

  const byLabel = await run(root, ['prune', '-f', '--filter', 'label=tier=web', '--filter', 'label!=keep=yes', '--filter', 'until=2001-01-01T00:00:00Z']);
  t.is(byLabel.code, 0, byLabel.stderr);
  t.regex(byLabel.stdout, new RegExp(`^Deleted Images:\ndeleted: ${old}\n`));
  t.deepEqual(await left(), [oldKeep, recent, plain].sort());

  // until as a duration before now: the image dated 2033 is kept
  const byAge = await run(root, ['prune', '-f', '--filter', 'until=1h']);
  t.is(byAge.code, 0, byAge.stderr);
  t.deepEqual(await left(), [recent]);
});

test('prune --filter errors as dockerd words them', async (t) => {
  const root = join(await tempDir(t), 'store');
  const cases: Array<[string[], string, number]> = [
    [['--filter', 'until=abc'], 'error: failed to parse value as time or duration: "abc"', 1],
    [['--filter', 'until=1h', '--filter', 'until=2h'], 'error: more than one until filter specified', 1],
    [['--filter', 'bogus=1'], "error: Invalid filter 'bogus'", 1],
    [['--filter', 'label'], 'error: invalid argument "label" for "--filter" flag: bad format of filter (expected name=value)', 125],
  ];
  for (const [flags, message, code] of cases) {
    const r = await run(root, ['prune', '-f', ...flags]);
    t.is(r.code, code, flags.join(' '));
    t.is(r.stderr.split('\n')[0], message);
  }
});

const now = new Date('2026-01-02T00:00:00Z');
const times: Array<[string, string]> = [
  ['24h', '2026-01-01T00:00:00.000Z'],
  ['1h30m', '2026-01-01T22:30:00.000Z'],
  ['1.5h', '2026-01-01T22:30:00.000Z'],
  ['90s', '2026-01-01T23:58:30.000Z'],
  ['0', '2026-01-02T00:00:00.000Z'],
  ['1700000000', '2023-11-14T22:13:20.000Z'],
  ['2025-06-01T12:00:00Z', '2025-06-01T12:00:00.000Z'],
];
for (const [value, iso] of times) {
  test(`prune until=${value}`, (t) => t.is(imagePruneFilters([`until=${value}`], now).until?.toISOString(), iso));
}
