/**
 * Parallel gzip: the input cut into fixed-size blocks compressed independently, several at once on
 * libuv's thread pool, so several cores compress one stream. Two block engines (deflate-engine.ts):
 *
 * `libdeflate` (when the native addon loads): each block is one whole gzip member (header, raw
 * deflate, CRC32 and ISIZE of the block), and the output is their concatenation, a multi-member
 * gzip file (RFC 1952 §2.2: "a gzip file consists of a series of members"), which gunzip, Go's
 * compress/gzip (multistream by default: containerd, dockerd, skopeo), node:zlib and zcat read as
 * the concatenated input. No dictionary: matches do not reach back across a cut (≈ 0.1% larger at
 * 1 MiB blocks), and a block's bytes depend on the block alone.
 *
 * `zlib`, pigz-style: one standard gzip member whose deflate stream is made of the blocks.
 * Each block of `blockSize` input bytes is deflated by `zlib.deflateRaw` (asynchronous: it runs on
 * libuv's thread pool, several blocks at once), primed with the previous block's last 32 KiB as the
 * dictionary (deflate's window is 32 KiB, so matches may still reach back across the cut), and ended
 * with Z_SYNC_FLUSH (byte-aligned, no BFINAL) except the last, ended with Z_FINISH. The raw deflate
 * pieces concatenate into one valid deflate stream (RFC 1951 §3.2.3: blocks are independent of
 * framing; a sync flush ends with an empty stored block). Header and trailer follow RFC 1952.
 *
 * The output depends only on the input bytes, the level, the block size and the engine (its
 * library's version): not on how the input is chunked, on timing, on the thread pool or on the
 * platform.
 */
import { Transform, type TransformCallback, type TransformOptions } from 'node:stream';
import { constants as zlibConstants, crc32, createDeflateRaw } from 'node:zlib';
import { availableParallelism } from 'node:os';
import { StoreError } from './errors.js';
import { blockKey, blockKeyAsync, type BlockSource } from './gzip-blocks.js';
import { poolSha256 } from '@tsbuild/sys';
import { defaultBlockEngine, memberDeflater, type BlockEngine, type MemberDeflater } from './deflate-engine.js';

/** Options of `createParallelGzip`. */
export interface ParallelGzipOptions {
  /** zlib level, -1 (default, = 6) … 9; default 6. */
  level?: number;
  /** Input bytes per independently compressed block (default 1 MiB). Changing it changes the output bytes. */
  blockSize?: number;
  /** Blocks being compressed at once (default: available parallelism + 1). Does not change the output. */
  concurrency?: number;
  /** Block compressor (default: libdeflate when the addon loads, else zlib). Changes the output. */
  engine?: BlockEngine;
}

/** Input bytes per block by default: big enough that the per-block cost (≈ 5 bytes, a lost 32 KiB window start) is noise. */
export const PARALLEL_GZIP_BLOCK_SIZE = 1024 * 1024;

/** Deflate's window: the most a match can reach back, so all the dictionary a block needs. */
const WINDOW = 32 * 1024;

interface Job {
  readonly done: Promise<void>;
  /** The block's input bytes (handed back to the caller for reuse once the job is done). */
  readonly input: Buffer;
  output?: Buffer;
  error?: Error;
  /** The block's key, when keyed ('' for a stored block); set by the time `done` resolves. */
  key?: string;
}

/**
 * The fixed gzip header: no name, mtime 0, XFL as zlib sets it for the level, OS = 3 (Unix) on
 * every platform, so identical input gives identical bytes anywhere.
 */
function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 || level === 0 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
}

/**
 * Room for a block's whole output (deflateBound plus a margin): zlib returns to the main thread
 * each time its output buffer fills, so the 16 KiB default would cost ~64 round trips per block.
 */
function outputRoom(n: number): number {
  return n + (n >> 8) + 1024;
}

/**
 * Deflates `block` on the thread pool in one pass: a DeflateRaw stream whose every write flushes
 * (`flush`: Z_SYNC_FLUSH, or Z_FINISH for the last block) gets the block as its one write; once
 * written, its whole output is one piece of the stream's output buffer, read off, and the stream
 * closed. One thread-pool round trip and no copy per block (`zlib.deflateRaw` takes two, one more
 * to flush at the end, and concatenates the pieces); the same bytes, as deflate's output does not
 * depend on how its input is split into calls.
 */
