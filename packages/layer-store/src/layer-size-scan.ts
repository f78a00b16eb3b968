/**
 * An incremental tar-header scanner that computes a layer's content size (see `layer-size.ts`)
 * from the uncompressed tar bytes as they pass by, so that `load` and `pull` record it in the pass
 * that already decompresses each layer to check its diffID, instead of reading the layer again on
 * the first `images`.
 *
 * It looks only at the 512-byte headers at entry boundaries (and the bodies of PAX `x`/`g` and GNU
 * `K` entries, which can change a size or a symlink target) and skips entry data by counting.
 * It reads what `readTar` reads, so its answer equals `countBlobContentSize` over the same bytes:
 * ustar, PAX `size`/`linkpath` (per entry and global), GNU long names and long link names, GNU
 * base-256 numbers; header-only types (links, devices, directories, fifos) carry no data whatever
 * their size field says; the first zero block ends the archive and anything after it is ignored.
 *
 * It never throws: a malformed header, a bad checksum, a truncated archive (no end-of-archive
 * block) or an oversized PAX/long-name body only make the size unknown. The diffID check is what
 * validates a layer; the size is a cache that is computed again when it is missing.
 */
import { parsePax } from './tar.js';

const BLOCK = 512;
/** PAX and GNU long-name bodies larger than this are refused, as `readTar` refuses them. */
const MAX_META = 16 * 1024 * 1024;

const enum State {
  /** Reading a header block. */
  Header,
  /** Skipping `#skip` bytes of data and padding. */
  Skip,
  /** Gathering the body of a PAX or GNU long-link entry into `#body`. */
  Body,
  /** Saw the end-of-archive block: the size is known. */
  Done,
  /** Malformed or unsupported input: the size is unknown. */
  Invalid,
}

/** Typeflags whose entries carry data: regular files (`0`, NUL, contiguous `7`). */
function isFileType(c: number): boolean {
  return c === 0x30 || c === 0 || c === 0x37;
}

/** Typeflags `readTar` knows besides files: header-only entries (no data). */
function isHeaderOnlyType(c: number): boolean {
  return c >= 0x31 && c <= 0x36; // link, symlink, char, block, directory, fifo
}

/** Whitespace as JS `trim` sees it in a 7-bit string. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/**
 * A numeric header field as `readTar`'s `parseOctal` reads it (GNU base-256 when the first byte's
 * high bit is set, else octal digits up to the first NUL, surrounding whitespace ignored, empty
 * = 0; bytes read as 7-bit like Node's 'ascii' decoding), without making strings.
 * @returns the value, or -1 when the field is not a number.
 */
export function headerNumber(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  let end = off;
  while (end < off + len && (b[end]! & 0x7f) !== 0) end++;
  let start = off;
  while (start < end && isSpace(b[start]! & 0x7f)) start++;
  while (end > start && isSpace(b[end - 1]! & 0x7f)) end--;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = (b[i]! & 0x7f) - 0x30;
    if (d < 0 || d > 7) return -1;
    v = v * 8 + d;
  }
  return v;
}

/** Whether the header block at `b[off…off+512]` is all zeros (the end-of-archive marker). */
function isZeroBlock(b: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Whether the block's checksum field matches its bytes (the field itself counted as spaces). */
function checksumOK(b: Buffer, off: number, words: Uint32Array | undefined): boolean {
  let sum = 0;
  if (words !== undefined && (off & 3) === 0) {
    // Four bytes per step (the per-header cost of a tar of many small files): byte pairs summed
    // in 16-bit lanes, which 128 words cannot overflow.
    let even = 0;
    let odd = 0;
    for (let i = off >>> 2, end = i + BLOCK / 4; i < end; i++) {
      const w = words[i]!;
      even += w & 0x00ff00ff;
      odd += (w >>> 8) & 0x00ff00ff;
    }
    sum = (even & 0xffff) + (even >>> 16) + (odd & 0xffff) + (odd >>> 16);
  } else {
    for (let i = off; i < off + BLOCK; i++) sum += b[i]!;
  }
  for (let i = off + 148; i < off + 156; i++) sum -= b[i]!;
  return sum + 8 * 0x20 === headerNumber(b, off + 148, 8);
}

/** `b`'s bytes as 32-bit words, when `b` starts on a 4-byte boundary (so a header at a multiple of 4 can be summed by words). */
function wordsOf(b: Buffer): Uint32Array | undefined {
  return (b.byteOffset & 3) === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2) : undefined;
}

