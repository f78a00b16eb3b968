/**
 * prune --filter for images, as Docker 20.10's image prune: only dangling images that match every
 * filter go (until=, label=KEY[=VALUE], label!=…); we ignored --filter and removed every dangling
 * image. Errors in dockerd's words (checked against dockerd): 'failed to parse value as time or
 * duration: "abc"', 'more than one until filter specified', 'Invalid filter 'bogus''.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
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

/** A tar of one file, as `import` takes it. */
function oneFileTar(dir: string): Buffer {
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'rootfs', 'f'), 'content\n');
  return execFileSync('tar', ['-C', join(dir, 'rootfs'), '--mtime=@0', '--owner=0', '--group=0', '-c', 'f']);
}

async function idAndLayers(root: string, ref: string): Promise<{ id: string; layers: string[] }> {
  const [img] = JSON.parse((await run(root, ['inspect', ref])).stdout) as Array<{ Id: string; RootFS: { Layers: string[] } }>;
  return { id: img!.Id, layers: img!.RootFS.Layers };
}

// dockerd 20.10 (checked: docker image prune -a -f --filter label=hleft=1 on hleft-a, hleft-a:two,
// hleft-b and an untagged image): every image goes, each as 'untagged: REF' per reference, then
// 'deleted: ID' and its released layers; we refused -a with a hint
test('prune -a removes tagged images too, filters honoured', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const tar = oneFileTar(dir);
  const env = { SOURCE_DATE_EPOCH: '1000000' };
  t.is((await run(root, ['import', '-', 'pa:1'], { stdin: tar, env })).code, 0);
  t.is((await run(root, ['tag', 'pa:1', 'pa:2'])).code, 0);
  t.is((await run(root, ['import', '-c', 'LABEL tier=x', '-', 'pb'], { stdin: tar, env })).code, 0);
  const loose = await untagged(root, 1_000_001, 'LABEL tier=y');
  const a = await idAndLayers(root, 'pa:1');
  const b = await idAndLayers(root, 'pb');
  t.deepEqual(a.layers, b.layers);

  const byLabel = await run(root, ['prune', '-a', '-f', '--filter', 'label=tier=x']);
  t.is(byLabel.code, 0, byLabel.stderr);
  // the layer stays: pa has it
  t.regex(byLabel.stdout, new RegExp(`^Deleted Images:\nuntagged: pb:latest\ndeleted: ${b.id}\n\nTotal reclaimed space: \\d`));

  const rest = await run(root, ['prune', '--all', '-f']);
  t.is(rest.code, 0, rest.stderr);
  const blocks = rest.stdout.split('\n\n')[0]!;
  t.true(blocks.includes(`untagged: pa:1\nuntagged: pa:2\ndeleted: ${a.id}\ndeleted: ${a.layers[0]}\n`), rest.stdout);
  t.true(blocks.includes(`deleted: ${loose}\n`), rest.stdout);
  t.regex(rest.stdout, /\n\nTotal reclaimed space: [1-9][0-9.]*[kM]?B\n$/);
  t.is((await run(root, ['images', '-a', '-q'])).stdout, '');
});

test('system prune -a also removes the build cache records, in docker system prune shape', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  t.is((await run(root, ['import', '-', 'sa'], { stdin: oneFileTar(dir) })).code, 0);
  const record = 'ab'.repeat(32);
  mkdirSync(join(root, 'cache'), { recursive: true });
  writeFileSync(join(root, 'cache', `${record}.json`), JSON.stringify({ lastUsed: '2020-01-01T00:00:00Z', blobs: [] }));
  // without -a: dangling images only, the cache stays
  const plain = await run(root, ['system', 'prune', '-f']);
  t.is(plain.stdout, 'Total reclaimed space: 0B\n');
  t.true(existsSync(join(root, 'cache', `${record}.json`)));
  const ask = await run(root, ['system', 'prune', '-a', '--filter', 'label=k=v'], { stdin: 'n\n' });
  t.is(ask.stdout, 'WARNING! This will remove:\n  - all images without at least one container associated to them\n  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label=k=v\n\nAre you sure you want to continue? [y/N] ');
  const { id } = await idAndLayers(root, 'sa');
  const all = await run(root, ['system', 'prune', '-a', '-f']);
  t.is(all.code, 0, all.stderr);
  t.regex(all.stdout, new RegExp(`^Deleted Images:\nuntagged: sa:latest\ndeleted: ${id}\ndeleted: sha256:[0-9a-f]{64}\n\nDeleted build cache objects:\n${record}\n\nTotal reclaimed space: `));
  t.false(existsSync(join(root, 'cache', `${record}.json`)));
});

const danglingRows: Array<[string[], boolean | string]> = [
  [['dangling=true'], false],
  [['dangling=1'], false],
  [['dangling=false'], true],
  [['dangling=0'], true],
  [['dangling=true', 'dangling=false'], true],
  [['dangling=maybe'], "Invalid filter 'dangling=[maybe]'"],
];
for (const [flags, want] of danglingRows) {
  test(`prune filter ${flags.join(' ')}`, (t) => {
    if (typeof want === 'string') t.is(t.throws(() => imagePruneFilters(flags, now))?.message, want);
    else t.is(imagePruneFilters(flags, now).all === true, want);
  });
}