function deflateBlock(block: Buffer, dictionary: Buffer | undefined, level: number, final: boolean): Job {
  const job: { done?: Promise<void>; input: Buffer; output?: Buffer; error?: Error } = { input: block };
  job.done = new Promise<void>((resolve) => {
    const flush = final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH;
    const room = outputRoom(block.length);
    // The whole output waits in the readable side until read, without holding the write back
    // (a stream option zlib passes on to its Transform; ZlibOptions does not list it).
    const streamOpts = { readableHighWaterMark: 2 * room };
    // (these parameters fix the output bytes: a change must bump gzip-blocks.ts BLOCK_FORMAT)
    const z = createDeflateRaw({
      level,
      memLevel: 8,
      windowBits: 15,
      chunkSize: room,
      strategy: zlibConstants.Z_DEFAULT_STRATEGY,
      flush,
      finishFlush: flush,
      ...streamOpts,
      ...(dictionary ? { dictionary } : {}),
    });
    const fail = (err: Error): void => {
      job.error ??= err;
      z.destroy();
      resolve();
    };
    z.once('error', fail);
    z.write(block, (err) => {
      if (err) {
        fail(err);
        return;
      }
      job.output = (z.read() as Buffer | null) ?? Buffer.alloc(0);
      z.close();
      resolve();
    });
  });
  return job as Job;
}

/**
 * `block` as one gzip member made by libdeflate on the thread pool (`level` 0-9; -1 is 6). The
 * output buffer holds the worst case (libdeflate's bound is below `outputRoom`).
 */
function memberBlock(deflater: MemberDeflater, block: Buffer, level: number): Job {
  const job: { done?: Promise<void>; input: Buffer; output?: Buffer; error?: Error } = { input: block };
  const out = Buffer.allocUnsafe(outputRoom(block.length) + MEMBER_FRAME);
  job.done = deflater.gzipMember(block, level === -1 ? 6 : level, out).then(
    (n) => {
      if (n === 0) job.error = new Error(`libdeflate: ${block.length} bytes did not fit in ${out.length}`);
      else job.output = out.subarray(0, n);
    },
    (err: unknown) => {
      job.error = err instanceof Error ? err : new Error(String(err));
    },
  );
  return job as Job;
}

/** Bytes of a gzip member's header and trailer. */
const MEMBER_FRAME = 18;

/** `block` stored (`storedDeflate`) as a whole gzip member: header, stored deflate, CRC32 and ISIZE of the block. */
export function storedMember(block: Buffer, level: number): Buffer {
  const body = storedDeflate(block, true);
  const out = Buffer.allocUnsafe(body.length + MEMBER_FRAME);
  gzipHeader(level).copy(out, 0);
  body.copy(out, 10);
  out.writeUInt32LE(crc32(block) >>> 0, 10 + body.length);
  out.writeUInt32LE(block.length >>> 0, 14 + body.length);
  return out;
}

/** Bytes per stored deflate block: LEN is 16 bits (RFC 1951 §3.2.4). */
const STORED_MAX = 0xffff;

/**
 * `block` as stored (uncompressed) deflate blocks, RFC 1951 §3.2.4: per ≤ 65,535 bytes a header
 * byte (BFINAL, BTYPE = 00, padding to the byte), LEN and NLEN (little-endian), then the bytes.
 * Starts on a byte boundary, as every block of this stream does (each ends with a sync flush); the
 * last stored block has BFINAL set when `final`. 5 bytes per 64 KiB over the input.
 */
export function storedDeflate(block: Buffer, final: boolean): Buffer {
  const pieces = Math.max(1, Math.ceil(block.length / STORED_MAX));
  const out = Buffer.allocUnsafe(block.length + 5 * pieces);
  let o = 0;
  for (let p = 0; p < pieces; p++) {
    const start = p * STORED_MAX;
    const len = Math.min(STORED_MAX, block.length - start);
    out[o] = final && p === pieces - 1 ? 1 : 0;
    out.writeUInt16LE(len, o + 1);
    out.writeUInt16LE(~len & 0xffff, o + 3);
    block.copy(out, o + 5, start, start + len);
    o += 5 + len;
  }
  return out;
}

/** Blocks shorter than this are always deflated: too little to judge, too little to matter. */
const MIN_JUDGED = 64 * 1024;
/** Bytes sampled into the histogram: every (length / SAMPLES)-th, so random bytes estimate at ≈ 7.997 bits whatever the length. */
const SAMPLES = 64 * 1024;
/**
 * Order-0 entropy (bits per byte) at or above which a block may be incompressible. Measured on
 * 1 MiB blocks (entropy, zlib -6 size): random 7.997, 100.03%; a .gz changelog 7.995, 99.8%;
 * a .zip of sources 7.994, 99.4%; random with 5% text 7.979, 98.6%; a .jar 7.972, 95.6%.
 */
