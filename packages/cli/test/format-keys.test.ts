/**
 * images/history --format as the docker 20.10 CLI reads it (checked against dockerd, outputs
 * compared line for line): 'table' alone is the default table (-q still gives IDs), 'table' is a
 * prefix ('table{{.ID}}' is a table; we printed 'table' before each ID), the format is trimmed of
 * spaces, a custom format wins over -q (we printed IDs), images' 'raw' is Docker's key: value form,
 * and --digests adds a DIGEST column to a custom table.
 */
import test from 'ava';
import { join } from 'node:path';
import { runMain as run, tempDir } from './helpers.js';

test('images and history --format: table, raw, table prefix, trimming, -q', async (t) => {
  const root = join(await tempDir(t), 'store');
  const imported = await run(root, ['import', '-', 'fk:1'], { stdin: Buffer.alloc(0), env: { SOURCE_DATE_EPOCH: '0' } });
  t.is(imported.code, 0, imported.stderr);
  const id = imported.stdout.trim().slice(7, 19);
  const images = async (...argv: string[]): Promise<string> => (await run(root, ['images', ...argv, 'fk'])).stdout;
  const history = async (...argv: string[]): Promise<string> => (await run(root, ['history', ...argv, 'fk:1'])).stdout;
  t.is(await images('--format', 'table'), await images());
  t.is(await images('-q', '--format', 'table'), `${id}\n`);
  t.is(await images('-q', '--format', '{{.Repository}}'), 'fk\n');
  t.is(await images('--format', 'table{{.ID}}'), `IMAGE ID\n${id}\n`);
  t.is(await images('--format', '  {{.Tag}}  '), '1\n');
  t.is(await images('--digests', '--format', 'table {{.ID}}'), `IMAGE ID       DIGEST\n${id}   <none>\n`);
  const created = '1970-01-01 00:00:00 +0000 UTC';
  t.is(await images('--format', 'raw'), `repository: fk\ntag: 1\nimage_id: ${id}\ncreated_at: ${created}\nvirtual_size: 0B\n\n`);
  t.is(await images('--format', 'raw', '-q'), `image_id: ${id}\n`);
  t.is(await images('--format', 'raw', '--digests'), `repository: fk\ntag: 1\ndigest: <none>\nimage_id: ${id}\ncreated_at: ${created}\nvirtual_size: 0B\n\n`);
  t.is(await history('--format', 'table'), await history());
  t.is(await history('-H=false', '--format', 'table'), await history('-H=false'));
  t.is(await history('-q', '--format', 'table'), `${id}\n`);
  t.is(await history('-q', '--format', '{{.Size}}'), '0B\n');
  t.is(await history('--format', 'table{{.Size}}'), 'SIZE\n0B\n');
});
