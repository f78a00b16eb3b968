/**
 * Parallel gzip, pigz-style: one standard gzip member whose deflate stream is made of independently
 * compressed fixed-size blocks, so several cores compress one stream.
 *
 * Each block of `blockSize` input bytes is deflated by `zlib.deflateRaw` (asynchronous: it runs on
 * libuv's thread pool, several blocks at once), primed with the previous block's last 32 KiB as the
 * dictionary (deflate's window is 32 KiB, so matches may still reach back across the cut), and ended
 * with Z_SYNC_FLUSH (byte-aligned, no BFINAL) except the last, ended with Z_FINISH. The raw deflate
 * pieces concatenate into one valid deflate stream (RFC 1951 §3.2.3: blocks are independent of
 * framing; a sync flush ends with an empty stored block). Header and trailer follow RFC 1952.
 *
 * The output depends only on the input bytes, the level and the block size: not on how the input is
 * chunked, on timing, on the thread pool or on the platform.
 */
import { Transform, type TransformCallback, type TransformOptions } from 'node:stream';
import { constants as zlibConstants, crc32, deflateRaw } from 'node:zlib';
import { availableParallelism } from 'node:os';
import { StoreError } from './errors.js';

/** Options of `createParallelGzip`. */
export interface ParallelGzipOptions {
  /** zlib level, -1 (default, = 6) … 9; default 6. */
  level?: number;
  /** Input bytes per independently compressed block (default 1 MiB). Changing it changes the output bytes. */
  blockSize?: number;
  /** Blocks being compressed at once (default: available parallelism + 1). Does not change the output. */
  concurrency?: number;
}

/** Input bytes per block by default: big enough that the per-block cost (≈ 5 bytes, a lost 32 KiB window start) is noise. */
export const PARALLEL_GZIP_BLOCK_SIZE = 1024 * 1024;

/** Deflate's window: the most a match can reach back, so all the dictionary a block needs. */
const WINDOW = 32 * 1024;

interface Job {
  readonly done: Promise<void>;
  output?: Buffer;
  error?: Error;
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

function deflateBlock(block: Buffer, dictionary: Buffer | undefined, level: number, final: boolean): Job {
  const job: { done?: Promise<void>; output?: Buffer; error?: Error } = {};
  job.done = new Promise<void>((resolve) => {
    deflateRaw(
      block,
      {
        level,
        memLevel: 8,
        windowBits: 15,
        chunkSize: outputRoom(block.length),
        strategy: zlibConstants.Z_DEFAULT_STRATEGY,
        finishFlush: final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH,
        ...(dictionary ? { dictionary } : {}),
      },
      (err, out) => {
        if (err) job.error = err;
        else job.output = out;
        resolve();
      },
    );
  });
  return job as Job;
}

class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #concurrency: number;
  /** The block being filled. */
  #block: Buffer;
  #fill = 0;
  /** The last WINDOW bytes of the previous block (undefined before the first). */
  #dictionary: Buffer | undefined;
  /** Blocks in flight, in stream order. */
  readonly #jobs: Job[] = [];
  #crc = 0;
  #isize = 0;

  constructor(opts: ParallelGzipOptions, streamOpts?: TransformOptions) {
    super(streamOpts);
    this.#level = opts.level ?? 6;
    this.#blockSize = opts.blockSize ?? PARALLEL_GZIP_BLOCK_SIZE;
    this.#concurrency = opts.concurrency ?? availableParallelism() + 1;
    if (!Number.isInteger(this.#level) || this.#level < -1 || this.#level > 9) {
      throw new StoreError(`gzip level ${this.#level} is out of range`, { code: 'E_GZIP_LEVEL', hint: 'use an integer from 0 (store) to 9 (smallest), or -1 for the default (6)' });
    }
    if (!Number.isInteger(this.#blockSize) || this.#blockSize < WINDOW) {
      throw new StoreError(`gzip block size ${this.#blockSize} is too small`, { code: 'E_GZIP_BLOCK_SIZE', hint: `use at least ${WINDOW} bytes (deflate's window)` });
    }
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new StoreError(`gzip concurrency ${this.#concurrency} must be a positive integer`, { code: 'E_GZIP_CONCURRENCY' });
    }
    this.#block = Buffer.allocUnsafe(this.#blockSize);
    this.push(gzipHeader(this.#level));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.#blockSize - this.#fill);
      chunk.copy(this.#block, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
      if (this.#fill === this.#blockSize) {
        this.#dispatch(false);
      }
    }
    this.#drain(this.#concurrency - 1).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.#dispatch(true);
    this.#drain(0).then(() => {
      const trailer = Buffer.allocUnsafe(8);
      trailer.writeUInt32LE(this.#crc >>> 0, 0);
      trailer.writeUInt32LE(this.#isize >>> 0, 4);
      cb(null, trailer);
    }, cb);
  }

  /** Starts compressing the filled part of the current block. */
  #dispatch(final: boolean): void {
    const block = this.#block.subarray(0, this.#fill);
    this.#crc = crc32(block, this.#crc);
    this.#isize = (this.#isize + block.length) % 0x1_0000_0000;
    this.#jobs.push(deflateBlock(block, this.#dictionary, this.#level, final));
    if (!final) {
      this.#dictionary = block.subarray(block.length - WINDOW);
      this.#block = Buffer.allocUnsafe(this.#blockSize);
      this.#fill = 0;
    }
  }

  /** Pushes finished blocks in order, waiting until at most `max` remain in flight. */
  async #drain(max: number): Promise<void> {
    while (this.#jobs.length > 0) {
      const head = this.#jobs[0]!;
      if (head.output === undefined && head.error === undefined) {
        if (this.#jobs.length <= max) return;
        await head.done;
      }
      this.#jobs.shift();
      if (this.destroyed) return; // aborted: blocks still in the pool finish, their output is dropped
      if (head.error) throw new StoreError('gzip: compressing a block', { cause: head.error });
      this.push(head.output);
    }
  }
}

/**
 * A Transform that gzips its input into one standard gzip member (RFC 1952), compressing
 * fixed-size blocks in parallel on libuv's thread pool. Memory stays at about
 * `(concurrency + 1) × blockSize` plus the compressed output in flight, whatever the input size.
 * The output is byte-identical for identical input, level and block size; any gzip reader
 * (gunzip, Go's compress/gzip, node:zlib) reads it. The caller pipes into it and consumes it.
 * @throws StoreError (code E_GZIP_LEVEL, E_GZIP_BLOCK_SIZE, E_GZIP_CONCURRENCY) on bad options;
 *   the stream errors with a StoreError if zlib fails.
 */
export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  return new ParallelGzip(opts, { highWaterMark: 1024 * 1024 });
}
