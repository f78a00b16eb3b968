import { createHash, type Hash } from 'node:crypto';
import { type TransformCallback, Transform } from 'node:stream';
import { InvalidDigestError } from './errors.js';
import type { ChainID, Digest, DiffID } from './types.js';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * Checks that `s` is `sha256:<64 lowercase hex>` and brands it.
 * @throws InvalidDigestError when it is not.
 */
export function parseDigest(s: string): Digest {
  if (!DIGEST_RE.test(s)) throw new InvalidDigestError(s);
  return s as Digest;
}

/** True when `s` is a well-formed sha256 digest. */
export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** The hex part of a digest (after `sha256:`). */
export function hexOf(d: Digest | DiffID | ChainID): string {
  return d.slice('sha256:'.length);
}

/** sha256 of a buffer (or string, as UTF-8) as a digest. */
export function sha256Of(data: Buffer | Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** A pass-through stream that hashes and counts what flows through it. */
export interface HashingStream extends Transform {
  /** sha256 of every byte seen so far; call after the stream has ended. */
  digest(): Digest;
  /** Number of bytes seen. */
  readonly size: number;
}

class Hashing extends Transform implements HashingStream {
  #hash: Hash = createHash('sha256');
  #size = 0;
  #done: Digest | undefined;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    cb(null, chunk);
  }
  digest(): Digest {
    this.#done ??= `sha256:${this.#hash.digest('hex')}` as Digest;
    return this.#done;
  }
  get size(): number {
    return this.#size;
  }
}

/** Returns a PassThrough-like transform that hashes (sha256) and counts bytes: `.digest()`, `.size`. */
export function hashing(): HashingStream {
  return new Hashing();
}

/**
 * OCI chain ID of a layer stack (bottom first): ChainID(L0) = DiffID(L0),
 * ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)).
 * https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid
 * @throws InvalidDigestError for an empty list or a malformed diffID.
 */
export function chainIDOf(diffIDs: readonly DiffID[]): ChainID {
  if (diffIDs.length === 0) throw new InvalidDigestError('(empty layer list has no chain ID)');
  let chain: string = parseDigest(diffIDs[0]!);
  for (const d of diffIDs.slice(1)) chain = sha256Of(`${chain} ${parseDigest(d)}`);
  return chain as ChainID;
}

/** Chain IDs of every prefix of the stack: result[i] = chainIDOf(diffIDs[0..i]). */
export function chainIDsOf(diffIDs: readonly DiffID[]): ChainID[] {
  const out: ChainID[] = [];
  let chain: string | undefined;
  for (const d of diffIDs) {
    chain = chain === undefined ? parseDigest(d) : sha256Of(`${chain} ${parseDigest(d)}`);
    out.push(chain as ChainID);
  }
  return out;
}

