/**
 * Images and history entries without a creation time: Docker's API gives Go's zero time for them,
 * and its CLI prints N/A / "" (images) and "292 years ago" / 0001-01-01T00:00:00Z (history), as
 * checked against dockerd with a loaded archive whose config has no `created`.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMain as run, tempDir } from './helpers.js';

test('an image and history entries without created print as dockerd prints Go\'s zero time', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'rootfs'));
  await writeFile(join(dir, 'rootfs/hello.txt'), 'hi\n');
  execFileSync('tar', ['-C', join(dir, 'rootfs'), '-cf', join(dir, 'layer.tar'), 'hello.txt']);
  const diffID = `sha256:${createHash('sha256').update(await readFile(join(dir, 'layer.tar'))).digest('hex')}`;
  const config = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] }, history: [{ created_by: 'a' }] };
  await writeFile(join(dir, 'c.json'), JSON.stringify(config));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'c.json', RepoTags: ['lstime:1'], Layers: ['layer.tar'] }]));
  execFileSync('tar', ['-C', dir, '-cf', join(dir, 'a.tar'), 'manifest.json', 'c.json', 'layer.tar']);
  const root = join(dir, 'store');
  t.is((await run(root, ['load', '-i', join(dir, 'a.tar')])).stdout, 'Loaded image: lstime:1\n');

  t.regex((await run(root, ['images', 'lstime'])).stdout, /\nlstime       1         [0-9a-f]{12}   N\/A       3B\n$/);
  t.is((await run(root, ['images', '--format', '{{.CreatedAt}}|{{.CreatedSince}}', 'lstime'])).stdout, '0001-01-01 00:00:00 +0000 UTC|\n');
  t.is((await run(root, ['history', '--format', '{{.CreatedAt}}|{{.CreatedSince}}', 'lstime:1'])).stdout, '0001-01-01T00:00:00Z|292 years ago\n');
  t.regex((await run(root, ['history', 'lstime:1'])).stdout, /\n[0-9a-f]{12}   292 years ago   a            3B        \n$/);
  t.regex((await run(root, ['history', '--human=false', 'lstime:1'])).stdout, /\n[0-9a-f]{12}   0001-01-01T00:00:00Z   a /);
  t.is((await run(root, ['inspect', '-f', '{{.Created}}', 'lstime:1'])).stdout, '0001-01-01T00:00:00Z\n');
});

test('history --format CreatedAt is RFC 3339, as dockerd\'s (images keeps Go\'s time.String form)', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const tar = execFileSync('tar', ['-c', '-C', dir, '.']);
  t.is((await run(root, ['import', '-', 'lstime:2'], { stdin: tar, env: { SOURCE_DATE_EPOCH: '86400' } })).code, 0);
  t.is((await run(root, ['history', '--format', '{{.CreatedAt}}', 'lstime:2'])).stdout, '1970-01-02T00:00:00Z\n');
  t.is((await run(root, ['images', '--format', '{{.CreatedAt}}', 'lstime'])).stdout, '1970-01-02 00:00:00 +0000 UTC\n');
});
