/**
 * A reader that goes away: as docker (a Go program dies of SIGPIPE, status 141), never a stack
 * trace or an "internal error"; a reader that takes the whole archive and leaves (tar at the end of
 * the archive) sees status 0.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, tempDir } from './helpers.js';

/** The unbundled entry (the bundle may be older than this compile). */
const MAIN = join(REPO, 'packages/cli/dist/src/main.js');

test('save into a pipe: tar -t reads it whole (status 0), head -c1 leaves early (status 141, nothing on stderr)', async (t) => {
  const dir = await tempDir(t);
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  const root = join(dir, 'store');
  execFileSync('sh', ['-c', `tar -C "$1/rootfs" -c . | "$2" "$3" --root "$4" import - lspipe:1`, 'sh', dir, process.execPath, MAIN, root]);
  const pipe = (reader: string) =>
    spawnSync('bash', ['-c', `"$1" "$2" --root "$3" save lspipe:1 2>"$4" | ${reader} >/dev/null; echo "\${PIPESTATUS[0]}"; cat "$4"`, 'bash', process.execPath, MAIN, root, join(dir, 'err')], { encoding: 'utf8' });
  for (let i = 0; i < 3; i++) t.is(pipe('tar -t').stdout, '0\n');
  t.is(pipe('head -c 1').stdout, '141\n');
});
