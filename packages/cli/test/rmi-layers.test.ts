/**
 * rmi prints, after the image's 'Deleted:' line, a 'Deleted:' line for each layer it released, by
 * chain ID, top first, as dockerd 20.10 (checked: docker rmi -f of an imported image printed
 * 'Untagged: h7rm:1', 'Untagged: h7rm:2', 'Deleted: sha256:<image>', 'Deleted: sha256:<layer>');
 * a layer another image still has is not listed. We printed the image's line only.
 */
import test from 'ava';
import { join } from 'node:path';
import { runMain as run, tempDir } from './helpers.js';

test('rmi lists the layers the image released, not those another image keeps', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const empty = Buffer.alloc(0);
  t.is((await run(root, ['import', '-c', 'ENV A=1', '-', 'rml:a'], { stdin: empty })).code, 0);
  t.is((await run(root, ['import', '-c', 'ENV A=2', '-', 'rml:b'], { stdin: empty })).code, 0);
  const info = await run(root, ['inspect', '-f', '{{.Id}} {{index .RootFS.Layers 0}}', 'rml:a', 'rml:b']);
  const [[idA, layer], [idB]] = info.stdout.trim().split('\n').map((l) => l.split(' '));
  // both images have the one empty layer: removing the first releases none
  t.deepEqual(await run(root, ['rmi', 'rml:a']), { code: 0, stdout: `Untagged: rml:a\nDeleted: ${idA}\n`, stderr: '' });
  t.deepEqual(await run(root, ['rmi', 'rml:b']), { code: 0, stdout: `Untagged: rml:b\nDeleted: ${idB}\nDeleted: ${layer}\n`, stderr: '' });
});
