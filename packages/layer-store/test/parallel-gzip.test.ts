import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { crc32, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { importRootfs, layerTarStream, Store, writeLayer } from '../src/index.js';
import { createParallelGzip, type ParallelGzipOptions } from '../src/parallel-gzip.js';
import { tempDir } from './helpers.js';

/** Buffers are compared with `equals`: ava's deepEqual walks megabytes byte by byte, slowly. */
const KIB = 1024;
const BLOCK = 32 * KIB;

/**
 * Reproducible test data with both compressible runs and incompressible noise (xorshift32 from a
 * seed), so blocks differ and matches cross block cuts.
 */
function mixedData(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  const words = ['layer ', 'tar ', 'gzip ', 'deflate ', 'block ', 'window ', '\n'];
  let i = 0;
  while (i < size) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if ((x & 3) === 0) {
      const n = Math.min(size - i, 64 + (x % 512));
      for (let k = 0; k < n; k++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        out[i + k] = x & 0xff;
      }
      i += n;
    } else {
      i += out.write(words[x % words.length]!, i);
    }
  }
  return out;
}

/** Feeds `data` in chunks of the given sizes (cycled) through a parallel gzip and collects the output. */
async function pgzip(data: Buffer, opts: ParallelGzipOptions, chunkSizes: number[] = [64 * KIB]): Promise<Buffer> {
  function* chunks(): Generator<Buffer> {
    let off = 0;
    for (let i = 0; off < data.length; i++) {
      const n = chunkSizes[i % chunkSizes.length]!;
      yield data.subarray(off, off + n);
      off += n;
    }
  }
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks(), { objectMode: false }).pipe(createParallelGzip(opts))) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Checks the RFC 1952 framing by hand: fixed header, one raw deflate stream, CRC32 and ISIZE. */
function parseMember(gz: Buffer): { header: Buffer; body: Buffer; crc: number; isize: number } {
  return { header: gz.subarray(0, 10), body: inflateRawSync(gz.subarray(10, gz.length - 8)), crc: gz.readUInt32LE(gz.length - 8), isize: gz.readUInt32LE(gz.length - 4) };
}

/**
 * Splits a multi-member gzip by hand (RFC 1952 §2.2): each member a fixed header, one raw deflate
 * stream (its end found by inflating it: `info` gives the bytes it read), CRC32 and ISIZE.
 */
function parseMembers(gz: Buffer): Array<{ raw: Buffer; header: Buffer; body: Buffer; crc: number; isize: number }> {
  const out: Array<{ raw: Buffer; header: Buffer; body: Buffer; crc: number; isize: number }> = [];
  let off = 0;
  while (off < gz.length) {
    const { buffer: body, engine } = inflateRawSync(gz.subarray(off + 10), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    const end = off + 10 + engine.bytesWritten;
    out.push({ raw: gz.subarray(off, end + 8), header: gz.subarray(off, off + 10), body, crc: gz.readUInt32LE(end), isize: gz.readUInt32LE(end + 4) });
    off = end + 8;
  }
  return out;
}

const sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 5 * BLOCK + 17];
const levels = [0, 1, 6, 9];
const header = (level: number): number[] => [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level === 9 ? 2 : level <= 1 ? 4 : 0, 3];
for (const size of sizes) {
  for (const level of levels) {
    test(`round trip, zlib: ${size} bytes at level ${level} → one gzip member that node:zlib inflates to the input`, async (t) => {
      const data = mixedData(size, size + level);
      const gz = await pgzip(data, { level, blockSize: BLOCK, engine: 'zlib' });
      t.true(gunzipSync(gz).equals(data));
      const m = parseMember(gz);
      t.deepEqual([...m.header], header(level), 'fixed header: no name, mtime 0, OS Unix');
      t.true(m.body.equals(data), 'the body is a single deflate stream ending in the trailer');
      t.is(m.crc, crc32(data));
      t.is(m.isize, size);
    });
    test(`round trip, libdeflate: ${size} bytes at level ${level} → one gzip member per block, node:zlib inflates them to the input`, async (t) => {
      const data = mixedData(size, size + level);
      const gz = await pgzip(data, { level, blockSize: BLOCK, engine: 'libdeflate' });
      t.true(gunzipSync(gz).equals(data));
      const members = parseMembers(gz);
      // every full block, then the final (shorter or empty) one
      t.is(members.length, Math.floor(size / BLOCK) + 1);
      members.forEach((m, i) => {
        const block = data.subarray(i * BLOCK, Math.min(size, (i + 1) * BLOCK));
        t.deepEqual([...m.header], header(level), `member ${i}: fixed header`);
        t.true(m.body.equals(block), `member ${i} holds block ${i}`);
        t.is(m.crc, crc32(block));
        t.is(m.isize, block.length);
      });
    });
  }
}

