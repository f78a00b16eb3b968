/**
 * Block reuse for rebuilt layers: the compressed bytes of a parallel-gzip block (see
 * parallel-gzip.ts) depend only on the level, whether it is the final block, its dictionary (the
 * previous block's last 32 KiB) and its own bytes. So a layer written again with mostly the same
 * tar (a `COPY . .` after one source edit) can copy each unchanged block's compressed bytes out of
 * the earlier blob instead of deflating it again, and the result is byte for byte what a fresh
 * compression gives.
 *
 * The same holds for libdeflate's gzip members (deflate-engine.ts), whose bytes depend on the level
 * and the block alone. The store keeps, for each layer written with `indexBlocks`, a private side
 * file `gzip-blocks/<blob digest hex>`: the block format, engine (deflate-engine.ts `engineId`),
 * level and block size, and per block the sha256 of (level, final, dictionary, block) — for
 * members: of (level, block) — with the block's compressed length. Blocks sit at
 * fixed offsets of the tar, so an edit that keeps the tar's length (tar pads each file to 512
 * bytes) leaves every other block reusable; one that changes it leaves the blocks before it.
 *
 * The file is a cache like `layer-sizes/`: written without fsync, ignored when unreadable, for
 * another engine, format, level or block size, or when its lengths do not add up to the blob's size.
 */
import { closeSync, fstatSync, openSync, read, readFileSync, readSync } from 'node:fs';
import { poolSha256 } from '@tsbuild/sys';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { hexOf } from './digest.js';
import { tempName } from './fsutil.js';
import type { Store } from './store.js';
import type { Digest } from './types.js';
import { engineId, type BlockEngine } from './deflate-engine.js';

/** Name of the store-private directory of gzip block indexes. */
export const GZIP_BLOCKS_DIR = 'gzip-blocks';
/**
 * How parallel-gzip makes a block's bytes besides the engine's version, per engine. zlib (1): one
 * member, raw deflate primed with the previous 32 KiB, memLevel 8, windowBits 15, default
 * strategy, sync flush, stored incompressible blocks. libdeflate (2): one gzip member per block,
 * fixed header, stored incompressible blocks. Change it with any of those: an index of another
 * format is not used.
 */
const BLOCK_FORMAT: Record<BlockEngine, number> = { zlib: 1, libdeflate: 2 };
/** Bytes before the first block and after the last: zlib's one member has a 10-byte header and an 8-byte trailer; members carry their own. */
const FRAME: Record<BlockEngine, [header: number, trailer: number]> = { zlib: [10, 8], libdeflate: [0, 0] };

/** What identifies a block's compressed bytes: sha256 of level, final flag, dictionary and block (hex). */
export function blockKey(level: number, final: boolean, dictionary: Buffer | undefined, block: Buffer): string {
  const h = createHash('sha256');
  h.update(Buffer.from([level & 0xff, final ? 1 : 0, dictionary === undefined ? 0 : 1]));
  if (dictionary !== undefined) h.update(dictionary);
  return h.update(block).digest('hex');
}

/**
 * `blockKey(level, false, undefined, block)` (a gzip member's key), hashed on the thread pool
 * (the addon's sha256). Only where `poolSha256()` is available.
 */
export async function blockKeyAsync(level: number, block: Buffer): Promise<string> {
  const h = poolSha256()!;
  h.update(Buffer.from([level & 0xff, 0, 0]));
  h.update(block);
  return (await h.digest()).toString('hex');
}

/** The blocks of one written blob, in order: key ('' for a block that is not worth reusing) and compressed length. */
export interface BlockIndex {
  engine: BlockEngine;
  level: number;
  blockSize: number;
  blocks: Array<[key: string, length: number]>;
}

interface BlockIndexFile extends BlockIndex {
  format: number;
  /** `engineId` of the engine at the level. */
  engineId: string;
}

function indexPath(store: Store, digest: Digest): string {
  return join(store.root, GZIP_BLOCKS_DIR, hexOf(digest));
}

/** Records the block index of the blob `digest` (temp file in the store's `tmp/`, then rename). */
export async function recordBlockIndex(store: Store, digest: Digest, index: BlockIndex): Promise<void> {
  const file: BlockIndexFile = { format: BLOCK_FORMAT[index.engine], engineId: engineId(index.engine, index.level), ...index };
  await mkdir(join(store.root, GZIP_BLOCKS_DIR), { recursive: true });
  const tmp = tempName(store.tmpDir, 'gzip-blocks');
  try {
    await writeFile(tmp, JSON.stringify(file), { flag: 'wx', mode: 0o644 });
    await rename(tmp, indexPath(store, digest));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Compressed blocks of an earlier blob, by key; `close` when done. */
export interface BlockSource {
  /** The compressed bytes of an earlier block with this key, or undefined. */
  take(key: string): Buffer | undefined;
  /** The same, read on the thread pool. */
  takeAsync(key: string): Promise<Buffer | undefined>;
  /** Closes the earlier blob (once reads in flight are done). */
  close(): void;
}

/**
 * The blocks of the stored blob `digest` that a new blob of `engine` at `level` and `blockSize`
 * may take, or undefined when it has no usable index (none, damaged, another engine or version of
 * it, format, level or block size).
 */
export function openBlockSource(store: Store, digest: Digest, engine: BlockEngine, level: number, blockSize: number): BlockSource | undefined {
  let file: BlockIndexFile;
  try {
    file = JSON.parse(readFileSync(indexPath(store, digest), 'utf8')) as BlockIndexFile;
  } catch {
    return undefined;
  }
  if (file.engine !== engine || file.format !== BLOCK_FORMAT[engine] || file.level !== level || file.blockSize !== blockSize || !Array.isArray(file.blocks)) return undefined;
  if (file.engineId !== engineId(engine, level)) return undefined;
  const [header, trailer] = FRAME[engine];
  const where = new Map<string, [offset: number, length: number]>();
  let offset = header;
  for (const b of file.blocks) {
    if (!Array.isArray(b) || typeof b[0] !== 'string' || !Number.isSafeInteger(b[1]) || b[1] < 0) return undefined;
    if (b[0] !== '') where.set(b[0], [offset, b[1]]);
    offset += b[1];
  }
  let fd: number;
  try {
    fd = openSync(store.blobPath(digest), 'r');
  } catch {
    return undefined;
  }
  // a blob that is not the one indexed (or a damaged index) cannot add up
  if (fstatSync(fd).size !== offset + trailer) {
    closeSync(fd);
    return undefined;
  }
  let inFlight = 0;
  let closing = false;
  return {
    take(key) {
      const at = where.get(key);
      if (at === undefined) return undefined;
      const out = Buffer.allocUnsafe(at[1]);
      // synchronous: one read of a file in the page cache costs less than a thread-pool hop
      if (readSync(fd, out, 0, at[1], at[0]) !== at[1]) return undefined;
      return out;
    },
    takeAsync(key) {
      const at = where.get(key);
      if (at === undefined) return Promise.resolve(undefined);
      const out = Buffer.allocUnsafe(at[1]);
      inFlight++;
      return new Promise((resolve) => {
        read(fd, out, 0, at[1], at[0], (err, n) => {
          if (--inFlight === 0 && closing) closeSync(fd);
          resolve(err === null && n === at[1] ? out : undefined);
        });
      });
    },
    close() {
      // not under a read in flight: its fd number could be another file's by the time it runs
      closing = true;
      if (inFlight === 0) closeSync(fd);
    },
  };
}
