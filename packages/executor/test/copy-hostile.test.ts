import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { openSync, closeSync, ftruncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { copyInto, selectSources } from '../src/context/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'copy-hostile-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('an abort during the copy of a big file stops it mid-file (the copy yields between slices)', async (t) => {
  const dir = await tempDir(t);
  const ctx = path.join(dir, 'ctx');
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(ctx);
  await mkdir(rootfs);
  // 512 MiB, sparse apart from a byte at the end: reading it costs no disk, copying it writes zeros
  const big = path.join(ctx, 'big');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 512 << 20);
  writeSync(fd, Buffer.from('x'), 0, 1, (512 << 20) - 1);
  closeSync(fd);
  const controller = new AbortController();
  const copying = copyInto({ rootfs, sources: await selectSources(ctx, ['big']), dest: '/big', signal: controller.signal });
  // aborted once the copy is under way: a synchronous whole-file copy would finish regardless
  controller.abort(new Error('stop'));
  await t.throwsAsync(copying, { message: 'stop' });
  const copied = await stat(path.join(rootfs, 'big')).catch(() => undefined);
  t.true(copied === undefined || copied.size < 512 << 20, `copied ${copied?.size} bytes`);
});

test('COPY --from of a missing path (a symlink climbing out of the stage) names the stage, not the build context', async (t) => {
  const dir = await tempDir(t);
  const stage = path.join(dir, 'stage');
  await mkdir(path.join(stage, 'etc'), { recursive: true });
  await symlink('../../../../etc/shadow', path.join(stage, 'rel-shadow'));
  await symlink('/etc', path.join(stage, 'etc-link'));
  await writeFile(path.join(stage, 'etc/passwd'), 'stage\n');
  const err = await t.throwsAsync(selectSources(stage, ['/rel-shadow'], { from: 'builder' }), {
    code: 'E_SOURCE_NOT_FOUND',
    message: 'COPY failed: stat rel-shadow: file does not exist',
  } as never);
  t.regex((err as unknown as { hint: string }).hint, /--from=builder/);
  // an absolute symlink resolves inside the stage's rootfs, never on the host
  const [src] = await selectSources(stage, ['/etc-link/passwd'], { from: 'builder' });
  t.is(src?.entries[0]?.hostPath, path.join(stage, 'etc/passwd'));
});
