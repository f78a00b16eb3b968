/**
 * The block compressors of the parallel gzip (parallel-gzip.ts), and what identifies their output.
 *
 * `libdeflate`: each block one whole gzip member made by libdeflate (through the `@tsbuild/sys`
 * addon, on libuv's thread pool): ~1.7× less CPU than zlib at the same level, slightly smaller.
 * `zlib`: node:zlib deflates each block primed with the previous block's last 32 KiB, and the
 * blocks form one gzip member; used when the addon or libdeflate.so.0 is missing.
 *
 * The two give different bytes (so different blob digests) for the same tar; each is
 * deterministic. `engineId` names the compressor precisely enough for a block index
 * (gzip-blocks.ts) to know whether an earlier blob's blocks are what this process would make.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { libdeflate, type Libdeflate } from '@tsbuild/sys';

/** Which block compressor: see the module comment. */
export type BlockEngine = 'libdeflate' | 'zlib';

/** libdeflate's gzip members, from the `@tsbuild/sys` addon. */
export type MemberDeflater = Libdeflate;

/** The addon's libdeflate, or undefined (no addon, no libdeflate.so.0). Node's module cache loads it once. */
export function memberDeflater(): MemberDeflater | undefined {
  return libdeflate();
}

/** The block engine a parallel gzip uses when not told: libdeflate when it loads. */
export function defaultBlockEngine(): BlockEngine {
  return memberDeflater() !== undefined ? 'libdeflate' : 'zlib';
}

/** 64 KiB of reproducible text with repeats at all distances: what a fingerprint compresses. */
function fingerprintSample(): Buffer {
  const out = Buffer.allocUnsafe(64 * 1024);
  let x = 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x & 7) === 0 && i > 300 ? out[i - 1 - (x % 300)]! : 97 + (x % 16);
  }
  return out;
}

/**
 * What identifies the bytes `engine` makes at `level`: zlib's version, or for libdeflate (whose
 * version the library does not report) the sha256 of the library file it was loaded from (its
 * code is the compressor), and where the loader does not say, of its member of a fixed sample at
 * that level. A block index (gzip-blocks.ts) of another id is not used, so a member reused from an
 * earlier blob is always what this library makes.
 */
export function engineId(engine: BlockEngine, level: number): string {
  if (engine === 'zlib') return `zlib-${process.versions.zlib ?? ''}`;
  const d = memberDeflater();
  if (d === undefined) return 'libdeflate-missing';
  if (d.path !== undefined) {
    try {
      return `libdeflate-so-${createHash('sha256').update(readFileSync(d.path)).digest('hex').slice(0, 32)}`;
    } catch {
      // unreadable: the fingerprint below
    }
  }
  const sample = fingerprintSample();
  const out = Buffer.allocUnsafe(sample.length * 2);
  const n = d.gzipMemberSync(sample, level, out);
  return `libdeflate-${createHash('sha256').update(out.subarray(0, n)).digest('hex').slice(0, 16)}`;
}