const ENTROPY_BITS = 7.985;
/** Anchor byte of the repeat check (any fixed value works; the check is shift-invariant). */
const ANCHOR = 0xa5;
/** Bytes after an anchor that identify it (52 bits of them are used). */
const ANCHOR_KEY = 8;

/**
 * Whether deflate could gain next to nothing on `block`, judged from its bytes alone (so the
 * output stays a function of the input), in well under a millisecond per MiB:
 * 1. the order-0 entropy of 64 Ki bytes sampled at a fixed stride is ≥ 7.985 bits per byte
 *    (Huffman coding could save ~0.2%); text, code and binaries are far below (≈ 4.5–6.5);
 * 2. LZ77 finds no long repeats: at each occurrence of the byte 0xA5 (content-defined, so the
 *    check does not depend on alignment), the (52 bits of the) 8 bytes that follow are looked up among the earlier
 *    anchors of the last 32 KiB (deflate's window); repeats cover anchors in proportion to their
 *    length, so more than 1% of anchors repeated means deflate would find matches worth having.
 * Random bytes and already-compressed files (gzip, zstd, JPEG…) pass both; any data that deflate
 * compresses by more than ~1% fails one of them.
 */
export function isIncompressible(block: Buffer): boolean {
  if (block.length < MIN_JUDGED) return false;
  const counts = new Uint32Array(256);
  const stride = Math.max(1, Math.floor(block.length / SAMPLES));
  let n = 0;
  for (let i = 0; i < block.length; i += stride, n++) counts[block[i]!]!++;
  let bits = 0;
  for (let v = 0; v < 256; v++) {
    const c = counts[v]!;
    if (c > 0) bits -= (c / n) * Math.log2(c / n);
  }
  if (bits < ENTROPY_BITS) return false;
  const seen = new Map<number, number>();
  let anchors = 0;
  let repeats = 0;
  const end = block.length - ANCHOR_KEY;
  for (let i = block.indexOf(ANCHOR); i >= 0 && i < end; i = block.indexOf(ANCHOR, i + 1)) {
    // 52 of the 64 bits after the anchor: exact in a double, no string per anchor.
    const key = block.readUInt32LE(i + 1) * 0x10_0000 + (block.readUInt32LE(i + 5) & 0xf_ffff);
    const prev = seen.get(key);
    if (prev !== undefined && i - prev <= WINDOW) repeats++;
    seen.set(key, i);
    anchors++;
  }
  return repeats * 100 <= anchors;
}

/** An already finished job (stored blocks are made on the spot). */
function doneJob(input: Buffer, output: Buffer): Job {
  return { done: Promise.resolve(), input, output };
}

/**
 * The core of the parallel gzip, for callers that own their blocks: `add` full blocks (and one
 * final, shorter or empty one) in stream order; `next` hands back each block's compressed bytes in
 * the same order, with the input block for reuse. Between them sit the gzip header and trailer.
 * Incompressible blocks (`isIncompressible`) are stored, not deflated: same stream, no CPU.
 */
export class GzipBlocks {
  readonly #level: number;
  /** libdeflate, when the blocks are gzip members; undefined for one zlib member. */
  readonly #members: MemberDeflater | undefined;
  readonly #jobs: Job[] = [];
  /** The last WINDOW bytes of the previous block (a copy: the caller may reuse its blocks). */
  #dictionary: Buffer | undefined;
  #crc = 0;
  #isize = 0;
  /** Whether each block's key is computed (for `blockIndex`, or to look it up in `#reuse`). */
  readonly #keyed: boolean;
  readonly #reuse: BlockSource | undefined;
  /** Per block taken by `next`: its key ('' for a stored block) and compressed length. */
  readonly #index: Array<[string, number]> = [];
  /** Blocks whose compressed bytes came from `reuse`. */
  reused = 0;
  /** Whether keys are hashed on the thread pool (the addon's sha256), members only. */
  readonly #keyAsync: boolean;

