import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, crc32, deflateRawSync, gunzipSync, inflateRawSync } from 'node:zlib';
import { importRootfs, layerTarStream, Store, writeLayer } from '../src/index.js';
import { createParallelGzip, isIncompressible, PARALLEL_GZIP_BLOCK_SIZE, storedDeflate, storedMember } from '../src/parallel-gzip.js';
import { tempDir } from './helpers.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/** xorshift32 bytes: reproducible, and as incompressible as /dev/urandom for deflate. */
function noise(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Text-like bytes: words from a small vocabulary. */
function text(size: number, seed: number): Buffer {
  const words = ['layer', 'tar', 'gzip', 'deflate', 'block', 'window', 'stored', 'entropy', 'anchor'];
  const r = noise(size, seed);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; o < size; i++) o += out.write(`${words[r[i % size]! % words.length]!}${r[(i + 1) % size]! % 13 === 0 ? '\n' : ' '}`, o);
  return out;
}

/** Random 16 KiB pieces each followed by a copy of itself: high byte entropy, yet deflate halves it. */
function echoedNoise(size: number, seed: number): Buffer {
  const parts: Buffer[] = [];
  for (let n = 0, s = seed; n < size; n += 32 * KIB, s++) {
    const piece = noise(16 * KIB, s);
    parts.push(piece, piece);
  }
  return Buffer.concat(parts).subarray(0, size);
}

const judged: Array<[string, () => Buffer, boolean]> = [
  ['1 MiB of random bytes', () => noise(MIB, 1), true],
  ['64 KiB of random bytes (the smallest judged block)', () => noise(64 * KIB, 2), true],
  ['a random block shorter than 64 KiB is always deflated', () => noise(64 * KIB - 1, 3), false],
  ['text', () => text(MIB, 4), false],
  ['zeros', () => Buffer.alloc(MIB), false],
  ['random 4 KiB repeated (low sampled entropy)', () => Buffer.concat(Array.from({ length: 256 }, () => noise(4 * KIB, 5))), false],
  ['random 16 KiB pieces each repeated once (high entropy, repeats within the window)', () => echoedNoise(MIB, 6), false],
  ['random with 10% text mixed in', () => Buffer.concat(Array.from({ length: 64 }, (_, i) => (i % 10 === 0 ? text(16 * KIB, i) : noise(16 * KIB, i)))), false],
];
for (const [name, make, expected] of judged) {
  test(`isIncompressible: ${name} → ${expected}`, (t) => {
    t.is(isIncompressible(make()), expected);
  });
}

test('isIncompressible: what it stores, zlib -6 could not shrink by more than 1%; what it deflates, zlib shrinks', (t) => {
  for (const [name, make] of judged) {
    const block = make();
    const ratio = deflateRawSync(block, { level: 6 }).length / block.length;
    if (isIncompressible(block)) t.true(ratio > 0.99, `${name}: zlib gives ${ratio}`);
    else if (block.length >= 64 * KIB) t.true(ratio < 0.99, `${name}: zlib gives ${ratio}`);
  }
});

for (const size of [0, 1, 65_535, 65_536, 200_000]) {
  test(`storedDeflate: ${size} bytes inflate back, final or followed by other deflate blocks`, (t) => {
    const data = noise(size, size + 1);
    t.true(inflateRawSync(storedDeflate(data, true)).equals(data));
    const tail = deflateRawSync(Buffer.from('tail'), { finishFlush: zc.Z_FINISH });
    t.true(inflateRawSync(Buffer.concat([storedDeflate(data, false), tail])).equals(Buffer.concat([data, Buffer.from('tail')])));
    t.is(storedDeflate(data, true).length, size + 5 * Math.max(1, Math.ceil(size / 65_535)));
  });
}

/** The format before stored blocks: every block deflated, primed with the previous 32 KiB. */
function perBlockDeflate(data: Buffer, blockSize: number, level: number, store: (block: Buffer, offset: number) => boolean): Buffer {
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])];
  let off = 0;
  for (;;) {
    const final = data.length - off < blockSize;
    const block = data.subarray(off, final ? data.length : off + blockSize);
    const dictionary = off > 0 ? data.subarray(off - 32 * KIB, off) : undefined;
    parts.push(
      store(block, off)
        ? storedDeflate(block, final)
        : deflateRawSync(block, { level, finishFlush: final ? zc.Z_FINISH : zc.Z_SYNC_FLUSH, ...(dictionary ? { dictionary } : {}) }),
    );
    if (final) break;
    off += blockSize;
  }
  const trailer = Buffer.allocUnsafe(8);
  trailer.writeUInt32LE(crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  parts.push(trailer);
  return Buffer.concat(parts);
}