test('libdeflate: a member depends on its block alone: the same block anywhere gives the same bytes', async (t) => {
  const a = mixedData(BLOCK, 21);
  const b = mixedData(BLOCK, 22);
  const one = parseMembers(await pgzip(Buffer.concat([a, b, a]), { blockSize: BLOCK, engine: 'libdeflate' })).map((m) => m.raw);
  const two = parseMembers(await pgzip(Buffer.concat([b, a]), { blockSize: BLOCK, engine: 'libdeflate' })).map((m) => m.raw);
  t.true(one[0]!.equals(one[2]!), 'block a, first and third');
  t.true(one[0]!.equals(two[1]!), 'block a after another block');
  t.true(one[1]!.equals(two[0]!), 'block b');
});

for (const engine of ['zlib', 'libdeflate'] as const) {
  test(`determinism, ${engine}: the bytes depend on input, level and block size only, not on chunking or concurrency`, async (t) => {
    const data = mixedData(7 * BLOCK + 123, 42);
    const a = await pgzip(data, { blockSize: BLOCK, concurrency: 1, engine }, [data.length]);
    const b = await pgzip(data, { blockSize: BLOCK, concurrency: 4, engine }, [1, 7, 4093, BLOCK + 5, 999]);
    const c = await pgzip(data, { blockSize: BLOCK, concurrency: 2, engine }, [BLOCK]);
    t.true(b.equals(a));
    t.true(c.equals(a));
    const otherBlock = await pgzip(data, { blockSize: 2 * BLOCK, engine });
    t.false(otherBlock.equals(a), 'a different block size cuts elsewhere');
    t.true(gunzipSync(otherBlock).equals(data));
  });

  test(`size, ${engine}: within 1% of zlib gzip at level 6 with the default block size`, async (t) => {
    const data = mixedData(6 * 1024 * KIB + 4321, 3);
    const gz = await pgzip(data, { level: 6, engine });
    const ref = gzipSync(data, { level: 6 });
    t.true(gunzipSync(gz).equals(data));
    t.true(Math.abs(gz.length - ref.length) / ref.length < 0.01, `parallel ${gz.length} vs zlib ${ref.length}`);
  });

  test(`gzip(1) tests and decompresses the output, ${engine}`, async (t) => {
    const dir = await tempDir(t);
    const data = mixedData(4 * BLOCK + 99, 5);
    const file = join(dir, 'x.gz');
    await writeFile(file, await pgzip(data, { blockSize: BLOCK, engine }));
    execFileSync('gzip', ['-t', file]);
    t.true(execFileSync('gzip', ['-dc', file], { maxBuffer: 1 << 26 }).equals(data));
  });
}

test('the default engine is libdeflate here (the addon is built on the machines the tests run on)', async (t) => {
  const data = mixedData(3 * BLOCK, 8);
  t.true((await pgzip(data, { blockSize: BLOCK })).equals(await pgzip(data, { blockSize: BLOCK, engine: 'libdeflate' })));
});