  /**
   * `index`: compute each deflated block's key, for `blockIndex`; `reuse`: an earlier blob's blocks
   * (gzip-blocks.ts), whose compressed bytes are taken for a block with the same key instead of
   * deflating it (the same bytes). `engine`: see `ParallelGzipOptions` (libdeflate when it is
   * asked for but does not load: StoreError E_GZIP_ENGINE).
   */
  constructor(level: number, opts: { index?: boolean; reuse?: BlockSource; engine?: BlockEngine } = {}) {
    this.#level = level;
    const engine = opts.engine ?? defaultBlockEngine();
    this.#members = engine === 'libdeflate' ? memberDeflater() : undefined;
    if (engine === 'libdeflate' && this.#members === undefined) {
      throw new StoreError('gzip: libdeflate is not available', { code: 'E_GZIP_ENGINE', hint: 'build the @tsbuild/sys addon (npm install) on a system with libdeflate.so.0, or use the zlib engine' });
    }
    this.#keyed = opts.index === true || opts.reuse !== undefined;
    this.#reuse = opts.reuse;
    this.#keyAsync = this.#keyed && this.#members !== undefined && poolSha256() !== undefined;
  }

  /** A member block's job when keyed: key (pool), then the earlier bytes (pool read) or compression (pool). */
  #keyedMember(members: MemberDeflater, block: Buffer): Job {
    const job: { done?: Promise<void>; input: Buffer; output?: Buffer; error?: Error; key?: string } = { input: block };
    job.done = (async () => {
      const key = await blockKeyAsync(this.#level, block);
      job.key = key;
      const earlier = await this.#reuse?.takeAsync(key);
      if (earlier !== undefined) {
        this.reused++;
        job.output = earlier;
        return;
      }
      const compressed = memberBlock(members, block, this.#level);
      await compressed.done;
      if (compressed.error !== undefined) job.error = compressed.error;
      else job.output = compressed.output!;
    })().catch((err: unknown) => {
      job.error = err instanceof Error ? err : new Error(String(err));
    });
    return job as Job;
  }

  /** Which engine compresses the blocks. */
  get engine(): BlockEngine {
    return this.#members !== undefined ? 'libdeflate' : 'zlib';
  }

  /** The gzip header, first bytes of the member (empty for gzip members: each block has its own). */
  header(): Buffer {
    return this.#members !== undefined ? Buffer.alloc(0) : gzipHeader(this.#level);
  }

  /** Blocks added whose output has not been taken by `next` yet. */
  get pending(): number {
    return this.#jobs.length;
  }

  /** Whether the oldest pending block is compressed (so `next` does not wait). */
  get ready(): boolean {
    const head = this.#jobs[0];
    return head !== undefined && (head.output !== undefined || head.error !== undefined);
  }

  /**
   * Starts compressing `block`; the caller leaves it untouched until `next` returns it. Every
   * block but the last must have the same length (the block size): it fixes the output bytes.
   */
  add(block: Buffer, final: boolean): void {
    const members = this.#members;
    if (members === undefined) {
      this.#crc = crc32(block, this.#crc);
      this.#isize = (this.#isize + block.length) % 0x1_0000_0000;
    }
    const stored = this.#level !== 0 && isIncompressible(block);
    if (members !== undefined && this.#keyed && !stored && this.#keyAsync) {
      // a member depends on its block alone: its key is hashed, its earlier bytes read, or it is
      // compressed, all on the thread pool, while the caller makes the next block
      this.#jobs.push(this.#keyedMember(members, block));
      return;
    }
    // a stored block costs a copy: no key, never taken from an earlier blob. A member depends on
    // its block alone (not on being the last one, nor on the one before).
    const key = !this.#keyed || stored ? '' : members ? blockKey(this.#level, false, undefined, block) : blockKey(this.#level, final, this.#dictionary, block);
    const earlier = key !== '' ? this.#reuse?.take(key) : undefined;
    if (earlier !== undefined) this.reused++;
    let job: Job;
    if (stored) job = doneJob(block, members ? storedMember(block, this.#level) : storedDeflate(block, final));
    else if (earlier !== undefined) job = doneJob(block, earlier);
    else job = members ? memberBlock(members, block, this.#level) : deflateBlock(block, this.#dictionary, this.#level, final);
    job.key = key;
    this.#jobs.push(job);
    if (!final && !members) this.#dictionary = Buffer.from(block.subarray(block.length - WINDOW));
  }

  /** Key and compressed length of every block `next` has handed out, in order, when keyed (see gzip-blocks.ts). */
  blockIndex(): Array<[string, number]> {
    return this.#index;
  }

  /**
   * The oldest pending block's compressed bytes and the block itself.
   * @throws StoreError when zlib failed on it.
   */
  async next(): Promise<{ output: Buffer; input: Buffer }> {
    const head = this.#jobs[0];
    if (head === undefined) throw new StoreError('gzip: no block pending', { code: 'E_GZIP_STATE' });
    await head.done;
    this.#jobs.shift();
    const key = this.#keyed ? (head.key ?? '') : '';
    if (head.error) throw new StoreError('gzip: compressing a block', { cause: head.error });
    if (this.#keyed) this.#index.push([key, head.output!.length]);
    return { output: head.output!, input: head.input };
  }

  /** The gzip trailer (CRC32 and ISIZE of all input), after the final block's output (empty for gzip members). */
  trailer(): Buffer {
    if (this.#members !== undefined) return Buffer.alloc(0);
    const trailer = Buffer.allocUnsafe(8);
    trailer.writeUInt32LE(this.#crc >>> 0, 0);
    trailer.writeUInt32LE(this.#isize >>> 0, 4);
    return trailer;
  }
}

class ParallelGzip extends Transform {
  readonly #blockSize: number;
  readonly #concurrency: number;
  readonly #gz: GzipBlocks;
  /** The block being filled. */
  #block: Buffer;
  #fill = 0;

  constructor(opts: ParallelGzipOptions, streamOpts?: TransformOptions) {
    super(streamOpts);
    const level = opts.level ?? 6;
    this.#blockSize = opts.blockSize ?? PARALLEL_GZIP_BLOCK_SIZE;
    this.#concurrency = opts.concurrency ?? availableParallelism() + 1;
    if (!Number.isInteger(level) || level < -1 || level > 9) {
      throw new StoreError(`gzip level ${level} is out of range`, { code: 'E_GZIP_LEVEL', hint: 'use an integer from 0 (store) to 9 (smallest), or -1 for the default (6)' });
    }
    if (!Number.isInteger(this.#blockSize) || this.#blockSize < WINDOW) {
      throw new StoreError(`gzip block size ${this.#blockSize} is too small`, { code: 'E_GZIP_BLOCK_SIZE', hint: `use at least ${WINDOW} bytes (deflate's window)` });
    }
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new StoreError(`gzip concurrency ${this.#concurrency} must be a positive integer`, { code: 'E_GZIP_CONCURRENCY' });
    }
    this.#gz = new GzipBlocks(level, opts.engine ? { engine: opts.engine } : {});
    this.#block = Buffer.allocUnsafe(this.#blockSize);
    const header = this.#gz.header();
    if (header.length > 0) this.push(header);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.#blockSize - this.#fill);
      chunk.copy(this.#block, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
      if (this.#fill === this.#blockSize) {
        this.#gz.add(this.#block, false);
        this.#block = Buffer.allocUnsafe(this.#blockSize);
        this.#fill = 0;
      }
    }
    this.#drain(this.#concurrency - 1).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.#gz.add(this.#block.subarray(0, this.#fill), true);
    this.#drain(0).then(() => {
      const trailer = this.#gz.trailer();
      cb(null, trailer.length > 0 ? trailer : undefined);
    }, cb);
  }

  /** Pushes finished blocks in order, waiting until at most `max` remain in flight. */
  async #drain(max: number): Promise<void> {
    while (this.#gz.pending > 0 && (this.#gz.ready || this.#gz.pending > max)) {
      const { output } = await this.#gz.next();
      if (this.destroyed) return; // aborted: blocks still in the pool finish, their output is dropped
      this.push(output);
    }
  }
}

/**
 * A Transform that gzips its input (one gzip member per block with libdeflate, one member of all
 * blocks with zlib; see the module comment), compressing fixed-size blocks in parallel on libuv's
 * thread pool. Memory stays at about
 * `(concurrency + 1) × blockSize` plus the compressed output in flight, whatever the input size.
 * The output is byte-identical for identical input, level, block size and engine; any gzip reader
 * (gunzip, Go's compress/gzip, node:zlib) reads it. The caller pipes into it and consumes it.
 * @throws StoreError (code E_GZIP_LEVEL, E_GZIP_BLOCK_SIZE, E_GZIP_CONCURRENCY, E_GZIP_ENGINE) on bad options;
 *   the stream errors with a StoreError if zlib fails.
 */
export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  return new ParallelGzip(opts, { highWaterMark: 1024 * 1024 });
}
