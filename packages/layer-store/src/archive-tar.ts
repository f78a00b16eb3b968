/**
 * Writes archive tarballs (save's output) deterministically: entries in the order given (callers
 * sort them), mtime 0, uid/gid 0, no user names, fixed modes. File contents stream from their
 * opener straight into the tar, never buffered. Internal to the package.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** One member of an archive to write. */
export type ArchiveMember =
  | { type: 'directory'; name: string }
  | { type: 'file'; name: string; size: number; open: () => Readable }
  | { type: 'file'; name: string; data: Buffer };

const EPOCH = new Date(0);

/**
 * Streams `members` as a tar into `out`, then ends `out`.
 * @throws whatever a member's stream or `out` fails with (the tar is then incomplete; callers that
 * write files write to a temp file and rename only on success).
 */
export async function writeArchive(members: Iterable<ArchiveMember>, out: Writable, { signal }: { signal?: AbortSignal | undefined } = {}): Promise<void> {
  const pack = tar.pack();
  const packing = pipeline(pack, out, signal ? { signal } : {});
  try {
    for (const m of members) {
      signal?.throwIfAborted();
      const base = { name: m.type === 'directory' ? `${m.name}/` : m.name, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' };
      if (m.type === 'directory') {
        await entry(pack, { ...base, type: 'directory', mode: 0o755 });
      } else if ('data' in m) {
        await entry(pack, { ...base, type: 'file', mode: 0o644, size: m.data.length }, m.data);
      } else {
        const sink = pack.entry({ ...base, type: 'file', mode: 0o644, size: m.size });
        await pipeline(m.open(), sink, signal ? { signal } : {});
      }
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await packing.catch(() => undefined);
    throw err;
  }
  await packing;
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}
