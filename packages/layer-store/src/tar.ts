/**
 * A minimal POSIX tar (ustar + PAX) encoder and streaming decoder. Our own, not tar-stream,
 * because PAX values must be raw bytes: `SCHILY.xattr.security.capability` is binary and would be
 * mangled by a string-based codec. Internal to the package.
 */
import { CorruptLayerError } from './errors.js';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

/** One tar entry's metadata. `name` has no leading `./` or `/`; directories end without `/`. */
export interface TarHeader {
  name: string;
  type: EntryType;
  /** Permission and special bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (integer). */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** xattrs by full name (e.g. `security.capability`), raw bytes. */
  xattrs?: Map<string, Buffer>;
}

const TYPEFLAGS: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };
const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

function isASCII(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

/**
 * Writes `value` (a non-negative integer) as `len - 1` zero-padded octal digits and a NUL at
 * `buf[off…off+len]`; false (nothing written) when it needs more digits. Digit by digit, no string:
 * a layer of small files writes seven of these per entry.
 */
function octal(buf: Buffer, off: number, len: number, value: number): boolean {
  if (value >= 8 ** (len - 1)) return false;
  let v = value;
  for (let i = off + len - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  buf[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

interface RawFields {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

/** ustar magic and version, at offset 257 of every header. */
const USTAR = Buffer.from('ustar\x0000', 'latin1');

/** Writes a ustar header block at `b[off…off+512]`, which must be zeros. */
function writeRawHeader(b: Buffer, off: number, h: RawFields): void {
  // names that need no PAX are ASCII (latin1 writes them as they are, and faster than utf8)
  b.write(h.name, off, 100, isASCII(h.name) ? 'latin1' : 'utf8');
  octal(b, off + 100, 8, h.mode);
  octal(b, off + 108, 8, h.uid);
  octal(b, off + 116, 8, h.gid);
  octal(b, off + 124, 12, h.size);
  octal(b, off + 136, 12, h.mtime);
  b[off + 156] = h.typeflag.charCodeAt(0);
  if (h.linkname !== '') b.write(h.linkname, off + 157, 100, isASCII(h.linkname) ? 'latin1' : 'utf8');
  USTAR.copy(b, off + 257);
  octal(b, off + 329, 8, h.devmajor);
  octal(b, off + 337, 8, h.devminor);
  // the checksum counts its own field as eight spaces
  let sum = 8 * 0x20;
  for (let i = off; i < off + 148; i++) sum += b[i]!;
  for (let i = off + 156; i < off + BLOCK; i++) sum += b[i]!;
  octal(b, off + 148, 7, sum);
  b[off + 155] = 0x20;
}

function rawHeader(h: RawFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeRawHeader(b, 0, h);
  return b;
}

const MAX8 = 0o7777777;
const MAX12 = 0o77777777777;

/**
 * Writes `h` as one ustar block straight into `buf` at `off` (no allocation) when it needs no PAX
 * header and `buf` has room; the same bytes as `encodeHeader(h)` then.
 * @returns the bytes written: 512, or 0 when the caller must use `encodeHeader`.
 */
export function encodeHeaderInto(h: TarHeader, buf: Buffer, off: number): number {
  if (buf.length - off < BLOCK || (h.xattrs !== undefined && h.xattrs.size > 0)) return 0;
  if (h.uid > MAX8 || h.gid > MAX8 || h.size > MAX12 || h.mtime > MAX12 || h.mtime < 0) return 0;
  const name = h.type === 'directory' ? `${h.name}/` : h.name;
  const linkname = h.linkname ?? '';
  if (!fitsField(name) || !fitsField(linkname)) return 0;
  // TypedArray's own fill: Buffer#fill's argument checks cost more than zeroing 512 bytes
  Uint8Array.prototype.fill.call(buf, 0, off, off + BLOCK);
  writeRawHeader(buf, off, {
    name,
    typeflag: TYPEFLAGS[h.type],
    mode: h.mode & 0o7777,
    uid: h.uid,
    gid: h.gid,
    size: h.size,
    mtime: h.mtime,
    linkname,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  return BLOCK;
}

/** Whether `s` goes into a 100-byte ustar field as it is (ASCII, ≤ 100 bytes). */
function fitsField(s: string): boolean {
  return s.length <= 100 && isASCII(s);
}

/**
 * Encodes a header (and a PAX extended header before it when needed: long or non-ASCII names,
 * big numbers, xattrs). Returns the bytes that precede the entry's content.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const name = h.type === 'directory' ? `${h.name}/` : h.name;
  const linkname = h.linkname ?? '';
  const pax: Array<[string, Buffer]> = [];
  const fits = (s: string, n: number) => isASCII(s) && Buffer.byteLength(s) <= n;
  if (!fits(name, 100)) pax.push(['path', Buffer.from(name)]);
  if (!fits(linkname, 100)) pax.push(['linkpath', Buffer.from(linkname)]);
  if (h.uid > MAX8) pax.push(['uid', Buffer.from(String(h.uid))]);
  if (h.gid > MAX8) pax.push(['gid', Buffer.from(String(h.gid))]);
  if (h.size > MAX12) pax.push(['size', Buffer.from(String(h.size))]);
  if (h.mtime > MAX12 || h.mtime < 0) pax.push(['mtime', Buffer.from(String(h.mtime))]);
  if (h.xattrs) {
    for (const k of [...h.xattrs.keys()].sort()) pax.push([`SCHILY.xattr.${k}`, h.xattrs.get(k)!]);
  }
  pax.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const main = rawHeader({
    name: fits(name, 100) ? name : asciiPrefix(name, 100),
    typeflag: TYPEFLAGS[h.type],
    mode: h.mode & 0o7777,
    uid: h.uid > MAX8 ? 0 : h.uid,
    gid: h.gid > MAX8 ? 0 : h.gid,
    size: h.size > MAX12 ? 0 : h.size,
    mtime: h.mtime > MAX12 || h.mtime < 0 ? 0 : h.mtime,
    linkname: fits(linkname, 100) ? linkname : asciiPrefix(linkname, 100),
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (pax.length === 0) return main;
  const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  const paxHdr = rawHeader({
    name: asciiPrefix(`PaxHeaders/${h.name.split('/').pop() ?? ''}`, 100),
    typeflag: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHdr, body, padding(body.length), main]);
}

function asciiPrefix(s: string, n: number): string {
  return s.replace(/[^\x00-\x7f]/g, '_').slice(0, n);
}

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : ZERO_BLOCK.subarray(0, BLOCK - r);
}

/** The end-of-archive marker: two zero blocks. */
export function trailer(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}

// ---------------- decoding ----------------

/** A decoded entry; `body` must be consumed (or skipped by moving on) before the next entry. */
export interface TarEntry {
  header: TarHeader;
  body: AsyncIterable<Buffer>;
  /**
   * The whole content, when it is small (≤ `SMALL_BODY` bytes; then `body` yields just this):
   * lets a consumer write it with one call instead of a stream per entry.
   */
  data?: Buffer;
}

/** Entry bodies up to this size are handed over whole (`TarEntry.data`). */
export const SMALL_BODY = 1024 * 1024;

/** Pulls exact byte counts out of an async chunk source. */
class ByteReader {
  #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  #eof = false;
  constructor(src: AsyncIterable<Buffer | Uint8Array | string>) {
    const inner = src[Symbol.asyncIterator]();
    this.#it = {
      next: async () => {
        const r = await inner.next();
        if (r.done) return r;
        return { value: typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength) };
      },
    };
  }
  async #fill(n: number): Promise<boolean> {
    if (this.#buf.length >= n) return true;
    // Gather then join once (no quadratic copying for a body spanning many chunks).
    const parts = this.#buf.length > 0 ? [this.#buf] : [];
    let len = this.#buf.length;
    while (len < n && !this.#eof) {
      const r = await this.#it.next();
      if (r.done) this.#eof = true;
      else if (r.value.length > 0) {
        parts.push(r.value);
        len += r.value.length;
      }
    }
    this.#buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, len);
    return len >= n;
  }
  /** Exactly n bytes, or fewer at end of input. */
  async read(n: number): Promise<Buffer> {
    await this.#fill(n);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }
  /** Reads and discards everything left (so hashes and decompressors see the whole input). */
  async drain(): Promise<void> {
    this.#buf = Buffer.alloc(0);
    while (!this.#eof) {
      const r = await this.#it.next();
      if (r.done) this.#eof = true;
    }
  }
  /** Streams n bytes in chunks; throws on early end. */
  async *stream(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0) {
        if (!(await this.#fill(1))) throw new CorruptLayerError(`layer tar is truncated inside ${what}`);
      }
      const take = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }
}

function parseOctal(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    // base-256 (GNU) for big values
    let v = 0;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = f.toString('ascii').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new CorruptLayerError(`invalid number field in tar header: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function cstring(b: Buffer, off: number, len: number): string {
  const f = b.subarray(off, off + len);
  const z = f.indexOf(0);
  return (z < 0 ? f : f.subarray(0, z)).toString('utf8');
}

/**
 * The records of a PAX extended header body (`<len> <key>=<value>\n` each), values as raw bytes.
 * @throws CorruptLayerError for a malformed record.
 */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(buf.subarray(off, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > buf.length) throw new CorruptLayerError('malformed PAX header');
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new CorruptLayerError('malformed PAX record');
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

async function readAll(r: ByteReader, n: number, what: string): Promise<Buffer> {
  if (n > 16 * 1024 * 1024) throw new CorruptLayerError(`${what} is too large (${n} bytes)`);
  const chunks: Buffer[] = [];
  for await (const c of r.stream(n, what)) chunks.push(c);
  await r.read(padding(n).length);
  return Buffer.concat(chunks);
}

/** An iterable of one buffer (none when it is empty). */
function once(data: Buffer): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      if (data.length > 0) yield data;
    },
  };
}

const TYPES: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo' };

/**
 * Decodes a tar stream entry by entry (ustar, PAX, GNU long names). Unknown entry types are
 * skipped. Each entry's body must be consumed or abandoned before asking for the next.
 * `trailerOptional`: the input may end after an entry without the end-of-archive marker (Go's
 * archive/tar takes that, so `docker import` does, and an empty input is an empty tar).
 * @throws CorruptLayerError on a truncated archive or bad header checksum.
 */
export async function* readTar(src: AsyncIterable<Buffer | Uint8Array | string>, { trailerOptional = false }: { trailerOptional?: boolean } = {}): AsyncGenerator<TarEntry> {
  const r = new ByteReader(src);
  let pax = new Map<string, Buffer>();
  let globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await r.read(BLOCK);
    if (block.length === 0 && trailerOptional && pax.size === 0 && longName === undefined && longLink === undefined) return;
    if (block.length === 0) throw new CorruptLayerError('layer tar is truncated: no end-of-archive marker');
    if (block.length < BLOCK) throw new CorruptLayerError('layer tar is truncated inside a header');
    if (block.equals(ZERO_BLOCK)) {
      // End of archive (the second zero block is optional, as in Go). Read the rest: trailing
      // padding must reach the caller's hash, and a broken compressed tail must surface.
      await r.drain();
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== parseOctal(block, 148, 8)) throw new CorruptLayerError('tar header checksum mismatch (not a tar, or corrupt)');
    const typeflag = String.fromCharCode(block[156]!);
    let size = parseOctal(block, 124, 12);
    if (typeflag === 'x' || typeflag === 'g') {
      const recs = parsePax(await readAll(r, size, 'a PAX header'));
      if (typeflag === 'g') globalPax = new Map([...globalPax, ...recs]);
      else pax = new Map([...pax, ...recs]);
      continue;
    }
    if (typeflag === 'L' || typeflag === 'K') {
      const v = (await readAll(r, size, 'a GNU long name')).toString('utf8').replace(/\0+$/, '');
      if (typeflag === 'L') longName = v;
      else longLink = v;
      continue;
    }
    const all = globalPax.size === 0 ? pax : pax.size === 0 ? globalPax : new Map([...globalPax, ...pax]);
    const isUstar = block.subarray(257, 262).toString('ascii') === 'ustar';
    let name = cstring(block, 0, 100);
    const prefix = isUstar ? cstring(block, 345, 155) : '';
    if (prefix) name = `${prefix}/${name}`;
    name = all.get('path')?.toString('utf8') ?? longName ?? name;
    const linkname = all.get('linkpath')?.toString('utf8') ?? longLink ?? cstring(block, 157, 100);
    if (all.has('size')) size = Number(all.get('size')!.toString());
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of all) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    if (pax.size > 0) pax = new Map();
    longName = undefined;
    longLink = undefined;
    const type = TYPES[typeflag];
    const num = (key: string, fallback: number): number => (all.has(key) ? Math.floor(Number(all.get(key)!.toString())) : fallback);
    const header: TarHeader = {
      name: name.replace(/\/+$/, ''),
      type: type ?? 'file',
      mode: parseOctal(block, 100, 8) & 0o7777,
      uid: num('uid', parseOctal(block, 108, 8)),
      gid: num('gid', parseOctal(block, 116, 8)),
      size: type === 'file' || type === undefined ? size : 0,
      mtime: num('mtime', parseOctal(block, 136, 12)),
      linkname,
      devmajor: parseOctal(block, 329, 8),
      devminor: parseOctal(block, 337, 8),
      xattrs,
    };
    // As Go's archive/tar: header-only types carry no data whatever their size field says.
    const dataSize = type === 'file' || type === undefined ? size : 0;
    if (dataSize <= SMALL_BODY) {
      const data = await r.read(dataSize);
      if (data.length < dataSize) throw new CorruptLayerError(`layer tar is truncated inside entry "${header.name}"`);
      const pad = padding(dataSize).length;
      if ((await r.read(pad)).length < pad) throw new CorruptLayerError('layer tar is truncated inside padding');
      if (type !== undefined) yield { header, body: once(data), data };
      continue;
    }
    const body = r.stream(dataSize, `entry "${header.name}"`);
    // No return(): a consumer that stops early must not end the generator; the rest is drained below.
    const wrapped: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ({ next: () => body.next() }) };
    if (type !== undefined) yield { header, body: wrapped };
    for (let n = await body.next(); !n.done; n = await body.next()) void n;
    const pad = padding(dataSize).length;
    if ((await r.read(pad)).length < pad) throw new CorruptLayerError('layer tar is truncated inside padding');
  }
}