async function pgzip(data: Buffer, engine: 'zlib' | 'libdeflate' = 'zlib'): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of Readable.from([data], { objectMode: false }).pipe(createParallelGzip({ level: 6, engine }))) out.push(c as Buffer);
  return Buffer.concat(out);
}

test('compressible input: the same bytes as deflating every block (existing digests do not change)', async (t) => {
  const data = Buffer.concat([text(2 * MIB, 7), echoedNoise(MIB, 8), text(MIB / 2 + 7, 9)]);
  t.true((await pgzip(data)).equals(perBlockDeflate(data, PARALLEL_GZIP_BLOCK_SIZE, 6, () => false)));
});

test('random blocks are stored, text blocks deflated as before, in one member gzip(1) tests and reads back', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.concat([noise(MIB, 10), text(MIB, 11), noise(2 * MIB + 99, 12)]);
  const gz = await pgzip(data);
  t.true(gz.equals(perBlockDeflate(data, PARALLEL_GZIP_BLOCK_SIZE, 6, (b, off) => off !== MIB && b.length >= 64 * KIB)));
  t.true(gunzipSync(gz).equals(data));
  const file = join(dir, 'x.gz');
  await writeFile(file, gz);
  execFileSync('gzip', ['-t', file]);
  t.true(execFileSync('gzip', ['-dc', file], { maxBuffer: 1 << 26 }).equals(data));
  const randomBytes = 3 * MIB + 99;
  const textGz = deflateRawSync(text(MIB, 11), { level: 6 }).length;
  t.true(gz.length < randomBytes * 1.0001 + textGz + 1024, `${gz.length} bytes`);
});

test('libdeflate: random blocks are stored gzip members, text blocks deflated; gzip(1) tests and reads back', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.concat([noise(MIB, 10), text(MIB, 11), noise(2 * MIB + 99, 12)]);
  const gz = await pgzip(data, 'libdeflate');
  t.true(gunzipSync(gz).equals(data));
  // members: stored (1 MiB random), deflated text, stored, stored (the 99-byte rest is deflated, too short to judge)
  const first = storedMember(data.subarray(0, MIB), 6);
  t.true(gz.subarray(0, first.length).equals(first), 'the first block is a stored member');
  t.true(gunzipSync(first).equals(data.subarray(0, MIB)));
  const third = storedMember(data.subarray(2 * MIB, 3 * MIB), 6);
  t.true(gz.includes(third), 'so is the third');
  const file = join(dir, 'x.gz');
  await writeFile(file, gz);
  execFileSync('gzip', ['-t', file]);
  t.true(execFileSync('gzip', ['-dc', file], { maxBuffer: 1 << 26 }).equals(data));
  // the random blocks cost their size and their framing, no more
  const textGz = (await pgzip(text(MIB, 11), 'libdeflate')).length;
  t.true(gz.length < 3 * MIB + 99 + textGz + 1024, `${gz.length} bytes`);
});

test("writeLayer of random files: blob ≈ tar size, reproducible, and Go's gzip reader (skopeo) inflates it to the diffID", async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'random.bin'), noise(3 * MIB + 5, 13));
  await writeFile(join(src, 'notes.txt'), text(300 * KIB, 14));
  const tarFile = join(dir, 'rootfs.tar');
  await pipeline(layerTarStream(src, { kind: 'rootfs', sourceDateEpoch: 0 }), createWriteStream(tarFile));
  const tarSize = (await stat(tarFile)).size;
  const s1 = await Store.open(join(dir, 's1'));
  const a = await writeLayer(s1, src, { kind: 'rootfs', sourceDateEpoch: 0 });
  const b = await writeLayer(await Store.open(join(dir, 's2')), src, { kind: 'rootfs', sourceDateEpoch: 0 });
  t.is(a.digest, b.digest);
  t.true(a.size < tarSize * 1.0005, `blob ${a.size} for a ${tarSize}-byte tar`);
  t.true(a.size > 3 * MIB, 'random bytes are not compressed away');

  await importRootfs(s1, createReadStream(tarFile), { ref: 'stored:go', sourceDateEpoch: 0 });
  const img = await s1.resolveImage('stored:go');
  const hex = img.config.rootfs.diff_ids[0]!.slice('sha256:'.length);
  const out = join(dir, 'out');
  execFileSync('skopeo', ['copy', '-q', '--dest-decompress', `oci:${s1.root}:docker.io/library/stored:go`, `dir:${out}`]);
  t.true((await readdir(out)).includes(hex));
  t.is(createHash('sha256').update(await readFile(join(out, hex))).digest('hex'), hex);
});