/** The records of a PAX body, read by `readTar`'s own `parsePax`; undefined when malformed. */
function paxRecords(buf: Buffer): Map<string, Buffer> | undefined {
  try {
    return parsePax(buf);
  } catch {
    return undefined;
  }
}

/** A PAX `size` value as `readTar` reads it (`Number`); undefined unless a whole, safe, non-negative number. */
function paxSize(v: Buffer): number | undefined {
  const n = Number(v.toString());
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The bytes of a symlink target as `readTar` decodes it (UTF-8), so the count equals its. */
function targetBytes(v: Buffer): number {
  return Buffer.byteLength(v.toString('utf8'));
}

/** The zero padding after `n` bytes of entry data. */
function paddingOf(n: number): number {
  const r = n % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

/**
 * Feed it the uncompressed bytes of a layer tar, in order, in chunks of any size
 * ({@link ContentSizeScanner.update}); then {@link ContentSizeScanner.size} is the layer's content
 * size, or undefined when the bytes were not a well-formed tar up to its end-of-archive block.
 * Never throws; keeps no reference to the chunks it is given.
 */
export class ContentSizeScanner {
  #state = State.Header;
  #total = 0;
  /** A header block split across chunks, gathered. */
  readonly #block = Buffer.alloc(BLOCK);
  readonly #blockWords = wordsOf(this.#block);
  #blockFill = 0;
  /** Bytes left to skip (State.Skip) or padding after the body (State.Body). */
  #skip = 0;
  #body: Buffer = Buffer.alloc(0);
  #bodyFill = 0;
  /** Typeflag of the body being gathered: 'x', 'g' or 'K'. */
  #bodyType = 0;
  /** PAX records that matter for the size, for the next entry (`x`) and for all (`g`). */
  #paxSize: Buffer | undefined;
  #paxLink: Buffer | undefined;
  #globalSize: Buffer | undefined;
  #globalLink: Buffer | undefined;
  /** A GNU long link name (`K`) for the next entry. */
  #longLink: string | undefined;

  /** The content size, when the bytes so far were a whole, well-formed tar; else undefined. */
  get size(): number | undefined {
    return this.#state === State.Done ? this.#total : undefined;
  }

  /** Takes the next bytes of the tar. */
  update(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    let words: Uint32Array | undefined | null = null; // made when a first header is read in place
    while (pos < n) {
      switch (this.#state) {
        case State.Skip: {
          const take = Math.min(this.#skip, n - pos);
          this.#skip -= take;
          pos += take;
          if (this.#skip === 0) this.#state = State.Header;
          break;
        }
        case State.Header: {
          if (this.#blockFill === 0 && n - pos >= BLOCK) {
            if (words === null) words = wordsOf(chunk);
            this.#header(chunk, pos, words);
            pos += BLOCK;
            break;
          }
          const take = Math.min(BLOCK - this.#blockFill, n - pos);
          chunk.copy(this.#block, this.#blockFill, pos, pos + take);
          this.#blockFill += take;
          pos += take;
          if (this.#blockFill === BLOCK) {
            this.#blockFill = 0;
            this.#header(this.#block, 0, this.#blockWords);
          }
          break;
        }
        case State.Body: {
          if (this.#bodyFill < this.#body.length) {
            const take = Math.min(this.#body.length - this.#bodyFill, n - pos);
            chunk.copy(this.#body, this.#bodyFill, pos, pos + take);
            this.#bodyFill += take;
            pos += take;
            if (this.#bodyFill < this.#body.length) break;
          }
          this.#bodyDone();
          break;
        }
        default:
          return; // Done (the rest is ignored, as readTar drains it) or Invalid
      }
    }
    // A body that ends exactly at a chunk's end with no padding is complete now.
    if (this.#state === State.Body && this.#bodyFill === this.#body.length) this.#bodyDone();
  }

  /** Acts on one header block at `b[off…]`. */
  #header(b: Buffer, off: number, words: Uint32Array | undefined): void {
    if (!checksumOK(b, off, words)) {
      // A zero block (whose checksum cannot match) ends the archive.
      if (isZeroBlock(b, off)) this.#state = State.Done;
      else this.#invalid();
      return;
    }
    const type = b[off + 156]!;
    const headerSize = headerNumber(b, off + 124, 12);
    if (headerSize < 0) return this.#invalid();
    // The fields readTar parses (mode, uid, gid, mtime, devmajor, devminor): a bad one fails it.
    if (type !== 0x78 && type !== 0x67 && type !== 0x4c && type !== 0x4b && !numericFieldsOK(b, off)) return this.#invalid();
    if (type === 0x78 /* x */ || type === 0x67 /* g */ || type === 0x4b /* K */) {
      if (headerSize > MAX_META) return this.#invalid();
      this.#body = Buffer.allocUnsafe(headerSize);
      this.#bodyFill = 0;
      this.#bodyType = type;
      this.#skip = paddingOf(headerSize);
      this.#state = State.Body;
      return;
    }
    if (type === 0x4c /* L: a long name, which the size does not need */) {
      if (headerSize > MAX_META) return this.#invalid();
      this.#skipBytes(headerSize + paddingOf(headerSize));
      return;
    }
    const sizeRecord = this.#paxSize ?? this.#globalSize;
    const linkRecord = this.#paxLink ?? this.#globalLink;
    const longLink = this.#longLink;
    this.#paxSize = undefined;
    this.#paxLink = undefined;
    this.#longLink = undefined;
    if (isHeaderOnlyType(type)) {
      if (type === 0x32 /* symlink */) {
        this.#total += linkRecord !== undefined ? targetBytes(linkRecord) : longLink !== undefined ? Buffer.byteLength(longLink) : targetBytes(cfield(b, off + 157, 100));
      }
      this.#state = State.Header;
      return;
    }
    // A file, or an unknown type readTar skips over by its size.
    const size = sizeRecord !== undefined ? paxSize(sizeRecord) : headerSize;
    if (size === undefined || !Number.isSafeInteger(size)) return this.#invalid();
    if (isFileType(type)) this.#total += size;
    this.#skipBytes(size + paddingOf(size));
  }

  /** The body of an `x`, `g` or `K` entry has been gathered: takes what matters from it. */
  #bodyDone(): void {
    const body = this.#body;
    this.#body = Buffer.alloc(0);
    this.#bodyFill = 0;
    if (this.#bodyType === 0x4b) {
      this.#longLink = body.toString('utf8').replace(/\0+$/, '');
    } else {
      const recs = paxRecords(body);
      if (recs === undefined) return this.#invalid();
      const size = recs.get('size');
      const link = recs.get('linkpath');
      if (this.#bodyType === 0x67) {
        if (size !== undefined) this.#globalSize = Buffer.from(size);
        if (link !== undefined) this.#globalLink = Buffer.from(link);
      } else {
        if (size !== undefined) this.#paxSize = Buffer.from(size);
        if (link !== undefined) this.#paxLink = Buffer.from(link);
      }
    }
    this.#skipBytes(this.#skip);
  }

  #skipBytes(n: number): void {
    this.#skip = n;
    this.#state = n === 0 ? State.Header : State.Skip;
  }

  #invalid(): void {
    this.#state = State.Invalid;
  }
}

/** Whether mode, uid, gid, mtime, devmajor and devminor are numbers (written out: no allocation per header). */
function numericFieldsOK(b: Buffer, off: number): boolean {
  return (
    headerNumber(b, off + 100, 8) >= 0 &&
    headerNumber(b, off + 108, 8) >= 0 &&
    headerNumber(b, off + 116, 8) >= 0 &&
    headerNumber(b, off + 136, 12) >= 0 &&
    headerNumber(b, off + 329, 8) >= 0 &&
    headerNumber(b, off + 337, 8) >= 0
  );
}

/** A NUL-terminated header field's bytes. */
function cfield(b: Buffer, off: number, len: number): Buffer {
  const f = b.subarray(off, off + len);
  const z = f.indexOf(0);
  return z < 0 ? f : f.subarray(0, z);
}
