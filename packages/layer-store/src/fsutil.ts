/** Small durable-write helpers shared by the store's modules (not exported from the package). */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { ownerTag } from './temps.js';

/** This process's `<pid>.<start time>`, in every temp name (read once: it does not change). */
export const OWNER_TAG = ownerTag();

/** A fresh unique file name inside `dir`, with this process's owner tag (see temps.ts). */
export function tempName(dir: string, prefix: string): string {
  return join(dir, `${prefix}-${OWNER_TAG}-${randomBytes(6).toString('hex')}`);
}

/** fsyncs a directory so a rename inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` atomically: temp file in `tmpDir` (same filesystem), fsync, rename, fsync dir. */
export async function writeFileAtomic(path: string, data: string | Buffer, tmpDir: string): Promise<void> {
  const tmp = tempName(tmpDir, 'write');
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dirname(path));
}

/**
 * A Writable onto an open FileHandle that fsyncs on finish when `sync` is set. The caller closes
 * the handle. (fs streams over a FileHandle with autoClose:false keep a reference that makes
 * `close()` wait forever; a raw fd can be reused by another open after an early close.)
 */
export function fileSink(fh: FileHandle, { sync = false }: { sync?: boolean } = {}): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    writev(chunks, cb) {
      fh.writev(chunks.map((c) => c.chunk as Buffer)).then(
        () => cb(),
        (err: Error) => cb(err),
      );
    },
    final(cb) {
      if (!sync) return cb();
      fh.sync().then(
        () => cb(),
        (err: Error) => cb(err),
      );
    },
  });
}