test('zlib: blocks are primed with the previous block: content repeated across a cut still compresses', async (t) => {
  // Incompressible noise whose last 8 KiB before the cut reappear right after it: only a match
  // reaching back into the previous block (its dictionary) can shorten the copy.
  const noise = mixedData(2 * BLOCK, 7).map((b, i) => b ^ ((i * 131) & 0xff));
  const repeat = noise.subarray(BLOCK - 8 * KIB, BLOCK);
  const data = Buffer.concat([noise.subarray(0, BLOCK), repeat, noise.subarray(BLOCK)]);
  const gz = await pgzip(data, { blockSize: BLOCK, engine: 'zlib' });
  t.true(gunzipSync(gz).equals(data));
  t.true(gz.length < data.length - 6 * KIB, `${gz.length} bytes for ${data.length} with ${repeat.length} repeated`);
});


test('bad options: level, block size and concurrency are refused with codes', (t) => {
  t.is(t.throws(() => createParallelGzip({ level: 10 }))?.['code' as keyof Error], 'E_GZIP_LEVEL');
  t.is(t.throws(() => createParallelGzip({ level: 1.5 }))?.['code' as keyof Error], 'E_GZIP_LEVEL');
  t.is(t.throws(() => createParallelGzip({ blockSize: 1000 }))?.['code' as keyof Error], 'E_GZIP_BLOCK_SIZE');
  t.is(t.throws(() => createParallelGzip({ concurrency: 0 }))?.['code' as keyof Error], 'E_GZIP_CONCURRENCY');
});

test('writeLayer: parallel (default) and zlib engines give the same diffID; the parallel digest is reproducible', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(join(src, 'data'), { recursive: true });
  await writeFile(join(src, 'data/mixed'), mixedData(3 * 1024 * KIB + 11, 9));
  await writeFile(join(src, 'small'), 'hi\n');
  const s1 = await Store.open(join(dir, 's1'));
  const s2 = await Store.open(join(dir, 's2'));
  const a = await writeLayer(s1, src, { kind: 'rootfs', sourceDateEpoch: 0 });
  const b = await writeLayer(s2, src, { kind: 'rootfs', sourceDateEpoch: 0 });
  const z = await writeLayer(s1, src, { kind: 'rootfs', sourceDateEpoch: 0, gzipEngine: 'zlib' });
  t.is(a.digest, b.digest);
  t.is(z.diffID, a.diffID);
  t.not(z.digest, a.digest, 'different compressors, different bytes');
  t.true(Math.abs(a.size - z.size) / z.size < 0.01, `parallel ${a.size} vs zlib ${z.size}`);
});

test("Go's gzip reader (skopeo --dest-decompress) inflates a multi-block layer to its diffID", async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'mixed'), mixedData(3 * 1024 * KIB + 5, 11));
  const tarFile = join(dir, 'rootfs.tar');
  await pipeline(layerTarStream(src, { kind: 'rootfs', sourceDateEpoch: 0 }), createWriteStream(tarFile));
  const store = await Store.open(join(dir, 'store'));
  await importRootfs(store, createReadStream(tarFile), { ref: 'pgz:go', sourceDateEpoch: 0 });
  const img = await store.resolveImage('pgz:go');
  const diffID = img.config.rootfs.diff_ids[0]!;
  const out = join(dir, 'out');
  execFileSync('skopeo', ['copy', '-q', '--dest-decompress', `oci:${store.root}:docker.io/library/pgz:go`, `dir:${out}`]);
  const files = await readdir(out);
  const hex = diffID.slice('sha256:'.length);
  t.true(files.includes(hex), `skopeo wrote the decompressed layer as ${hex}: ${files.join(' ')}`);
  const layer = img.manifest.layers[0]!;
  t.true(layer.size > 1024 * KIB, 'the gzip layer spans several blocks');
  t.is(createHash('sha256').update(await readFile(join(out, hex))).digest('hex'), hex);
});

test('an abort while blocks are in flight rejects the pipeline with the abort error', async (t) => {
  const data = mixedData(16 * BLOCK, 13);
  const ac = new AbortController();
  let written = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      if (written > 10) ac.abort(new Error('stop'));
      cb();
    },
  });
  const err = await t.throwsAsync(pipeline(Readable.from([data]), createParallelGzip({ blockSize: BLOCK, concurrency: 4 }), sink, { signal: ac.signal }));
  t.is(err?.name, 'AbortError');
  t.true(written < data.length / 2, `stopped early (${written} bytes written)`);
});
